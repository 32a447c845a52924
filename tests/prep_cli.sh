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
    if a.dtype != np.float32 or mapped.dtype != np.float32:
        problems.append(f"{level['file']}: dtype {a.dtype}")
    if not np.array_equal(a, mapped):
        problems.append(f"{level['file']}: mmap_mode read differs")
    if a.size and (a.min() < 0 or a.max() > 1):
        problems.append(f"{level['file']}: values outside [0, 1]")
    if abs(a.astype(np.float64).mean() - level["mean"]) > 1e-6 or \
       abs(a.astype(np.float64).std() - level["std"]) > 1e-6:
        problems.append(f"{level['file']}: mean or std differs")
    arrays.append(a)
for coarse, fine in zip(arrays, arrays[1:]):
    n, c, s, _ = coarse.shape
    pooled = fine.reshape(n, c, s, 2, s, 2).mean(axis=(3, 5))
    if np.abs(pooled - coarse).max() > 1e-6:
        problems.append(f"level {s} is not the 2x2 pool of level {2 * s}")
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
pass

# ---- Overwriting ------------------------------------------------------------
before=$(sha256sum "$out/manifest.json")
run_prep "$in" "$out"
expect_rc 1 "existing output without --overwrite"
expect_in_stderr "--overwrite"
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
check_arrays "$out" || fail "arrays after --overwrite"
pass

mkdir "$work/notes"
echo "keep" >"$work/notes/keep.txt"
run_prep --overwrite "$in" "$work/notes"
expect_rc 1 "overwrite of a folder without a dataset"
[[ -f $work/notes/keep.txt ]] || fail "a folder without a dataset was replaced"
pass

# ---- Limits and failures ------------------------------------------------------
run_prep --limit 2 "$in" "$work/limited"
expect_rc 0 "--limit 2"
expect_in_stderr "2 found, 1 loaded, 1 skipped"

run_prep --strict "$in" "$work/strict"
expect_rc 1 "--strict with skipped files"
[[ ! -e $work/strict ]] || fail "--strict failure wrote output"
pass

run_prep --max-pixels 100 "$in" "$work/small"
expect_rc 0 "--max-pixels 100"
grep -q 'exceeds the maximum' "$work/small/skipped.tsv" ||
    fail "--max-pixels did not skip the 16 x 16 images"
pass

mkdir "$work/unreadable"
echo "text" >"$work/unreadable/a.txt"
head -c 20 "$fixtures/gray16.png" >"$work/unreadable/b.png"
run_prep "$work/unreadable" "$work/none"
expect_rc 1 "folder without a readable image"
expect_in_stderr "none of the 2 files"
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
run_prep --help
expect_rc 0 "--help"
grep -q -- "--max-pixels" "$work/out.txt" || fail "--help lacks --max-pixels"
pass

leftovers=$(find "$work" -maxdepth 1 -name '*.tmp.*' -o -maxdepth 1 -name '*.old.*')
[[ -z $leftovers ]] || fail "temporary folders left: $leftovers"
pass

echo "prep_cli: $checks checks passed"
