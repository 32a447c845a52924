#!/bin/bash
# Checks fsr's .npy files against NumPy: test_npy writes sample arrays
# that np.load must read (also with mmap_mode='r') with the right dtype
# (float32 or uint8), shape and values, and NumPy writes arrays (format
# versions 1.0 and 2.0, and uint8) that test_npy must read.
# Usage: bash tests/npy_numpy.sh BUILD_DIR SOURCE_DIR
set -u

build_dir=${1:?usage: npy_numpy.sh BUILD_DIR SOURCE_DIR}
python=/usr/bin/python3
test_npy="$build_dir/tests/test_npy"

if ! "$python" -c 'import numpy' 2>/dev/null; then
    echo "npy_numpy: $python cannot import numpy; install python3-numpy" >&2
    exit 1
fi
if [ ! -x "$test_npy" ]; then
    echo "npy_numpy: $test_npy not found; build the test_npy target" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fsr_npy_numpy.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir "$work/from_fsr" "$work/from_numpy"

"$test_npy" --write "$work/from_fsr" || {
    echo "npy_numpy: test_npy --write failed" >&2
    exit 1
}

"$python" - "$work" <<'PYTHON' || exit 1
import os
import sys

import numpy as np

work = sys.argv[1]
failures = 0


def fail(message):
    global failures
    failures += 1
    print(f"npy_numpy: {message}", file=sys.stderr)


def sample(shape):
    """Element i is (i % 17) / 8 - 1, as in tests/test_npy.c."""
    count = int(np.prod(shape, dtype=np.int64))
    values = (np.arange(count) % 17) / 8.0 - 1.0
    return values.astype(np.float32).reshape(shape)


expected = {
    "scalar": sample(()),
    "vector": sample((7,)),
    "matrix": sample((3, 5)),
    "nchw": sample((2, 3, 4, 5)),
    "empty": sample((0, 3)),
    "eight_dims": sample((1, 2, 1, 2, 1, 2, 1, 3)),
    "long_shape": sample((1000, 0, 123456, 1, 1, 98765, 1)),
    "special": np.array([np.inf, -np.inf, -0.0, 0.0, 1e-45,
                         np.finfo(np.float32).max,
                         -np.finfo(np.float32).tiny, 0.1],
                        dtype=np.float32),
}

for name, want in expected.items():
    path = os.path.join(work, "from_fsr", name + ".npy")
    for mmap_mode in (None, "r"):
        call = f"np.load({name}.npy, mmap_mode={mmap_mode!r})"
        try:
            got = np.load(path, mmap_mode=mmap_mode)
        except Exception as error:
            fail(f"{call} raised {error!r}")
            continue
        if got.dtype != np.float32:
            fail(f"{call}: dtype {got.dtype}, expected float32")
        if got.shape != want.shape:
            fail(f"{call}: shape {got.shape}, expected {want.shape}")
        elif got.tobytes() != want.tobytes():
            fail(f"{call}: values differ from the expected ones")
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
    if version != (1, 0):
        fail(f"{name}.npy has format version {version}, expected (1, 0)")
# The uint8 sample: element i of a 3 x 100 array is i % 256.
want_u8 = (np.arange(300) % 256).astype(np.uint8).reshape(3, 100)
path = os.path.join(work, "from_fsr", "u8.npy")
for mmap_mode in (None, "r"):
    got = np.load(path, mmap_mode=mmap_mode)
    if got.dtype != np.uint8:
        fail(f"np.load(u8.npy, mmap_mode={mmap_mode!r}): dtype {got.dtype}, "
             f"expected uint8")
    elif got.shape != want_u8.shape or not np.array_equal(got, want_u8):
        fail(f"np.load(u8.npy, mmap_mode={mmap_mode!r}): shape {got.shape} "
             f"or values differ")
print(f"npy_numpy: NumPy {np.__version__} read {len(expected) + 1} arrays "
      f"written by fsr")

# Arrays for test_npy --check: the same 2 x 3 x 4 sample in both format
# versions, and two files it must reject.
out = os.path.join(work, "from_numpy")
array = sample((2, 3, 4))
np.save(os.path.join(out, "numpy_v1.npy"), array)
with open(os.path.join(out, "numpy_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, array, version=(2, 0))
np.save(os.path.join(out, "numpy_f64.npy"), array.astype(np.float64))
np.save(os.path.join(out, "numpy_u8.npy"), want_u8)
np.save(os.path.join(out, "numpy_fortran.npy"),
        np.asfortranarray(sample((3, 4))))
sys.exit(1 if failures else 0)
PYTHON

"$test_npy" --check "$work/from_numpy" || {
    echo "npy_numpy: test_npy --check failed on files NumPy wrote" >&2
    exit 1
}
echo "npy_numpy: all checks passed"
