#!/usr/bin/python3
"""Write Fashion-MNIST images as 28 x 28 8-bit grayscale PNG files.

Reads the IDX files of Debian's dataset-fashion-mnist package and writes
either all 70,000 images (train-00000.png ... train-59999.png and
t10k-00000.png ... t10k-09999.png) or, with --sample N, a class-balanced
random subset of the training set. File names carry the image's index
in its IDX file, so sorted names keep the original order.

The sample is chosen by a splitmix64 generator written out below rather
than Python's random module, so the same --seed selects the same images
on every Python version. Uses only the standard library.

    /usr/bin/python3 make_png.py --sample 2000 --seed 1 sample
"""
import argparse
import gzip
import os
import shutil
import struct
import sys
import zlib

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SIDE = 28
MASK64 = (1 << 64) - 1


def read_idx(path, expected_dims):
    """Return (dims, data bytes) of a gzip-compressed IDX file of ubyte."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    if ndim != expected_dims:
        raise ValueError(f"{path}: {ndim} dimensions, expected "
                         f"{expected_dims}")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    size = 1
    for d in dims:
        size *= d
    if len(body) != size:
        raise ValueError(f"{path}: {len(body)} data bytes, expected {size}")
    return dims, body


def read_split(source, split):
    """Return (count, image bytes, label bytes) of 'train' or 't10k'."""
    image_dims, images = read_idx(
        os.path.join(source, f"{split}-images-idx3-ubyte.gz"), 3)
    label_dims, labels = read_idx(
        os.path.join(source, f"{split}-labels-idx1-ubyte.gz"), 1)
    if image_dims[1:] != (SIDE, SIDE) or label_dims[0] != image_dims[0]:
        raise ValueError(f"{source}: {split} images {image_dims} do not "
                         f"match labels {label_dims}")
    return image_dims[0], images, labels


def png_chunk(kind, payload):
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + \
        struct.pack(">I", crc)


def encode_png(pixels):
    """Encode SIDE x SIDE gray bytes as a PNG with unfiltered rows."""
    raw = b"".join(b"\x00" + pixels[y * SIDE:(y + 1) * SIDE]
                   for y in range(SIDE))
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) +
            png_chunk(b"IDAT", zlib.compress(raw, 9)) +
            png_chunk(b"IEND", b""))


class SplitMix64:
    """The splitmix64 generator (Steele, Lea and Flood, 2014)."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        """Uniform integer in [0, n), by rejection to avoid modulo bias."""
        limit = (1 << 64) - (1 << 64) % n
        while True:
            v = self.next()
            if v < limit:
                return v % n


def balanced_sample(labels, count, seed):
    """Pick COUNT indices, COUNT // 10 per class (the first COUNT % 10
    classes get one more), each class by a partial Fisher-Yates shuffle
    of its indices in file order. Returns the indices sorted."""
    rng = SplitMix64(seed)
    chosen = []
    for label in range(len(CLASS_NAMES)):
        members = [i for i, v in enumerate(labels) if v == label]
        want = count // len(CLASS_NAMES) + (label < count % len(CLASS_NAMES))
        if want > len(members):
            raise ValueError(f"class {label} has only {len(members)} images")
        for k in range(want):
            j = k + rng.below(len(members) - k)
            members[k], members[j] = members[j], members[k]
        chosen.extend(members[:want])
    return sorted(chosen)


def prepare_output(out_dir, overwrite):
    """Return a fresh temporary folder beside OUT_DIR, after checking that
    OUT_DIR may be replaced."""
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        sys.exit(f"make_png.py: error: {out_dir} is not empty; pass "
                 "--overwrite to replace it")
    tmp = f"{out_dir.rstrip('/')}.tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    return tmp


def write_images(tmp, jobs):
    """Write each (name, pixels) of JOBS into TMP."""
    for name, pixels in jobs:
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(encode_png(pixels))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="folder to write the PNG files to")
    parser.add_argument("--source", default="/usr/share/datasets/"
                        "fashion-mnist", help="folder of the IDX files "
                        "(default: %(default)s)")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="write only N training images, balanced over "
                        "the 10 classes")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the sample (default: %(default)s)")
    parser.add_argument("--labels", metavar="FILE",
                        help="also write FILE: file name, label and class "
                        "name per line, tab-separated")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty OUT_DIR")
    args = parser.parse_args()

    splits = ["train"] if args.sample is not None else ["train", "t10k"]
    jobs, label_lines = [], []
    for split in splits:
        count, images, labels = read_split(args.source, split)
        if args.sample is not None:
            if not 1 <= args.sample <= count:
                sys.exit(f"make_png.py: error: --sample must be from 1 to "
                         f"{count}")
            indices = balanced_sample(labels, args.sample, args.seed)
        else:
            indices = range(count)
        for i in indices:
            name = f"{split}-{i:05d}.png"
            pixels = images[i * SIDE * SIDE:(i + 1) * SIDE * SIDE]
            jobs.append((name, pixels))
            label_lines.append(f"{name}\t{labels[i]}\t"
                               f"{CLASS_NAMES[labels[i]]}\n")

    tmp = prepare_output(args.out_dir, args.overwrite)
    write_images(tmp, jobs)
    if os.path.exists(args.out_dir):
        shutil.rmtree(args.out_dir)
    os.rename(tmp, args.out_dir)
    if args.labels:
        tmp_labels = f"{args.labels}.tmp.{os.getpid()}"
        with open(tmp_labels, "w") as f:
            f.write("file\tlabel\tclass\n")
            f.writelines(label_lines)
        os.rename(tmp_labels, args.labels)
    print(f"make_png.py: wrote {len(jobs)} images to {args.out_dir}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
