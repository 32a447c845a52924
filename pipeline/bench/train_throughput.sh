#!/usr/bin/env bash
# Training throughput of fsr-train against the PyTorch baseline
# (torch_baseline.py: the same networks, losses, R1 schedule and Adam), in
# one run on the same machine, 1 and 2 threads, alternating the two tools
# so that both see the same background load. Prints a Markdown table with
# images/s and the fsr / PyTorch ratio.
#
# Usage: train_throughput.sh [BUILD_DIR] [STEPS] [REPEATS]
#   BUILD_DIR defaults to build/, STEPS to 100 timed steps, REPEATS to 3
#   (the best of the repeats is reported). The PyTorch column needs
#   Debian's python3-torch.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
steps=${2:-100}
repeats=${3:-3}
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$build/fsr-prep" -q --size 32 "$root/datasets/fashion-mnist/sample" \
    "$work/data"
have_torch=1
"$python" -c "import torch" 2>/dev/null || have_torch=0

fsr_rate() { # fsr_rate THREADS: images/s over the run
    "$build/fsr-train" -q --overwrite --threads "$1" --steps "$steps" \
        --log-every "$steps" "$work/data" "$work/run" >/dev/null
    "$python" -c "import json; print(json.loads(open('$work/run/metrics.jsonl').read().splitlines()[-1])['images_per_s'])"
}

torch_rate() { # torch_rate THREADS
    "$python" "$root/pipeline/bench/torch_baseline.py" --size 32 \
        --channels 1 --steps "$steps" --threads "$1" |
        "$python" -c "import json, sys; print(json.load(sys.stdin)['images_per_s'])"
}

best() { sort -g | tail -1; }

echo "| threads | fsr-train images/s | PyTorch images/s | ratio |"
echo "| --- | --- | --- | --- |"
for threads in 1 2; do
    : > "$work/fsr.txt"
    : > "$work/torch.txt"
    for _ in $(seq "$repeats"); do
        fsr_rate "$threads" >> "$work/fsr.txt"
        if [[ $have_torch -eq 1 ]]; then
            torch_rate "$threads" >> "$work/torch.txt"
        fi
    done
    f=$(best < "$work/fsr.txt")
    if [[ $have_torch -eq 1 ]]; then
        t=$(best < "$work/torch.txt")
        ratio=$("$python" -c "print(f'{$f / $t:.2f}')")
    else
        t="(no python3-torch)"
        ratio="-"
    fi
    echo "| $threads | $f | $t | $ratio |"
done
