#!/usr/bin/env bash
# Dataset preparation throughput of fsr-prep against a Pillow baseline
# (pillow_baseline.py: decode, center crop, box resize, 2x2 pyramid) and,
# on JPEG files, against `djpeg -scale 1/8`. All run on the same machine
# in one run, alternating, so that they see the same background load.
# Prints a Markdown table with images/s and ratios.
#
# Folders: the bundled Fashion-MNIST sample (2,000 small PNG files) at
# --size 32 gray, and the photos of Debian's mate-backgrounds package at
# --size 64 rgb, all of them and the JPEG files alone.
#
# Usage: prep_throughput.sh [BUILD_DIR] [REPEATS]
#   BUILD_DIR defaults to build/, REPEATS to 3 (the best of the repeats
#   is reported). Needs Debian's python3-pil, python3-numpy,
#   libjpeg-turbo-progs (djpeg) and mate-backgrounds.
#
# fsr-prep is timed as a whole process: listing, decoding, writing the
# arrays and hashing them. Pillow is timed inside Python and writes
# nothing. djpeg runs once per file, single-threaded, and only decodes
# (to /dev/null), so it bounds what any decoder-based tool can reach.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
repeats=${2:-3}
python=/usr/bin/python3
photos=/usr/share/backgrounds/mate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v djpeg >/dev/null ||
    { echo "error: djpeg not found; apt-get install libjpeg-turbo-progs" >&2; exit 1; }
[[ -d $photos ]] ||
    { echo "error: $photos not found; apt-get install mate-backgrounds" >&2; exit 1; }
"$python" -c "import PIL, numpy" 2>/dev/null ||
    { echo "error: $python lacks PIL or numpy; apt-get install python3-pil python3-numpy" >&2; exit 1; }

# The JPEG files of the photo folder, linked into a folder of their own.
mkdir "$work/jpeg"
find "$photos" -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) | sort |
    while read -r f; do
        ln -s "$f" "$work/jpeg/$(echo "${f#$photos/}" | tr / _)"
    done

now() { date +%s.%N; }
rate() { "$python" -c "print(f'{$1 / ($3 - $2):.1f}')"; }
best() { sort -g | tail -1; }
ratio() { "$python" -c "print(f'{$1 / $2:.2f}')"; }

fsr_rate() { # fsr_rate DIR SIZE COLOR THREADS [ARGS...]: images/s
    local dir=$1 size=$2 color=$3 threads=$4
    shift 4
    local n start end
    n=$(find -L "$dir" -type f | wc -l)
    start=$(now)
    "$build/fsr-prep" -q --overwrite --size "$size" --color "$color" \
        --threads "$threads" "$@" "$dir" "$work/out"
    end=$(now)
    rate "$n" "$start" "$end"
}

pillow_rate() { # pillow_rate DIR SIZE COLOR WORKERS [--draft]
    "$python" "$root/pipeline/bench/pillow_baseline.py" --size "$2" \
        --color "$3" --workers "$4" "${@:5}" "$1" |
        "$python" -c "import json, sys; print(f\"{json.load(sys.stdin)['images_per_s']:.1f}\")"
}

djpeg_rate() { # djpeg_rate DIR: images/s of djpeg -scale 1/8, one process per file
    local n start end
    n=$(find -L "$1" -type f | wc -l)
    start=$(now)
    find -L "$1" -type f -print0 | sort -z |
        xargs -0 -n 1 djpeg -scale 1/8 -outfile /dev/null
    end=$(now)
    rate "$n" "$start" "$end"
}

# measure NAME COMMAND...: appends one rate per repeat to $work/NAME.
measure() {
    local name=$1
    shift
    "$@" >> "$work/$name"
}

# run_folder LABEL DIR SIZE COLOR JPEG: JPEG is 0 for a folder without
# JPEG files, 1 for a mixed folder, 2 for JPEG files only (adds djpeg).
run_folder() {
    local label=$1 dir=$2 size=$3 color=$4 has_jpeg=$5
    rm -f "$work"/r_*
    for _ in $(seq "$repeats"); do
        for threads in 1 2; do
            measure "r_fsr$threads" fsr_rate "$dir" "$size" "$color" "$threads"
            measure "r_pil$threads" pillow_rate "$dir" "$size" "$color" "$threads"
            if [[ $has_jpeg -ge 1 ]]; then
                measure "r_fsrfull$threads" fsr_rate "$dir" "$size" "$color" \
                    "$threads" --no-jpeg-scaling
                measure "r_draft$threads" pillow_rate "$dir" "$size" "$color" \
                    "$threads" --draft
            fi
        done
        if [[ $has_jpeg -eq 2 ]]; then
            measure r_djpeg djpeg_rate "$dir"
        fi
    done
    for threads in 1 2; do
        local f p d="-" ff="-" dr="-" r_draft="-" r_djpeg="-"
        f=$(best < "$work/r_fsr$threads")
        p=$(best < "$work/r_pil$threads")
        if [[ $has_jpeg -ge 1 ]]; then
            ff=$(best < "$work/r_fsrfull$threads")
            d=$(best < "$work/r_draft$threads")
            r_draft=$(ratio "$f" "$d")
        fi
        # djpeg is single-threaded, so it is compared with one thread.
        if [[ $has_jpeg -eq 2 && $threads -eq 1 ]]; then
            dr=$(best < "$work/r_djpeg")
            r_djpeg=$(ratio "$f" "$dr")
        fi
        echo "| $label | $threads | $f | $ff | $p | $d | $dr | $(ratio "$f" "$p") | $r_draft | $r_djpeg |"
    done
}

echo "| folder | threads | fsr-prep | fsr-prep --no-jpeg-scaling | Pillow | Pillow draft | djpeg -scale 1/8 | fsr / Pillow | fsr / Pillow draft | fsr / djpeg |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
run_folder "Fashion-MNIST PNG, 32 gray" "$root/datasets/fashion-mnist/sample" 32 gray 0
run_folder "mate-backgrounds all, 64 rgb" "$photos" 64 rgb 1
run_folder "mate-backgrounds JPEG, 64 rgb" "$work/jpeg" 64 rgb 2
