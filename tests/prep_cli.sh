#!/usr/bin/env bash
# End-to-end test of fsr-prep on a folder of fixture images plus a
# corrupt JPEG, a text file, hidden files and symbolic links (a loop, a
# dangling one and one to a file). Checks exit statuses, the file and
# skipped lists, the overwrite rules, and that NumPy's np.load reads
# every array with the shape, checksum and statistics in manifest.json.
#
# Usage: bash tests/prep_cli.sh BUILD_DIR SOURCE_DIR
# Needs /usr/bin/python3 with NumPy (Debian's python3-numpy).
set -euo pipefail

build=$1
source=$2
prep=$build/fsr-prep
fixtures=$source/tests/data/images
python=/usr/bin/python3

work=$(mktemp -d /tmp/fsr-prep-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
checks=0

fail() {
    echo "prep_cli: FAIL: $*" >&2
    exit 1
}

pass() {
    checks=$((checks + 1))
}

# Runs fsr-prep with the given arguments; stores the exit status in rc
# and stderr in $work/err.
run_prep() {
    rc=0
    "$prep" "$@" 2>"$work/err" >"$work/out.txt" || rc=$?
}

expect_rc() {
    if [[ $rc -ne $1 ]]; then
        cat "$work/err" >&2
        fail "$2: exit status $rc, expected $1"
    fi
    pass
}

expect_in_stderr() {
    grep -qF -- "$1" "$work/err" || {
        cat "$work/err" >&2
        fail "stderr lacks '$1'"
    }
    pass
}

expect_not_in_stderr() {
    if grep -qF -- "$1" "$work/err"; then
        cat "$work/err" >&2
        fail "stderr contains '$1'"
    fi
    pass
}

# Prints the pid of a process that has exited.
dead_pid() {
    local pid
    bash -c 'exit 0' &
    pid=$!
    wait "$pid"
    echo "$pid"
}

"$python" -c 'import numpy' 2>/dev/null ||
    fail "$python cannot import numpy; install python3-numpy"
[[ -x $prep ]] || fail "$prep not found; build the fsr-prep target"

# ---- Input folder ---------------------------------------------------------
in=$work/images
mkdir -p "$in/sub/deeper" "$in/.git"
cp "$fixtures/gray16.png" "$fixtures/palette_trns.png" \
   "$fixtures/flat_rgb.jpg" "$fixtures/cmyk_adobe.jpg" "$in/"
cp "$fixtures/orient_6.jpg" "$in/sub/"
cp "$fixtures/orient_1.jpg" "$in/sub/deeper/"
head -c 50 "$fixtures/flat_rgb.jpg" >"$in/sub/corrupt.jpg"
echo "not an image" >"$in/notes.txt"
cp "$fixtures/gray16.png" "$in/.hidden.png"
cp "$fixtures/gray16.png" "$in/.git/inside-hidden.png"
# System files, ignored like hidden ones, whatever the case of the name.
echo "thumbnail cache" >"$in/Thumbs.db"
echo "[.ShellClassInfo]" >"$in/sub/Desktop.ini"
mkdir -p "$in/__MACOSX" "$in/sub/@eaDir"
cp "$fixtures/flat_rgb.jpg" "$in/__MACOSX/flat_rgb.jpg"
echo "stream" >"$in/sub/@eaDir/orient_6.jpg@SynoEAStream"
ln -s .. "$in/sub/up"                  # loop back to the top
ln -s missing.png "$in/dangling.png"   # points nowhere
ln -s ../gray16.png "$in/sub/link.png" # a file reached through a link

# ---- A normal run -----------------------------------------------------------
out=$work/out
run_prep --size 16 --color rgb "$in" "$out"
expect_rc 0 "run with skipped files"
expect_in_stderr "sub/corrupt.jpg"
expect_in_stderr "10 found, 7 loaded, 3 skipped"
expect_in_stderr "wrote $out"
expect_in_stderr "ignored 6 hidden or system entries"

printf '%s\n' cmyk_adobe.jpg flat_rgb.jpg gray16.png palette_trns.png \
    sub/deeper/orient_1.jpg sub/link.png sub/orient_6.jpg >"$work/want"
diff "$work/want" "$out/files.txt" || fail "files.txt differs"
pass
cut -f1 "$out/skipped.tsv" >"$work/got"
printf '%s\n' dangling.png notes.txt sub/corrupt.jpg >"$work/want"
diff "$work/want" "$work/got" || fail "skipped.tsv paths differ"
pass
grep -q $'^sub/corrupt.jpg\tinvalid JPEG file: file is truncated' \
    "$out/skipped.tsv" || fail "skipped.tsv reason for the corrupt file"
pass
grep -q $'^notes.txt\tnot a PNG or JPEG file$' "$out/skipped.tsv" ||
    fail "skipped.tsv reason for the text file"
pass

# Every array loads with NumPy, plain and memory-mapped, and agrees with
# the manifest.
check_arrays() {
    "$python" - "$1" <<'EOF'
import hashlib, json, os, sys
import numpy as np

folder = sys.argv[1]
with open(os.path.join(folder, "manifest.json")) as f:
    m = json.load(f)
problems = []
with open(os.path.join(folder, m["file_list"]), "rb") as f:
    if len(f.read().splitlines()) != m["count"]:
        problems.append("files.txt line count differs from count")
if m["files"]["loaded"] != m["count"]:
    problems.append("files.loaded differs from count")
sizes = [level["size"] for level in m["levels"]]
if sizes != [4 << i for i in range(len(sizes))] or sizes[-1] != m["base_size"]:
    problems.append(f"level sizes {sizes}")
arrays = []
for level in m["levels"]:
    path = os.path.join(folder, level["file"])
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != level["sha256"]:
        problems.append(f"{level['file']}: sha256 differs")
    a = np.load(path)
    mapped = np.load(path, mmap_mode="r")
    shape = [m["count"], m["channels"], level["size"], level["size"]]
    if list(a.shape) != level["shape"] or list(a.shape) != shape:
        problems.append(f"{level['file']}: shape {a.shape}, manifest "
                        f"{level['shape']}, expected {shape}")
    if a.dtype != np.dtype(level["dtype"]) or mapped.dtype != a.dtype:
        problems.append(f"{level['file']}: dtype {a.dtype}, manifest "
                        f"{level['dtype']}")
    if not np.array_equal(a, mapped):
        problems.append(f"{level['file']}: mmap_mode read differs")
    if a.dtype == np.uint8:
        # The values fsr_dataset_open() makes: float32 u / 255.
        a = a.astype(np.float32) / np.float32(255)
    if a.size and (a.min() < 0 or a.max() > 1):
        problems.append(f"{level['file']}: values outside [0, 1]")
    if abs(a.astype(np.float64).mean() - level["mean"]) > 1e-6 or \
       abs(a.astype(np.float64).std() - level["std"]) > 1e-6:
        problems.append(f"{level['file']}: mean or std differs")
    arrays.append(a)
def gaussian_blur(x):
    # sigma 1, truncated at 4, reflected edges ('symmetric' in NumPy).
    d = np.arange(-4, 5)
    g = np.exp(-d * d / 2.0)
    g /= g.sum()
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (4, 4), (4, 4)],
               mode="symmetric")
    size = x.shape[2] - 8
    rows = sum(g[k] * x[:, :, k:k + size, :] for k in range(9))
    return sum(g[k] * rows[:, :, :, k:k + size] for k in range(9))

reduction = m["reduction"]
for coarse, fine in zip(arrays, arrays[1:]):
    n, c, s, _ = coarse.shape
    if reduction == "subsample":
        want = fine[:, :, ::2, ::2]
    else:
        if reduction in ("gaussian", "laplacian"):
            fine = gaussian_blur(fine)
        elif reduction != "avg-pool":
            problems.append(f"unknown reduction {reduction}")
        want = fine.reshape(n, c, s, 2, s, 2).mean(axis=(3, 5))
    # Rounding each uint8 level to 1/255 moves it by at most 0.5 / 255,
    # and a coarser level made from a rounded one by another 0.5 / 255.
    tolerance = 1e-5 if m["dtype"] == "float32" else 1 / 255 + 1e-6
    if np.abs(want - coarse).max() > tolerance:
        problems.append(f"level {s} is not the {reduction} reduction of "
                        f"level {2 * s}")
for p in problems:
    print("prep_cli: FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
}
check_arrays "$out" || fail "arrays of $out disagree with manifest.json"
pass

grep -q '"color":	"rgb"' "$out/manifest.json" || fail "manifest color"
grep -q '"crop":	"center-crop"' "$out/manifest.json" || fail "manifest crop"
grep -q '"found":	10' "$out/manifest.json" || fail "manifest found"
grep -q '"jpeg_scaling":	true' "$out/manifest.json" ||
    fail "manifest jpeg_scaling is not true by default"
pass

# ---- Overwriting ------------------------------------------------------------
before=$(sha256sum "$out/manifest.json")
run_prep "$in" "$out"
expect_rc 1 "existing output without --overwrite"
expect_in_stderr "contains a dataset; pass --overwrite"
[[ $(sha256sum "$out/manifest.json") == "$before" ]] ||
    fail "a refused run changed the existing dataset"
pass

run_prep --overwrite --crop pad --pad-value 0.25 -q "$in" "$out"
expect_rc 0 "run with --overwrite"
[[ ! -s $work/err ]] || fail "-q printed: $(cat "$work/err")"
pass
grep -q '"pad_value":	0.25' "$out/manifest.json" || fail "pad value"
grep -q '"color":	"gray"' "$out/manifest.json" || fail "default color"
pass

run_prep --overwrite --no-jpeg-scaling -q "$in" "$out"
expect_rc 0 "run with --no-jpeg-scaling"
grep -q '"jpeg_scaling":	false' "$out/manifest.json" ||
    fail "manifest jpeg_scaling is not false with --no-jpeg-scaling"
grep -q '"jpeg_scaling_rule":	"Every JPEG file is decoded at full size."' \
    "$out/manifest.json" || fail "manifest jpeg_scaling_rule"
pass
check_arrays "$out" || fail "arrays after --overwrite"
pass

mkdir "$work/notes"
echo "keep" >"$work/notes/keep.txt"
run_prep --overwrite "$in" "$work/notes"
expect_rc 1 "overwrite of a folder without a dataset"
expect_in_stderr "contains no manifest.json"
[[ -f $work/notes/keep.txt ]] || fail "a folder without a dataset was replaced"
pass
# Without --overwrite the message must not suggest it.
run_prep "$in" "$work/notes"
expect_rc 1 "folder without a dataset, no --overwrite"
expect_in_stderr "even with --overwrite"
expect_not_in_stderr "pass --overwrite"

# A manifest.json alone does not make a folder a dataset.
echo '{"format": "something-else"}' >"$work/notes/manifest.json"
run_prep --overwrite "$in" "$work/notes"
expect_rc 1 "overwrite of a folder with a foreign manifest.json"
expect_in_stderr 'lacks "format": "fsr-dataset"'
[[ -f $work/notes/keep.txt ]] || fail "a foreign manifest.json was replaced"
pass

# Nor does a dataset that has other files beside it.
echo "keep" >"$out/my-notes.txt"
run_prep --overwrite "$in" "$out"
expect_rc 1 "overwrite of a dataset with an extra file"
expect_in_stderr "contains 'my-notes.txt'"
expect_not_in_stderr "pass --overwrite"
[[ -f $out/my-notes.txt && -f $out/level_4.npy ]] ||
    fail "a dataset with an extra file was replaced"
pass
rm "$out/my-notes.txt"

# ---- The output location ----------------------------------------------------
# OUT fits NAME_MAX but OUT.tmp.<pid> does not: the run must stop before
# decoding, which would report the skipped files first.
run_prep "$in" "$work/$(printf 'x%.0s' {1..250})"
expect_rc 1 "output whose temporary name is too long"
expect_in_stderr "cannot write the output there"
expect_not_in_stderr "skipped"
if [[ $(id -u) -ne 0 ]]; then
    mkdir "$work/locked"
    chmod 555 "$work/locked"
    run_prep "$in" "$work/locked/out"
    expect_rc 1 "output in a read-only folder"
    expect_in_stderr "Permission denied"
    expect_not_in_stderr "skipped"
    chmod 755 "$work/locked"
fi

# Temporary folders of killed runs: deleted when they contain only dataset
# files, kept with a warning otherwise.
stale=$work/stale-out.tmp.$(dead_pid)
stale_other=$work/stale-out.tmp.$(dead_pid)
mkdir "$stale" "$stale_other"
touch "$stale/level_4.npy" "$stale/level_8.npy.tmp.123" \
    "$stale_other/notes.txt"
run_prep "$in" "$work/stale-out"
expect_rc 0 "run next to stale temporary folders"
expect_in_stderr "$stale: deleted this temporary folder"
expect_in_stderr "$stale_other: temporary folder left by process"
[[ ! -e $stale && -f $stale_other/notes.txt ]] ||
    fail "stale temporary folders: wrong one deleted"
pass
rm -r "$stale_other"

# Output inside the input folder is not read as input, nor are its
# temporary folders, on the first run or with --overwrite.
inner=$work/inner
mkdir -p "$inner/out.tmp.4194305"
cp "$fixtures/gray16.png" "$fixtures/flat_rgb.jpg" "$inner/"
cp "$fixtures/gray16.png" "$inner/out.tmp.4194305/"
for flags in "" --overwrite; do
    run_prep $flags "$inner" "$inner/out/"
    expect_rc 0 "output inside the input folder ${flags:-(first run)}"
    expect_in_stderr "2 found, 2 loaded, 0 skipped"
done
[[ ! -s $inner/out/skipped.tsv ]] || fail "inner output: skipped.tsv not empty"
pass
rm -r "$inner/out.tmp.4194305"

# ---- Interrupts -------------------------------------------------------------
# SIGTERM or SIGINT during the write phase deletes the temporary folder.
# The arrays are large enough (16 images at 512 px) that writing lasts
# well over 0.1 s after level_4.npy appears.
big=$work/big
mkdir "$big"
for i in $(seq 1 16); do cp "$fixtures/gray16.png" "$big/$i.png"; done
for sig in TERM INT; do
    "$prep" --size 512 "$big" "$work/interrupted" 2>"$work/err" &
    pid=$!
    until compgen -G "$work/interrupted.tmp.*/level_4.npy" >/dev/null; do
        kill -0 "$pid" 2>/dev/null || break
    done
    kill -s "$sig" "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" || rc=$?
    expect_rc 130 "SIG$sig while writing"
    expect_in_stderr "interrupted; nothing written"
    leftovers=$(compgen -G "$work/interrupted*" || true)
    [[ -z $leftovers ]] || fail "SIG$sig while writing left $leftovers"
    pass
done

# ---- Limits and failures ------------------------------------------------------
run_prep --limit 2 "$in" "$work/limited"
expect_rc 0 "--limit 2"
expect_in_stderr "2 found, 1 loaded, 1 skipped"

run_prep --strict "$in" "$work/strict"
expect_rc 1 "--strict with skipped files"
expect_in_stderr "--on-error fail is set and 3 files were skipped"
[[ ! -e $work/strict ]] || fail "--strict failure wrote output"
pass

# --on-error fail stops on one corrupt file among good ones.
mkdir -p "$work/one-bad"
cp "$fixtures/flat_rgb.jpg" "$fixtures/gray16.png" "$work/one-bad/"
head -c 50 "$fixtures/flat_rgb.jpg" >"$work/one-bad/corrupt.jpg"
run_prep --on-error fail "$work/one-bad" "$work/on-error-fail"
expect_rc 1 "--on-error fail with a corrupt file"
expect_in_stderr "one-bad/corrupt.jpg: invalid JPEG file"
expect_in_stderr "--on-error fail is set and 1 file was skipped"
[[ ! -e $work/on-error-fail ]] || fail "--on-error fail wrote output"
if compgen -G "$work/on-error-fail.tmp.*" >/dev/null; then
    fail "--on-error fail left a temporary folder"
fi
run_prep --on-error skip "$work/one-bad" "$work/on-error-skip"
expect_rc 0 "--on-error skip with a corrupt file"
expect_in_stderr "3 found, 2 loaded, 1 skipped"
run_prep --on-error ignore "$work/one-bad" "$work/on-error-bad"
expect_rc 1 "--on-error with an invalid policy"
expect_in_stderr "invalid value 'ignore' for --on-error: expected skip or fail"
pass

# A JPEG file with stray bytes before two markers raises two decoder
# warnings: -v names the first and counts the other.
mkdir -p "$work/warnings"
"$python" - "$fixtures/flat_rgb.jpg" "$work/warnings/stray.jpg" <<'EOF' ||
import sys
data = open(sys.argv[1], "rb").read()
dht, sos = data.index(b"\xff\xc4"), data.index(b"\xff\xda")
assert dht < sos
open(sys.argv[2], "wb").write(data[:dht] + b"\0\1" + data[dht:sos] +
                              b"\0\1\2" + data[sos:])
EOF
    fail "cannot write the JPEG file with stray bytes"
run_prep -v "$work/warnings" "$work/warnings-out"
expect_rc 0 "JPEG file with decoder warnings"
expect_in_stderr "stray.jpg: decoder warning: Corrupt JPEG data: 2 extraneous bytes before marker 0xc4 (and 1 more)"
expect_in_stderr "1 loaded, 0 skipped, 2 decoder warnings"
expect_in_stderr "fsr-prep: info: listing and decoding took"
grep -q '"decoder_warnings":	2' "$work/warnings-out/manifest.json" ||
    fail "manifest decoder_warnings is not 2"
pass

# --on-warning skip lists the same file as skipped, with one line for
# both warnings, and --on-error fail then rejects it.
cp "$fixtures/flat_rgb.jpg" "$work/warnings/clean.jpg"
run_prep --on-warning skip "$work/warnings" "$work/warned-skip"
expect_rc 0 "--on-warning skip"
expect_in_stderr "2 found, 1 loaded, 1 skipped, 0 decoder warnings"
[[ $(cat "$work/warned-skip/skipped.tsv") == "stray.jpg	decoder warning: Corrupt JPEG data: 2 extraneous bytes before marker 0xc4 (and 1 more)" ]] ||
    fail "skipped.tsv of --on-warning skip: $(cat "$work/warned-skip/skipped.tsv")"
[[ $(cat "$work/warned-skip/files.txt") == clean.jpg ]] ||
    fail "files.txt of --on-warning skip"
run_prep --on-warning skip --on-error fail "$work/warnings" "$work/warned-fail"
expect_rc 1 "--on-warning skip --on-error fail"
[[ ! -e $work/warned-fail ]] || fail "--on-error fail wrote a dataset"
# Damage inside an AC scan of a progressive file: a 1/8 decode does not
# read that scan, so the file loads without a warning, and
# --on-warning skip decodes every scan and skips it.
mkdir -p "$work/ac-damage"
"$python" - "$work/ac-damage/photo.jpg" <<'EOF' ||
import io, sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(1)
pixels = (rng.random((600, 600, 3)) * 255).astype(np.uint8)
buf = io.BytesIO()
Image.fromarray(pixels).save(buf, "JPEG", quality=90, progressive=True)
data = bytearray(buf.getvalue())
at = 2
while True:  # the first scan with Ss > 0
    at = data.index(b"\xff\xda", at)
    ns = data[at + 4]
    if data[at + 5 + 2 * ns] > 0:
        break
    at += 2
start = at + 2 + (data[at + 2] << 8 | data[at + 3])
for k in range(start + 200, start + 260):
    data[k] = (data[k] * 7 + 13) & 0x7f
open(sys.argv[1], "wb").write(bytes(data))
EOF
    fail "cannot write the progressive JPEG file with a damaged AC scan"
run_prep --size 32 --color rgb "$work/ac-damage" "$work/ac-keep"
expect_rc 0 "damaged AC scan, --on-warning keep"
expect_in_stderr "1 loaded, 0 skipped, 0 decoder warnings"
run_prep --on-warning skip --size 32 --color rgb "$work/ac-damage" \
    "$work/ac-skip"
expect_rc 1 "damaged AC scan, --on-warning skip"
expect_in_stderr "photo.jpg: decoder warning: Corrupt JPEG data"
expect_in_stderr "1 file was skipped for decoder warnings (--on-warning skip); nothing written"
run_prep --on-warning drop "$work/warnings" "$work/warned-bad"
expect_rc 1 "--on-warning with an invalid policy"
expect_in_stderr "invalid value 'drop' for --on-warning: expected keep or skip"
pass

run_prep --max-pixels 100 "$in" "$work/small"
expect_rc 0 "--max-pixels 100"
grep -q 'exceeds the maximum' "$work/small/skipped.tsv" ||
    fail "--max-pixels did not skip the 16 x 16 images"
pass

# When nothing loads, the message names the limit, not a decoding error.
mkdir "$work/one-big"
cp "$fixtures/flat_rgb.jpg" "$work/one-big/"
run_prep --max-pixels 100 "$work/one-big" "$work/none"
expect_rc 1 "every file over --max-pixels"
expect_in_stderr "1 file is larger than the --max-pixels limit of 100 pixels"
expect_not_in_stderr "could not be read"
expect_not_in_stderr "1 files"
cp "$fixtures/cmyk_adobe.jpg" "$work/one-big/"
echo "text" >"$work/one-big/notes.txt"
run_prep --max-pixels 100 "$work/one-big" "$work/none"
expect_rc 1 "files over --max-pixels and unreadable files"
expect_in_stderr "2 files are larger than the --max-pixels limit of 100 \
pixels and 1 file could not be read as a PNG or JPEG image"
[[ ! -e $work/none ]] || fail "a failed run wrote output"
pass

# One file: singular words in the summary.
mkdir "$work/single"
cp "$fixtures/gray16.png" "$work/single/"
run_prep "$work/single" "$work/single-out"
expect_rc 0 "one image"
expect_in_stderr "1 found, 1 loaded, 0 skipped, 0 decoder warnings"

mkdir "$work/unreadable"
echo "text" >"$work/unreadable/a.txt"
head -c 20 "$fixtures/gray16.png" >"$work/unreadable/b.png"
run_prep "$work/unreadable" "$work/none"
expect_rc 1 "folder without a readable image"
expect_in_stderr "2 files could not be read as a PNG or JPEG image"
[[ ! -e $work/none ]] || fail "a failed run wrote output"
pass

# A folder name that is not UTF-8 still gives a manifest that strict
# UTF-8 JSON readers accept.
latin1=$work/$'caf\xe9'
mkdir "$latin1"
cp "$fixtures/gray16.png" "$latin1/"
run_prep "$latin1" "$work/latin1-out"
expect_rc 0 "input folder with a Latin-1 name"
"$python" - "$work/latin1-out/manifest.json" <<'EOF' ||
import json, sys
with open(sys.argv[1], encoding="utf-8", errors="strict") as f:
    m = json.load(f)
assert m["source"].endswith("/caf\ufffd"), m["source"]
EOF
    fail "manifest.json of a Latin-1 folder name is not UTF-8 JSON"
pass

mkdir "$work/empty"
run_prep "$work/empty" "$work/none"
expect_rc 1 "empty folder"
expect_in_stderr "no files found"

run_prep "$work/missing" "$work/none"
expect_rc 1 "missing input folder"
run_prep --size 12 "$in" "$work/none"
expect_rc 1 "--size 12"
expect_in_stderr "power of two"
run_prep --color blue "$in" "$work/none"
expect_rc 1 "--color blue"
run_prep "$in"
expect_rc 1 "one operand"
# getopt's messages name the tool, not the path it was run by.
run_prep --no-such-option "$in" "$work/none"
expect_rc 1 "unknown option"
expect_in_stderr "fsr-prep: unrecognized option '--no-such-option'"
expect_not_in_stderr "$prep"
run_prep --size
expect_rc 1 "option without its value"
expect_in_stderr "fsr-prep: option '--size' requires an argument"
run_prep --help
expect_rc 0 "--help"
grep -q -- "--max-pixels" "$work/out.txt" || fail "--help lacks --max-pixels"
grep -q "No color management is applied" "$work/out.txt" ||
    fail "--help lacks the note on color management"
grep -qF 'as \\, \t, \n or \r, so each line is one file' "$work/out.txt" ||
    fail "--help lacks the escaping of files.txt"
grep -qF '4 x C x 4/3 x size^2 bytes' "$work/out.txt" ||
    fail "--help lacks the memory use"
pass

# A second progress bar for writing, drawn only on a terminal.
if command -v script >/dev/null; then
    script -qec "$(printf '%q ' "$prep" --size 16 "$in" "$work/tty-out")" \
        /dev/null >"$work/tty.txt" 2>&1 || true
    grep -qF 'writing [' "$work/tty.txt" || {
        cat "$work/tty.txt" >&2
        fail "no writing progress bar on a terminal"
    }
    pass
fi
run_prep --size 16 "$in" "$work/pipe-out"
expect_not_in_stderr "writing ["

# ---- Square policy, resize filter, reduction and dtype ---------------------
# An 8 x 4 gray ramp whose column x has the 8-bit value 16 x.
mkdir "$work/ramp"
"$python" - "$work/ramp/ramp.png" <<'EOF'
import sys
import numpy as np
from PIL import Image
ramp = np.tile((np.arange(8) * 16).astype(np.uint8), (4, 1))
Image.fromarray(ramp, mode="L").save(sys.argv[1])
EOF
# Stretch to 4 x 4 averages column pairs: (32 j + 8) / 255.
run_prep --size 4 --crop stretch "$work/ramp" "$work/stretch"
expect_rc 0 "--crop stretch"
grep -q '"crop":	"stretch"' "$work/stretch/manifest.json" ||
    fail "manifest crop stretch"
pass
"$python" - "$work/stretch/level_4.npy" <<'EOF' || fail "--crop stretch values"
import sys
import numpy as np
a = np.load(sys.argv[1])
want = np.tile((32 * np.arange(4) + 8) / 255.0, (4, 1))
assert a.shape == (1, 1, 4, 4), a.shape
assert np.abs(a[0, 0] - want).max() < 1e-6, a[0, 0]
EOF
pass
run_prep --crop square "$in" "$work/none"
expect_rc 1 "--crop square"
expect_in_stderr "expected center-crop, pad or stretch"

# Bilinear upscaling keeps the ramp linear between the pixel centers:
# output column j is centered at c = (j + 1/2) / 2 source pixels, which
# has the value 16 (c - 1/2) / 255 for c in [1/2, 15/2].
run_prep --size 16 --crop stretch --resize bilinear "$work/ramp" \
    "$work/bilinear"
expect_rc 0 "--resize bilinear"
grep -q '"resize":	"bilinear"' "$work/bilinear/manifest.json" ||
    fail "manifest resize bilinear"
pass
"$python" - "$work/bilinear/level_16.npy" <<'EOF' || fail "--resize bilinear values"
import sys
import numpy as np
a = np.load(sys.argv[1])[0, 0]
c = (np.arange(16) + 0.5) / 2
want = 16 * (c - 0.5) / 255
assert np.abs(a[:, 1:15] - want[1:15]).max() < 1e-6, a[0]
assert np.abs(a - a[0]).max() == 0, "rows differ"
EOF
pass
run_prep --size 16 --resize lanczos "$in" "$work/lanczos"
expect_rc 0 "--resize lanczos"
grep -q '"resize":	"lanczos"' "$work/lanczos/manifest.json" ||
    fail "manifest resize lanczos"
pass
check_arrays "$work/lanczos" || fail "arrays of --resize lanczos"
pass
run_prep --resize bicubic "$in" "$work/none"
expect_rc 1 "--resize bicubic"
expect_in_stderr "expected box, bilinear or lanczos"

# check_arrays() recomputes every coarser level from the finer one with
# the reduction that the manifest names: NumPy slicing for subsample and
# a direct convolution in double for gaussian and laplacian.
for reduce in avg-pool subsample gaussian laplacian; do
    run_prep --size 32 --color rgb --reduce "$reduce" "$in" \
        "$work/reduce-$reduce"
    expect_rc 0 "--reduce $reduce"
    grep -q "\"reduction\":	\"$reduce\"" \
        "$work/reduce-$reduce/manifest.json" ||
        fail "manifest reduction $reduce"
    pass
    check_arrays "$work/reduce-$reduce" ||
        fail "arrays of --reduce $reduce"
    pass
done
cmp -s "$work/reduce-gaussian/level_4.npy" \
    "$work/reduce-laplacian/level_4.npy" ||
    fail "--reduce laplacian differs from gaussian"
pass
run_prep --reduce median "$in" "$work/none"
expect_rc 1 "--reduce median"
expect_in_stderr "expected avg-pool, subsample, gaussian or laplacian"

# uint8 levels are round(255 v) of the float32 levels of the same run.
for dtype in float32 uint8; do
    run_prep --size 16 --color rgb --reduce gaussian --dtype "$dtype" \
        "$in" "$work/dtype-$dtype"
    expect_rc 0 "--dtype $dtype"
    check_arrays "$work/dtype-$dtype" || fail "arrays of --dtype $dtype"
    pass
done
"$python" - "$work/dtype-float32" "$work/dtype-uint8" <<'EOF' ||
import json, os, sys
import numpy as np
floats, bytes_ = sys.argv[1], sys.argv[2]
with open(os.path.join(bytes_, "manifest.json")) as f:
    m = json.load(f)
assert m["dtype"] == "uint8", m["dtype"]
for level in m["levels"]:
    assert level["dtype"] == "uint8", level
    u = np.load(os.path.join(bytes_, level["file"]))
    v = np.load(os.path.join(floats, level["file"]))
    assert u.dtype == np.uint8, (level["file"], u.dtype)
    assert v.dtype == np.float32, (level["file"], v.dtype)
    assert u.shape == v.shape == tuple(level["shape"]), (u.shape, v.shape)
    want = np.rint(255 * v.astype(np.float64))
    diff = np.abs(u.astype(np.float64) - want).max()
    assert diff <= 1, f"{level['file']}: differs by {diff}"
    # Both runs compute the same floats, so the bytes match exactly.
    assert diff == 0, f"{level['file']}: differs by {diff}"
EOF
    fail "uint8 arrays are not round(255 v) of the float32 arrays"
pass
run_prep --dtype float64 "$in" "$work/none"
expect_rc 1 "--dtype float64"
expect_in_stderr "expected float32 or uint8"

# Patch arrays: NumPy reads each with the manifest's shape, dtype and
# SHA-256; every patch equals its slice of the level; the corners follow
# the documented grid; and the neighbour lists are exactly the
# coarser-level patches whose squares intersect the patch scaled by 1/2.
for dtype in float32 uint8; do
    run_prep --size 16 --dtype $dtype --patches 4 --patch-stride 2 \
        "$in" "$work/patches-$dtype"
    expect_rc 0 "--patches 4 --patch-stride 2 --dtype $dtype"
    "$python" - "$work/patches-$dtype" <<'EOF' ||
import hashlib, json, os, sys
import numpy as np
out = sys.argv[1]
with open(os.path.join(out, "manifest.json")) as f:
    m = json.load(f)
p = m["patches"]
P, S = p["size"], p["stride"]
assert (P, S) == (4, 2), (P, S)

def load(entry, dtype):
    path = os.path.join(out, entry["file"])
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == entry["sha256"], entry["file"]
    a = np.load(path, mmap_mode="r")
    assert a.shape == tuple(entry["shape"]), (entry["file"], a.shape)
    assert a.dtype == np.dtype(dtype), (entry["file"], a.dtype)
    assert str(a.dtype) == entry["dtype"], entry
    return np.asarray(a)

levels = {lv["size"]: lv for lv in m["levels"]}
by_size = {e["level_size"]: e for e in p["levels"]}
assert sorted(by_size) == [L for L in sorted(levels) if L >= P], by_size
corners = {}
for L, e in sorted(by_size.items()):
    level = np.load(os.path.join(out, levels[L]["file"]))
    patches = load(e["patches"], m["dtype"])
    pos = load(e["positions"], "int32")
    grid = np.arange(0, L - P + 1, S)
    want = np.array([(r, c) for r in grid for c in grid], dtype=np.int32)
    assert np.array_equal(pos, want), (L, pos)
    assert patches.shape[:3] == (m["count"], len(want), m["channels"])
    for j, (r, c) in enumerate(pos):
        assert np.array_equal(patches[:, j], level[:, :, r:r + P, c:c + P]), (L, j)
    corners[L] = pos
    if L // 2 not in by_size:
        assert "neighbours" not in e, L
        continue
    nb = load(e["neighbours"], "int32")
    lower = corners[L // 2]
    assert nb.shape[0] == len(pos), nb.shape
    for j, (r, c) in enumerate(pos):
        listed = [k for k in nb[j] if k >= 0]
        assert all(k == -1 for k in nb[j][len(listed):]), (L, j, nb[j])
        # Twice the coarse coordinates keep the test in integers.
        hits = [k for k, (r2, c2) in enumerate(lower)
                if 2 * r2 < r + P and 2 * (r2 + P) > r
                and 2 * c2 < c + P and 2 * (c2 + P) > c]
        assert listed == hits, (L, j, listed, hits)
        for k in listed:
            r2, c2 = lower[k]
            assert max(r2, r / 2) < min(r2 + P, (r + P) / 2), (L, j, k)
            assert max(c2, c / 2) < min(c2 + P, (c + P) / 2), (L, j, k)
    assert nb.shape[1] == max(len([k for k in row if k >= 0]) for row in nb)
EOF
        fail "patch arrays of --dtype $dtype do not match the levels"
done
run_prep --size 16 --patches 4 --patch-stride 2 --overwrite \
    "$in" "$work/patches-float32"
expect_rc 0 "--overwrite of a folder with patch arrays"
# --check covers the patch arrays: a flipped byte in one fails it.
run_prep --check "$work/patches-float32"
expect_rc 0 "--check of a dataset with patch arrays"
grep -q "^ok      neighbours_16.npy: SHA-256 matches" "$work/out.txt" ||
    fail "--check did not check neighbours_16.npy"
"$python" - "$work/patches-float32/patches_8.npy" <<'EOF' ||
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(-1, 2)
    last = f.read(1)[0]
    f.seek(-1, 2)
    f.write(bytes([last ^ 1]))
EOF
    fail "cannot change patches_8.npy"
run_prep --check "$work/patches-float32"
expect_rc 1 "--check of a changed patch array"
grep -q "^FAIL    patches_8.npy: checksum mismatch" "$work/out.txt" ||
    fail "--check missed the changed patch array"
pass
run_prep --patch-stride 2 "$in" "$work/none"
expect_rc 1 "--patch-stride without --patches"
expect_in_stderr "--patch-stride needs --patches"
run_prep --size 8 --patches 16 "$in" "$work/none"
expect_rc 1 "--patches larger than --size"
expect_in_stderr "invalid value 16 for --patches"
pass

# ---- --check ----------------------------------------------------------------
# A dataset as written passes; each kind of damage fails with a message
# that names the file and the problem.
run_prep -q --size 16 "$in" "$work/checked"
expect_rc 0 "dataset for --check"
run_prep --check "$work/checked"
expect_rc 0 "--check of an intact dataset"
grep -q "^ok      level_8.npy: 2x2 mean of level_16.npy" "$work/out.txt" ||
    fail "--check did not check the 2x2 mean"
grep -q "^ok      files.txt: line count 7 matches" "$work/out.txt" ||
    fail "--check did not check files.txt"
grep -q "^ok      skipped.tsv: line count 3 matches" "$work/out.txt" ||
    fail "--check did not check skipped.tsv"
grep -q "checks: [0-9]* passed, 0 failed, 0 not run" "$work/out.txt" ||
    fail "--check summary of an intact dataset"
pass

cp -r "$work/checked" "$work/flipped"
"$python" - "$work/flipped/level_8.npy" <<'EOF' || fail "cannot flip a byte"
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[-5] ^= 0x01
open(path, "wb").write(bytes(data))
EOF
run_prep --check "$work/flipped"
expect_rc 1 "--check of a flipped byte"
expect_in_stderr "flipped/level_8.npy: checksum mismatch: SHA-256 is"
expect_in_stderr "flipped/level_8.npy: not the 2x2 mean of level_16.npy"
expect_in_stderr "flipped: 3 of 14 checks failed"
grep -q "^FAIL    level_8.npy: checksum mismatch" "$work/out.txt" ||
    fail "--check output lacks the FAIL line of the flipped byte"

cp -r "$work/checked" "$work/truncated"
truncate -s -100 "$work/truncated/level_16.npy"
run_prep --check "$work/truncated"
expect_rc 1 "--check of a truncated level file"
expect_in_stderr "truncated/level_16.npy: checksum mismatch"
expect_in_stderr "truncated/level_16.npy: file has"

cp -r "$work/checked" "$work/short-list"
sed -i '$d' "$work/short-list/files.txt"
run_prep --check "$work/short-list"
expect_rc 1 "--check of a files.txt with a line removed"
expect_in_stderr "short-list/files.txt: line count 6, but manifest.json records \"count\" = 7"
expect_in_stderr "short-list: 1 of 14 checks failed"

# Only avg-pool levels are compared; the others report the check as not
# run.
run_prep -q --size 16 --reduce gaussian "$in" "$work/checked-gaussian"
expect_rc 0 "gaussian dataset for --check"
run_prep --check "$work/checked-gaussian"
expect_rc 0 "--check of a gaussian dataset"
grep -q "^not run level_8.npy: 2x2 mean not checked" "$work/out.txt" ||
    fail "--check compared gaussian levels by the 2x2 mean"

run_prep --check "$work/checked" "$work/extra"
expect_rc 1 "--check with two folders"
expect_in_stderr "--check expects one OUT_DIR"
pass

# A file size limit (ulimit -f, in KB here) makes writes fail with EFBIG
# instead of killing the process: a clear error, no temporary folder
# left, and the old dataset kept.
run_prep -q --size 32 --limit 50 "$source/datasets/fashion-mnist/sample" \
    "$work/fsize"
expect_rc 0 "dataset to keep under a file size limit"
before=$(sha256sum "$work/fsize/manifest.json")
rc=0
(ulimit -f 40; exec "$prep" -q --overwrite --size 32 --limit 100 \
    "$source/datasets/fashion-mnist/sample" "$work/fsize") \
    2>"$work/err" || rc=$?
expect_rc 1 "fsr-prep over the file size limit"
expect_in_stderr "File too large"
[[ $(sha256sum "$work/fsize/manifest.json") == "$before" ]] ||
    fail "the file size limit changed the old dataset"
compgen -G "$work/fsize.tmp.*" >/dev/null &&
    fail "the file size limit left a temporary folder"
pass

# ---- Sharded preparation ---------------------------------------------------
# Three shards of the input folder, which has a corrupt file, merged in
# shuffled order, must equal one unsharded run byte for byte.
for dtype in float32 uint8; do
    whole=$work/whole-$dtype
    run_prep -q --size 16 --color rgb --dtype "$dtype" "$in" "$whole"
    expect_rc 0 "unsharded $dtype run"
    for i in 0 1 2; do
        run_prep -q --size 16 --color rgb --dtype "$dtype" --shard "$i/3" \
            "$in" "$work/shard$i-$dtype"
        expect_rc 0 "shard $i/3 $dtype"
    done
    merged=$work/merged-$dtype
    run_prep --merge "$merged" "$work/shard2-$dtype" "$work/shard0-$dtype" \
        "$work/shard1-$dtype"
    expect_rc 0 "--merge of 3 $dtype shards"
    expect_in_stderr "merged 3 shards; wrote $merged"
    for name in level_4.npy level_8.npy level_16.npy files.txt skipped.tsv; do
        cmp "$whole/$name" "$merged/$name" ||
            fail "merged $dtype $name differs from the unsharded run"
        pass
    done
    "$python" - "$whole" "$merged" "$work/shard1-$dtype" "$dtype" <<'PY' ||
import json, sys
whole, merged, shard = (json.load(open(d + "/manifest.json"))
                        for d in sys.argv[1:4])
for key in ("count", "files"):
    assert whole[key] == merged[key], (key, whole[key], merged[key])
assert len(whole["levels"]) == len(merged["levels"]) == 3
for a, b in zip(whole["levels"], merged["levels"]):
    for key in ("shape", "sha256", "mean", "std"):
        assert a[key] == b[key], (a["file"], key, a[key], b[key])
assert "shard" not in merged and "shard" not in whole
assert len(merged["merged_from"]) == 3, merged["merged_from"]
assert merged["merged_from"][0].endswith("shard0-" + sys.argv[4]), merged
assert shard["shard"] == {"index": 1, "count": 3, "first": 3,
                          "files_total": 10}, shard["shard"]
assert shard["files"]["found"] == 3, shard["files"]
PY
        fail "manifests of the unsharded and merged $dtype runs disagree"
    pass
done
run_prep --check "$work/merged-float32"
expect_rc 0 "--check of a merged dataset"

# The split is contiguous in sorted order: shard 2 of 3 holds files
# 6 to 9 of the 10 found.
"$python" - "$work/shard2-float32" <<'PY' || fail "shard 2/3 has the wrong files"
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
assert m["shard"]["first"] == 6 and m["files"]["found"] == 4, m
PY
pass

run_prep --merge "$work/merge-missing" "$work/shard0-float32" \
    "$work/shard2-float32"
expect_rc 1 "--merge with a missing shard"
expect_in_stderr "shard0-float32: shard of 3, but 2 shard folders are given; shard 1 is missing"
[[ ! -e $work/merge-missing ]] || fail "failed --merge left its output"
pass

run_prep --merge "$work/merge-dup" "$work/shard0-float32" \
    "$work/shard1-float32" "$work/shard1-float32" "$work/shard2-float32"
expect_rc 1 "--merge with a duplicated shard"
expect_in_stderr "shard1-float32: shard 1 of 3 is given twice"

run_prep -q --size 8 --color rgb --shard 1/3 "$in" "$work/shard1-size8"
expect_rc 0 "shard 1/3 at --size 8"
run_prep --merge "$work/merge-size" "$work/shard0-float32" \
    "$work/shard1-size8" "$work/shard2-float32"
expect_rc 1 "--merge of shards with different --size"
expect_in_stderr "shard1-size8: \"base_size\" is 8, but $work/shard0-float32 records 16"

run_prep --merge "$work/merge-uint8" "$work/shard0-float32" \
    "$work/shard1-uint8" "$work/shard2-float32"
expect_rc 1 "--merge of shards with different --dtype"
expect_in_stderr "shard1-uint8: \"dtype\" is \"uint8\""

run_prep -q --size 16 --color rgb --on-warning skip --shard 1/3 "$in" \
    "$work/shard1-skipwarned"
expect_rc 0 "shard 1/3 with --on-warning skip"
run_prep --merge "$work/merge-warned" "$work/shard0-float32" \
    "$work/shard1-skipwarned" "$work/shard2-float32"
expect_rc 1 "--merge of shards with different --on-warning"
expect_in_stderr "shard1-skipwarned: \"on_warning\" is \"skip\""

run_prep --merge "$work/merge-whole" "$work/whole-float32"
expect_rc 1 "--merge of an unsharded dataset"
expect_in_stderr "whole-float32: not a shard"

run_prep -q --size 16 --patches 8 --shard 0/1 "$in" "$work/shard-patches"
expect_rc 0 "single shard with --patches"
run_prep --merge "$work/merge-patches" "$work/shard-patches"
expect_rc 1 "--merge of a shard with patch arrays"
expect_in_stderr "shard-patches: shard has patch arrays, which --merge does not join"

for bad in 3/3 1 -1/2 1/0 a/2 1/2x; do
    run_prep --shard "$bad" "$in" "$work/bad-shard"
    expect_rc 1 "--shard $bad"
    expect_in_stderr "invalid value '$bad' for --shard"
done
run_prep --merge --shard 0/2 "$work/merge-opts" "$work/shard0-float32"
expect_rc 1 "--merge with --shard"
expect_in_stderr "--merge cannot be combined with --shard"
run_prep --merge "$work/merge-one"
expect_rc 1 "--merge without shard folders"
expect_in_stderr "--merge expects OUT_DIR and at least one SHARD_DIR"

run_prep --shard 0/11 "$in" "$work/empty-shard"
expect_rc 1 "--shard with more shards than files"
expect_in_stderr "shard 0 of 11 of $in contains no files"

leftovers=$(find "$work" -maxdepth 1 -name '*.tmp.*' -o -maxdepth 1 -name '*.old.*')
[[ -z $leftovers ]] || fail "temporary folders left: $leftovers"
pass

echo "prep_cli: $checks checks passed"
