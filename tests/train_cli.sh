#!/usr/bin/env bash
# fsr-train from the command line: outputs NumPy can parse, identical
# bits for 1 and 2 threads, refusal to overwrite a run, rejected
# settings, a diverging run stopped with a clear error, and Ctrl-C.
# Usage: train_cli.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
checks=0

check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    checks=$((checks + 1))
    if ! "$@"; then
        echo "train_cli: FAILED: $what" >&2
        failures=$((failures + 1))
    fi
}

if ! "$python" -c "import numpy" 2>/dev/null; then
    echo "train_cli: $python cannot import numpy; install python3-numpy" >&2
    exit 1
fi

"$build/fsr-prep" -q --size 16 --limit 64 \
    "$src/datasets/fashion-mnist/sample" "$work/data" || exit 1
train() { "$build/fsr-train" -q --levels 2 --batch 16 "$@"; }

train --steps 3 --threads 1 "$work/data" "$work/t1" 2> "$work/t1.err"
check "short run succeeds" test $? -eq 0
train --steps 3 --threads 2 "$work/data" "$work/t2" 2> "$work/t2.err"
check "two-thread run succeeds" test $? -eq 0
check "1 and 2 threads give identical checkpoints" \
    cmp -s "$work/t1/final.safetensors" "$work/t2/final.safetensors"
train --steps 3 --threads 2 --seed 2 "$work/data" "$work/t3" 2> /dev/null
check "another seed gives another checkpoint" \
    bash -c "! cmp -s '$work/t1/final.safetensors' '$work/t3/final.safetensors'"

# The checkpoint as a PyTorch user would read it: 8-byte header length,
# JSON header, tensors tiling the data section in order.
check "safetensors parse with numpy" "$python" - "$work/t1/final.safetensors" <<'EOT'
import json, struct, sys
import numpy as np
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
meta = header.pop("__metadata__")
config = json.loads(meta["config"])
assert config["image_size"] == 16, config
assert config["n_levels"] == 2, config
assert meta["step"] == "3", meta["step"]
body = data[8 + n:]
end = 0
for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
    begin, stop = t["data_offsets"]
    assert begin == end, (name, begin, end)
    array = np.frombuffer(body[begin:stop], dtype="<f4").reshape(t["shape"])
    assert np.isfinite(array).all(), name
    end = stop
assert end == len(body), (end, len(body))
w = header["G.up2.weight"]["shape"]
assert w == [64, 64, 4, 4], w
assert header["G.fc.weight"]["shape"] == [1024, 100]
assert "opt.D.v.D.out.weight" in header
EOT

check "metrics lines parse as JSON" "$python" -c "
import json, sys
lines = open('$work/t1/metrics.jsonl').read().splitlines()
assert len(lines) == 1, lines
row = json.loads(lines[0])
assert row['step'] == 3, row
assert row['images_per_s'] > 0, row
"

# Resuming: 3 steps, then 3 more from the checkpoint, must give the bits
# of 6 uninterrupted steps.
train --steps 6 --threads 2 "$work/data" "$work/full" 2> /dev/null
train --steps 3 --threads 2 "$work/data" "$work/part" 2> /dev/null
train --steps 6 --threads 1 --resume "$work/part/final.safetensors" \
    "$work/data" "$work/part" 2> "$work/resume.err"
check "resumed run succeeds" test $? -eq 0
check "resumed run equals an uninterrupted one" \
    cmp -s "$work/full/final.safetensors" "$work/part/final.safetensors"
check "resumed metrics continue the log" "$python" -c "
import json
steps = [json.loads(l)['step'] for l in open('$work/part/metrics.jsonl')]
assert steps == [3, 6], steps
"
train --steps 6 --seed 5 --resume "$work/part/final.safetensors" \
    "$work/data" "$work/other" 2> "$work/seed.err"
check "resume with another seed is rejected" test $? -eq 1
check "seed rejection names the seed" grep -q -- "--seed 1" "$work/seed.err"
train --steps 6 --width 8 --resume "$work/part/final.safetensors" \
    "$work/data" "$work/other" 2> "$work/cfg.err"
check "resume with another model is rejected" test $? -eq 1

train --steps 3 "$work/data" "$work/t1" 2> "$work/again.err"
check "existing run is refused" test $? -eq 1
check "refusal names --overwrite" grep -q -- "--overwrite" "$work/again.err"
train --steps 3 --overwrite "$work/data" "$work/t1" 2> /dev/null
check "--overwrite replaces the run" test $? -eq 0

train --steps 3 --batch 18 --mbstd-group 4 "$work/data" "$work/bad" \
    2> "$work/batch.err"
check "batch not a multiple of the group is rejected" test $? -eq 1
check "rejection names the group size" grep -q "group size 4" "$work/batch.err"
check "rejected run creates no folder" test ! -e "$work/bad"

train --steps 200 --lr-g 1 --lr-d 1 --beta1 0.9999 --beta2 0 \
    "$work/data" "$work/div" 2> "$work/div.err"
check "diverging run exits 1" test $? -eq 1
check "divergence is reported" grep -q "diverged at step" "$work/div.err"
check "diverged state is saved" test -s "$work/div/latest.safetensors"
check "diverged metrics stay valid JSON" "$python" -c "
import json
rows = [json.loads(l) for l in open('$work/div/metrics.jsonl')]
assert any(r['d_loss'] is None or r['g_loss'] is None for r in rows), rows[-1]
"

"$build/fsr-train" -q --levels 2 --batch 16 --steps 100000 \
    "$work/data" "$work/int" 2> "$work/int.err" &
pid=$!
for _ in $(seq 100); do
    [[ -s "$work/int/init.safetensors" ]] && break
    sleep 0.1
done
sleep 1
kill -INT $pid
# A second signal after a while keeps a broken handler from hanging ctest.
( sleep 60; kill -KILL $pid ) > /dev/null 2>&1 &
watchdog=$!
wait $pid
status=$?
kill $watchdog 2>/dev/null
check "Ctrl-C exits 130" test $status -eq 130
check "Ctrl-C saves latest.safetensors" test -s "$work/int/latest.safetensors"
check "Ctrl-C is reported" grep -q "interrupted after" "$work/int.err"

# Past a file size limit the checkpoint write fails with a message and
# exit status 1, instead of SIGXFSZ killing the process.
(ulimit -f 20; exec "$build/fsr-train" -q --levels 2 --batch 16 --steps 3 \
    "$work/data" "$work/fsize") 2> "$work/fsize.err"
status=$?
check "a file size limit exits 1" test $status -eq 1
check "a file size limit is reported" \
    grep -q "init.safetensors: write failed: File too large" "$work/fsize.err"
check "a file size limit leaves no checkpoint" \
    test ! -e "$work/fsize/init.safetensors"

echo "train_cli: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
