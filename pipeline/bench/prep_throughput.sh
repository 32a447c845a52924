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
# fsr-prep is timed twice: as a whole process (start-up, listing,
# decoding, writing and hashing the arrays, flushing them to disk), and
# its listing and decoding phase alone, as its -v output reports it.
# Pillow is timed inside Python around its decoding loop: no start-up,
# no listing, nothing written. The decoding phase is therefore the like
# for like comparison, and the whole run a lower bound. djpeg runs once
# per file, single-threaded, and only decodes (to /dev/null).
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
# Images/s: whole numbers from 1000 up, one decimal below.
rate() { "$python" -c "r = $1 / ($3 - $2); print(f'{r:.0f}' if r >= 1000 else f'{r:.1f}')"; }
best() { sort -g | tail -1; }
ratio() { "$python" -c "print(f'{$1 / $2:.2f}')"; }

# fsr_measure NAME DIR SIZE COLOR THREADS [ARGS...]: appends the images/s
# of the whole fsr-prep process to $work/NAME and those of its listing
# and decoding phase, which -v reports, to $work/NAME.decode.
fsr_measure() {
    local name=$1 dir=$2 size=$3 color=$4 threads=$5
    shift 5
    local n start end phase
    n=$(find -L "$dir" -type f | wc -l)
    start=$(now)
    "$build/fsr-prep" -v --overwrite --size "$size" --color "$color" \
        --threads "$threads" "$@" "$dir" "$work/out" 2>"$work/log"
    end=$(now)
    rate "$n" "$start" "$end" >> "$work/$name"
    phase=$(sed -n 's/.*listing and decoding took \([0-9.]*\) s.*/\1/p' "$work/log")
    [[ -n $phase ]] ||
        { echo "error: $dir: no timing in the output of fsr-prep -v" >&2; exit 1; }
    rate "$n" 0 "$phase" >> "$work/$name.decode"
}

pillow_rate() { # pillow_rate DIR SIZE COLOR WORKERS [--draft]
    "$python" "$root/pipeline/bench/pillow_baseline.py" --size "$2" \
        --color "$3" --workers "$4" "${@:5}" "$1" |
        "$python" -c "import json, sys; r = json.load(sys.stdin)['images_per_s']; print(f'{r:.0f}' if r >= 1000 else f'{r:.1f}')"
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
            fsr_measure "r_fsr$threads" "$dir" "$size" "$color" "$threads"
            measure "r_pil$threads" pillow_rate "$dir" "$size" "$color" "$threads"
            if [[ $has_jpeg -ge 1 ]]; then
                fsr_measure "r_fsrfull$threads" "$dir" "$size" "$color" \
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
        local f fd p d="-" ff="-" dr="-" r_draft="-" rd_draft="-" r_djpeg="-"
        f=$(best < "$work/r_fsr$threads")
        fd=$(best < "$work/r_fsr$threads.decode")
        p=$(best < "$work/r_pil$threads")
        if [[ $has_jpeg -ge 1 ]]; then
            ff=$(best < "$work/r_fsrfull$threads")
            d=$(best < "$work/r_draft$threads")
            r_draft=$(ratio "$f" "$d")
            rd_draft=$(ratio "$fd" "$d")
        fi
        # djpeg is single-threaded, so it is compared with one thread.
        if [[ $has_jpeg -eq 2 && $threads -eq 1 ]]; then
            dr=$(best < "$work/r_djpeg")
            r_djpeg=$(ratio "$f" "$dr")
        fi
        echo "| $label | $threads | $f | $fd | $ff | $p | $d | $dr | $(ratio "$f" "$p") | $(ratio "$fd" "$p") | $r_draft | $rd_draft | $r_djpeg |"
    done
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores" >&2
echo "| folder | threads | fsr-prep run | fsr-prep decoding | run, --no-jpeg-scaling | Pillow | Pillow draft | djpeg -scale 1/8 | run / Pillow | decoding / Pillow | run / draft | decoding / draft | run / djpeg |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
run_folder "Fashion-MNIST PNG, 32 gray" "$root/datasets/fashion-mnist/sample" 32 gray 0
run_folder "mate-backgrounds all, 64 rgb" "$photos" 64 rgb 1
run_folder "mate-backgrounds JPEG, 64 rgb" "$work/jpeg" 64 rgb 2
