#!/usr/bin/env bash
# End-to-end test of fsr-report. Prepares 80 bundled Fashion-MNIST images
# at 16 px, trains a 2-level model for 4 steps and reports on 64 samples.
# Checks summary.json (keys, frequencies in [0, 1], diversity, the power
# spectrum against NumPy's FFT), index.html and its inlined images. A
# generator made NaN must be reported with a warning, a banner and
# counts, paths that are not UTF-8 with U+FFFD, and checkpoints of
# different runs with a warning. Then checks that missing or corrupt
# inputs and different model configurations fail with the file named on
# stderr; that failed writes, SIGINT and SIGTERM leave no partial output
# folder; that only report folders are replaced; and the option errors.
#
# Usage: bash tests/report_cli.sh BUILD_DIR SOURCE_DIR
# Needs /usr/bin/python3 with NumPy (Debian's python3-numpy).
set -euo pipefail

build=$1
source=$2
images=$source/datasets/fashion-mnist/sample
python=/usr/bin/python3
levels=2
samples=64

work=$(mktemp -d /tmp/fsr-report-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
checks=0

# With FSR_SANITIZE, LeakSanitizer would fail fsr-report on the
# configuration that fontconfig keeps until exit. Other leaks still fail.
echo "leak:libfontconfig.so" >"$work/lsan.supp"
export LSAN_OPTIONS="suppressions=$work/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

fail() {
    echo "report_cli: FAIL: $*" >&2
    exit 1
}

pass() {
    checks=$((checks + 1))
}

# Runs a tool with the given arguments. Stores the exit status in rc and
# stderr in $work/err.
run() {
    rc=0
    "$@" 2>"$work/err" >"$work/out.txt" || rc=$?
}

expect_rc() {
    if [[ $rc -ne $1 ]]; then
        cat "$work/err" >&2
        fail "$2: exit status $rc, expected $1"
    fi
    pass
}

expect_failure_naming() {
    if [[ $rc -eq 0 ]]; then
        fail "$2: exit status 0, expected a failure"
    fi
    grep -qF -- "$1" "$work/err" || {
        cat "$work/err" >&2
        fail "$2: stderr does not name $1"
    }
    pass
}

"$python" -c 'import numpy' 2>/dev/null ||
    fail "$python cannot import numpy; install python3-numpy"
for tool in fsr-prep fsr-train fsr-report; do
    [[ -x $build/$tool ]] || fail "$build/$tool not found; build the $tool target"
done
[[ -d $images ]] || fail "$images not found"

# ---- A normal run -----------------------------------------------------------
data=$work/data
run=$work/run
out=$work/report
run "$build/fsr-prep" -q --limit 80 --size 16 "$images" "$data"
expect_rc 0 "fsr-prep"
run "$build/fsr-train" -q --steps 4 --batch 16 --levels $levels \
    --log-every 2 "$data" "$run"
expect_rc 0 "fsr-train"
[[ -f $run/init.safetensors && -f $run/final.safetensors ]] ||
    fail "fsr-train wrote no checkpoints"
pass

run "$build/fsr-report" -q --data "$data" --init "$run/init.safetensors" \
    --trained "$run/final.safetensors" --out "$out" --samples $samples
expect_rc 0 "fsr-report"
[[ ! -s $work/err ]] || fail "-q printed: $(cat "$work/err")"
pass

"$python" - "$out" "$data" "$levels" "$samples" <<'EOF' || fail "the checks of $out above failed"
import base64, json, math, os, re, sys
import numpy as np

out, data, levels, samples = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4])
problems = []

def check(condition, message):
    if not condition:
        problems.append(message)

def in_unit(value):
    return isinstance(value, (int, float)) and 0 <= value <= 1

with open(os.path.join(out, "summary.json")) as f:
    s = json.load(f)
for key in ["tool", "version", "inputs", "samples", "seed", "model",
            "histogram", "layers", "diversity", "spectrum", "non_finite",
            "non_finite_outputs_init", "non_finite_outputs_trained"]:
    check(key in s, f"summary.json lacks '{key}'")
check(s.get("tool") == "fsr-report", f"tool is {s.get('tool')!r}")
check(s.get("samples") == samples, f"samples is {s.get('samples')}")
check(s.get("model", {}).get("n_levels") == levels,
      f"model.n_levels is {s.get('model', {}).get('n_levels')}")
check(s["inputs"]["init_step"] == 0, "init_step is not 0")
check(s["inputs"]["trained_step"] == 4, "trained_step is not 4")
check(s["inputs"]["data_images"] == 80, "data_images is not 80")
check(isinstance(s["inputs"]["init_seed"], int),
      f"init_seed is {s['inputs']['init_seed']!r}")
check(s["inputs"]["init_seed"] == s["inputs"]["trained_seed"],
      "init_seed and trained_seed differ")
check(s["warnings"] == [], f"warnings {s['warnings']}")
check(s["non_finite_outputs_init"] == 0, "init made NaN or inf")
check(s["non_finite_outputs_trained"] == 0, "trained made NaN or inf")
check(s["non_finite"]["init"] == 0, "init made NaN or inf activations")
check(s["non_finite"]["trained"] == 0,
      "trained made NaN or inf activations")

# ---- hidden layers
layers = s.get("layers", [])
check(len(layers) == levels, f"{len(layers)} layers, expected {levels}")
for layer in layers:
    l, m, positions = layer["layer"], layer["channels"], layer["positions"]
    for net in ["init", "trained"]:
        stats = layer[net]
        for kind in ["marginal", "pair", "triple"]:
            freq = stats[kind]
            for field in ["mean", "median", "max",
                          "fraction_above_threshold"]:
                check(in_unit(freq[field]),
                      f"layer {l} {net} {kind} {field} = {freq[field]}")
            check(freq["mean"] <= freq["max"],
                  f"layer {l} {net} {kind}: mean above max")
            h = freq["histogram"]
            binned = sum(h["counts"]) + h["zeros"] + h["below_lo"] + \
                h["above_hi"]
            check(binned == h["total"] == freq["count"],
                  f"layer {l} {net} {kind}: histogram counts {binned}, "
                  f"total {h['total']}, count {freq['count']}")
            if kind != "marginal":
                ind = freq["independence"]
                for field in ["mean", "max", "fraction_above_threshold",
                              "fraction_positively_correlated"]:
                    check(in_unit(ind[field]),
                          f"layer {l} {net} {kind} independence {field} "
                          f"= {ind[field]}")
        check(stats["marginal"]["count"] == positions * m,
              f"layer {l} {net}: marginal count")
        l0 = stats["l0"]
        check(len(l0["counts"]) == m + 1, f"layer {l} {net}: l0 counts")
        check(sum(l0["counts"]) == samples * positions,
              f"layer {l} {net}: l0 counts sum {sum(l0['counts'])}")
        check(0 <= l0["mean"] <= m, f"layer {l} {net}: l0 mean")
        check(layer["non_finite"][net] == 0,
              f"layer {l} {net}: {layer['non_finite'][net]} non-finite")

# ---- diversity
rows = s["diversity"]["levels"]
check(len(rows) == levels, f"{len(rows)} diversity levels")
for row in rows:
    for net in ["init", "trained", "real"]:
        v = row[net]
        check(isinstance(v, (int, float)) and 0 < v <= 0.5,
              f"diversity of level {row['level']} {net} is {v}")

# ---- power spectrum, recomputed from level_16.npy with NumPy's FFT
spec = s["spectrum"]
size = spec["size"]
check(size == 16, f"spectrum size {size}")
check(spec["radius"] == list(range(size // 2 + 1)),
      f"spectrum radius {spec['radius']}")
check(spec["real_images"] == 80, f"spectrum real_images "
      f"{spec['real_images']}")
check(spec["generated_samples"] == samples, "spectrum generated_samples")
for net in ["real", "init", "trained"]:
    values = spec[net]
    check(len(values) == size // 2 + 1, f"spectrum {net} length")
    check(all(math.isfinite(v) and v >= 0 for v in values),
          f"spectrum {net} has negative or non-finite values")
    check(abs(values[0]) < 1e-9, f"spectrum {net} radius 0 is {values[0]}")
    check(sum(values[1:]) > 0, f"spectrum {net} is all zero")

x = np.load(os.path.join(data, "level_16.npy")).astype(np.float64)
x = x[:spec["real_images"]]
x = x - x.mean(axis=(2, 3), keepdims=True)
power = np.abs(np.fft.fft2(x)) ** 2 / size ** 4
k = np.fft.fftfreq(size, 1.0 / size)
bins = np.rint(np.hypot(k[:, None], k[None, :])).astype(int)
want = [power[..., bins == r].sum(axis=-1).mean()
        for r in range(size // 2 + 1)]
want_corners = power[..., bins > size // 2].sum(axis=-1).mean()
diff = max(abs(a - b) for a, b in zip(spec["real"], want))
check(diff <= 1e-6 * max(want),
      f"real spectrum differs from NumPy's by {diff:.3g}")
check(abs(spec["corners"]["real"] - want_corners) <= 1e-6 * max(want),
      "real corner power differs from NumPy's")
variance = x.var(axis=(2, 3)).mean()
total = sum(spec["real"]) + spec["corners"]["real"]
check(abs(total - variance) <= 1e-5 * variance,
      f"real spectrum sums to {total}, the mean variance is {variance}")

# ---- files and index.html
expected_png = ["spectrum.png"] + \
    [f"activations_layer{l}.png" for l in range(1, levels + 1)] + \
    [f"samples_{net}_{row['size']}px.png" for row in rows
     for net in ["init", "trained", "real"]]
check([row["size"] for row in rows] == [8, 16],
      f"level sizes {[row['size'] for row in rows]}")
for name in expected_png:
    path = os.path.join(out, name)
    check(os.path.isfile(path), f"{name} is missing")
    if os.path.isfile(path):
        with open(path, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG")
for name in ["spectrum.svg"] + \
        [f"activations_layer{l}.svg" for l in range(1, levels + 1)]:
    check(os.path.isfile(os.path.join(out, name)), f"{name} is missing")

html_path = os.path.join(out, "index.html")
check(os.path.isfile(html_path), "index.html is missing")
with open(html_path) as f:
    html = f.read()
check(html.rstrip().endswith("</html>"), "index.html is not complete")
inline = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
check(len(inline) == len(expected_png),
      f"index.html inlines {len(inline)} PNGs, expected {len(expected_png)}")
for encoded in inline:
    check(base64.b64decode(encoded, validate=True)[:8] ==
          b"\x89PNG\r\n\x1a\n", "an inlined image is not a PNG")
for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
    if ref.startswith("data:"):
        continue
    check(os.path.isfile(os.path.join(out, ref)),
          f"index.html refers to {ref}, which is missing")
check("<h2>Power spectrum</h2>" in html, "index.html lacks the spectrum")
check("high-frequency" in html, "index.html lacks the spectrum caption")
check('class="alert"' not in html,
      "index.html has a non-finite banner for finite networks")
check('class="note"' not in html, "index.html has warnings")

for p in problems:
    print("report_cli: FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
pass

# ---- A diverged network ------------------------------------------------------
# G.fc.bias set to NaN makes every activation and image of the trained
# generator NaN, as a diverged training run does.
nan_checkpoint=$work/nan.safetensors
"$python" - "$run/final.safetensors" "$nan_checkpoint" <<'EOF' ||
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
blob = bytearray(open(src, "rb").read())
header_len = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + header_len])
begin, end = header["G.fc.bias"]["data_offsets"]
for at in range(8 + header_len + begin, 8 + header_len + end, 4):
    blob[at:at + 4] = struct.pack("<f", float("nan"))
open(dst, "wb").write(blob)
EOF
    fail "cannot write $nan_checkpoint"
nan_out=$work/nan-report
run "$build/fsr-report" --data "$data" --init "$run/init.safetensors" \
    --trained "$nan_checkpoint" --out "$nan_out" --samples 16
expect_rc 0 "fsr-report on a NaN generator"
grep -q "warning: the trained generator .* NaN or infinite values" \
    "$work/err" || fail "no NaN warning on stderr: $(cat "$work/err")"
pass
grep -q "the trained network produced [1-9][0-9]* non-finite values" \
    "$work/err" ||
    fail "the summary line lacks the NaN count: $(cat "$work/err")"
pass
if grep -q "the initial network produced" "$work/err"; then
    fail "the summary line blames the finite initial network"
fi
pass

"$python" - "$nan_out" "$levels" <<'EOF' ||
import json, os, sys
out, levels = sys.argv[1], int(sys.argv[2])
problems = []

def check(condition, message):
    if not condition:
        problems.append(message)

with open(os.path.join(out, "summary.json")) as f:
    s = json.load(f)
check(s["non_finite"]["init"] == 0, "init counted non-finite values")
check(s["non_finite"]["trained"] > 0, "trained counted no non-finite values")
check(s["non_finite_outputs_trained"] > 0, "no non-finite trained outputs")
check(len(s["layers"]) == levels, "layers missing")
total = 0
for layer in s["layers"]:
    check(layer["non_finite"]["init"] == 0,
          f"layer {layer['layer']}: init non-finite")
    check(layer["non_finite"]["trained"] > 0,
          f"layer {layer['layer']}: no trained non-finite activations")
    total += layer["non_finite"]["trained"]
for row in s["diversity"]["levels"]:
    check(row["non_finite"]["trained"] > 0,
          f"level {row['level']}: no trained non-finite images")
    total += row["non_finite"]["trained"]
check(total == s["non_finite"]["trained"],
      f"per-layer counts add up to {total}, the total is "
      f"{s['non_finite']['trained']}")

with open(os.path.join(out, "index.html")) as f:
    html = f.read()
banner = html.find('<div class="alert">')
check(banner >= 0, "index.html has no non-finite banner")
check(banner < html.find("<table>"), "the banner is not at the top")
check("The trained generator produced" in html, "the banner names no network")
check("The init generator produced" not in html,
      "the banner blames the finite init network")

for p in problems:
    print("report_cli: FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
    fail "the checks of $nan_out above failed"
pass

# ---- Paths that are not UTF-8 ------------------------------------------------
# File names are bytes. The report must still write valid UTF-8, with
# U+FFFD in place of each invalid sequence.
latin1_data=$work/data-$'\xe9t\xe9'
latin1_init=$work/init-$'\xff'.safetensors
ln -s "$data" "$latin1_data"
cp "$run/init.safetensors" "$latin1_init"
latin1_out=$work/latin1-report
run "$build/fsr-report" -q --data "$latin1_data" --init "$latin1_init" \
    --trained "$run/final.safetensors" --out "$latin1_out" --samples 8
expect_rc 0 "fsr-report with non-UTF-8 paths"
"$python" - "$latin1_out" <<'EOF' ||
import json, os, sys
out = sys.argv[1]
problems = []

def check(condition, message):
    if not condition:
        problems.append(message)

def read_utf8(name):
    with open(os.path.join(out, name), "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(f"{name} is not valid UTF-8: {e}")
        return raw.decode("utf-8", "replace")

s = json.loads(read_utf8("summary.json"))
check(s["inputs"]["data"].endswith("/data-\ufffdt\ufffd"),
      f"summary.json data is {s['inputs']['data']!r}")
check(s["inputs"]["init"].endswith("/init-\ufffd.safetensors"),
      f"summary.json init is {s['inputs']['init']!r}")
check("data-\ufffdt\ufffd" in s["command_line"],
      f"summary.json command_line is {s['command_line']!r}")
html = read_utf8("index.html")
check("data-\ufffdt\ufffd" in html, "index.html lacks the data path")
check("init-\ufffd.safetensors" in html, "index.html lacks the init path")

for p in problems:
    print("report_cli: FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
    fail "the checks of $latin1_out above failed"
pass

# ---- Checkpoints that do not belong together ---------------------------------
# Writes SRC to DST with metadata changed: KEY=VALUE sets a metadata
# string, config.KEY=JSON one field of the model configuration.
set_metadata() {
    "$python" - "$@" <<'EOF'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
blob = open(src, "rb").read()
header_len = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + header_len])
meta = header["__metadata__"]
for pair in sys.argv[3:]:
    key, value = pair.split("=", 1)
    if key.startswith("config."):
        config = json.loads(meta["config"])
        config[key[len("config."):]] = json.loads(value)
        meta["config"] = json.dumps(config)
    else:
        meta[key] = value
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + blob[8 + header_len:])
EOF
}

# expect_warning INIT TRAINED TEXT CASE: runs fsr-report on the two
# checkpoints and expects a warning containing TEXT on stderr, in
# index.html and in summary.json.
expect_warning() {
    local out=$work/warned
    rm -rf "$out"
    run "$build/fsr-report" --data "$data" --init "$1" --trained "$2" \
        --out "$out" --samples 8
    expect_rc 0 "$4"
    grep -F -- "$3" "$work/err" | grep -q "warning:" ||
        fail "$4: no warning '$3' on stderr: $(cat "$work/err")"
    grep -qF -- "$3" "$out/index.html" ||
        fail "$4: index.html lacks the warning '$3'"
    "$python" -c 'import json, sys
warnings = json.load(open(sys.argv[1]))["warnings"]
sys.exit(0 if any(sys.argv[2] in w for w in warnings) else 1)' \
        "$out/summary.json" "$3" ||
        fail "$4: summary.json lacks the warning '$3'"
    pass
}

expect_warning "$run/final.safetensors" "$run/init.safetensors" \
    "--init and --trained may be swapped" "swapped checkpoints"

set_metadata "$run/init.safetensors" "$work/step2.safetensors" step=2
expect_warning "$work/step2.safetensors" "$run/final.safetensors" \
    "is at step 2, not at initialization" "init checkpoint at step 2"

set_metadata "$run/init.safetensors" "$work/seed7.safetensors" seed=7
expect_warning "$work/seed7.safetensors" "$run/final.safetensors" \
    "the checkpoints have different seeds (7 in" "different seeds"

# ---- Missing and corrupt inputs ------------------------------------------------
failed=$work/failed
report_with() {
    run "$build/fsr-report" -q --data "$1" --init "$2" --trained "$3" \
        --out "$failed" --samples 8
}

report_with "$data" "$work/missing.safetensors" "$run/final.safetensors"
expect_failure_naming "$work/missing.safetensors" "missing init checkpoint"

report_with "$data" "$run/init.safetensors" "$work/missing.safetensors"
expect_failure_naming "$work/missing.safetensors" "missing trained checkpoint"

head -c 100 "$run/final.safetensors" >"$work/truncated_header.safetensors"
report_with "$data" "$run/init.safetensors" \
    "$work/truncated_header.safetensors"
expect_failure_naming "$work/truncated_header.safetensors" \
    "checkpoint cut inside its header"

size=$(stat -c %s "$run/final.safetensors")
head -c $((size - 1000)) "$run/final.safetensors" \
    >"$work/truncated_data.safetensors"
report_with "$data" "$run/init.safetensors" \
    "$work/truncated_data.safetensors"
expect_failure_naming "$work/truncated_data.safetensors" \
    "checkpoint cut inside its data"

echo "not a checkpoint" >"$work/text.safetensors"
report_with "$data" "$work/text.safetensors" "$run/final.safetensors"
expect_failure_naming "$work/text.safetensors" "text file as checkpoint"

report_with "$work/no-data" "$run/init.safetensors" "$run/final.safetensors"
expect_failure_naming "$work/no-data" "missing dataset"

# A configuration that differs in one field keeps the tensor shapes, so
# only the comparison of configurations can reject it.
set_metadata "$run/init.safetensors" "$work/leaky.safetensors" \
    config.g_slope=0.1
report_with "$data" "$work/leaky.safetensors" "$run/final.safetensors"
expect_failure_naming "different model configurations (g_slope is 0.1 and 0)" \
    "different model configurations"

[[ ! -e $failed ]] || fail "a failed run created $failed"
pass

run "$build/fsr-report" --data "$data" --init "$run/init.safetensors" \
    --out "$failed"
expect_failure_naming "--trained" "missing --trained option"

# ---- The output folder ------------------------------------------------------
# The report is built in OUT.tmp.<pid> and renamed to OUT at the end, so
# no failure or interrupt leaves a partial folder.
leftovers() {
    compgen -G "$1.tmp.*" || compgen -G "$1.old.*" || true
}

# Prints a checksum of every file in the folder $1.
folder_sum() {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# A second report replaces the first one.
run "$build/fsr-report" -q --data "$data" --init "$run/init.safetensors" \
    --trained "$run/final.safetensors" --out "$out" --samples 32
expect_rc 0 "fsr-report over an earlier report"
grep -qE '"samples":[[:space:]]*32,' "$out/summary.json" ||
    fail "$out was not replaced"
[[ -z $(leftovers "$out") ]] || fail "leftovers: $(leftovers "$out")"
pass

# An empty folder is filled.
mkdir "$work/empty"
run "$build/fsr-report" -q --data "$data" --init "$run/init.safetensors" \
    --trained "$run/final.safetensors" --out "$work/empty/" --samples 8
expect_rc 0 "fsr-report into an empty folder"
[[ -f $work/empty/index.html ]] || fail "$work/empty has no index.html"
pass

# Folders with files that fsr-report did not write stay untouched.
mkdir "$work/notes"
echo "keep me" >"$work/notes/notes.txt"
cp -r "$out" "$work/mixed"
echo "keep me" >"$work/mixed/notes.txt"
echo "keep me" >"$work/a-file"
for target in notes mixed a-file; do
    before=$(cd "$work" && find "$target" -type f | sort | xargs sha256sum)
    run "$build/fsr-report" -q --data "$data" \
        --init "$run/init.safetensors" --trained "$run/final.safetensors" \
        --out "$work/$target" --samples 8
    expect_failure_naming "$work/$target" "--out $target"
    if [[ $target == mixed ]]; then
        expect_failure_naming "contains 'notes.txt'" "--out $target"
    fi
    after=$(cd "$work" && find "$target" -type f | sort | xargs sha256sum)
    [[ $before == "$after" ]] || fail "fsr-report changed $work/$target"
    [[ -z $(leftovers "$work/$target") ]] ||
        fail "leftovers: $(leftovers "$work/$target")"
    pass
done

# A write that fails after the first plots, as on a full disk: the file
# size limit stops the first histogram SVG after its PNG. fsr-report
# ignores SIGXFSZ itself, so the write fails instead of the process. The run has
# the settings of the report in $out, so the files have its sizes.
png_size=$(stat -c %s "$out/activations_layer1.png")
svg_size=$(stat -c %s "$out/activations_layer1.svg")
limit_kib=$((png_size / 1024 + 2))
((svg_size > limit_kib * 1024)) ||
    fail "activations_layer1.svg ($svg_size bytes) is too small for the test"
sum_before=$(folder_sum "$out")
for target in "$out" "$work/full"; do
    rc=0
    (ulimit -f $limit_kib &&
        exec "$build/fsr-report" -q --data "$data" \
            --init "$run/init.safetensors" \
            --trained "$run/final.safetensors" --out "$target" \
            --samples 32) 2>"$work/err" || rc=$?
    expect_failure_naming "activations_layer1.svg" "write failure"
    [[ -z $(leftovers "$target") ]] ||
        fail "a failed write left $(leftovers "$target")"
    pass
done
[[ ! -e $work/full ]] || fail "a failed write created $work/full"
[[ $(folder_sum "$out") == "$sum_before" ]] ||
    fail "a failed write changed the earlier report in $out"
pass

# SIGINT and SIGTERM stop the run and remove the work folder, leaving
# an earlier report as it was. 20,000 samples take several seconds, so
# the signal comes while the tool samples.
for signal in INT TERM; do
    target=$work/stopped-$signal
    [[ $signal == TERM ]] && cp -r "$out" "$target"
    sum_before=$( [[ -d $target ]] && folder_sum "$target" || true)
    "$build/fsr-report" -q --data "$data" --init "$run/init.safetensors" \
        --trained "$run/final.safetensors" --out "$target" \
        --samples 20000 2>"$work/err" &
    pid=$!
    for _ in $(seq 200); do
        [[ -n $(leftovers "$target") ]] && break
        sleep 0.05
    done
    [[ -n $(leftovers "$target") ]] || fail "SIG$signal: no work folder"
    kill -s "$signal" "$pid"
    rc=0
    wait "$pid" || rc=$?
    want=130
    [[ $signal == TERM ]] && want=143
    expect_rc $want "fsr-report stopped by SIG$signal"
    grep -qF "stopped by SIG$signal" "$work/err" ||
        fail "SIG$signal: stderr is '$(cat "$work/err")'"
    [[ -z $(leftovers "$target") ]] ||
        fail "SIG$signal left $(leftovers "$target")"
    sum_after=$( [[ -d $target ]] && folder_sum "$target" || true)
    [[ $sum_before == "$sum_after" ]] ||
        fail "SIG$signal changed $target"
    pass
done
[[ ! -e $work/stopped-INT ]] || fail "SIGINT left $work/stopped-INT"
pass

# ---- Option errors -----------------------------------------------------------
run "$build/fsr-report" --data "$data" --init "$run/init.safetensors" \
    --trained "$run/final.safetensors" --out "$failed" --samples 1
expect_failure_naming "--samples" "--samples 1"
grep -qF "at least two samples" "$work/err" ||
    fail "--samples 1: stderr does not give the minimum: $(cat "$work/err")"
pass
[[ ! -e $failed ]] || fail "--samples 1 created $failed"
pass

# getopt's messages name the tool, not the path it was started by.
run "$build/fsr-report" --no-such-option
expect_failure_naming "fsr-report: unrecognized option '--no-such-option'" \
    "unknown option"
if grep -qF "$build" "$work/err"; then
    fail "unknown option: stderr names the path: $(cat "$work/err")"
fi
pass

run "$build/fsr-report" --version
expect_rc 0 "--version"
grep -qxE "fsr-report [0-9]+\.[0-9]+\.[0-9]+" "$work/out.txt" ||
    fail "--version printed '$(cat "$work/out.txt")'"
pass

echo "report_cli: $checks checks passed"
