#!/usr/bin/python3
"""Pillow baseline of fsr-prep's decoding and pyramid, for prep_throughput.sh.

Does per file what fsr-prep does: decode, convert to gray or RGB,
center-crop to the short side, resize to --size with Pillow's exact box
filter and average-pool 2x2 down to 4 px, keeping float32 arrays in
[0, 1]. It writes nothing, so the time excludes fsr-prep's writing and
hashing of the arrays.

--draft lets Pillow's JPEG decoder reduce the image by 1/2, 1/4 or 1/8
in the DCT domain (Image.draft), keeping at least twice --size pixels
on both sides, which matches fsr-prep's own JPEG scaling policy for
center crops. Prints one JSON object: files, seconds, images_per_s.

Run with Debian's /usr/bin/python3, python3-pil and python3-numpy.
"""
import argparse
import json
import multiprocessing
import os
import time

import numpy as np
from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg")


def list_images(folder):
    """Return the image files under FOLDER, sorted, without hidden names."""
    found = []
    for parent, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                found.append(os.path.join(parent, name))
    return sorted(found)


def build_pyramid(path, size, mode, draft):
    """Return the levels of one file, finest first, as float32 arrays."""
    with Image.open(path) as img:
        if draft and img.format == "JPEG":
            img.draft(mode, (2 * size, 2 * size))
        img = img.convert(mode)
    width, height = img.size
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    img = img.resize((size, size), Image.BOX,
                     box=(left, top, left + side, top + side))
    level = np.asarray(img, dtype=np.float32) / 255.0
    levels = [level]
    while level.shape[0] > 4:
        level = 0.25 * ((level[0::2, 0::2] + level[0::2, 1::2]) +
                        (level[1::2, 0::2] + level[1::2, 1::2]))
        levels.append(level)
    return levels


def work(job):
    path, size, mode, draft = job
    build_pyramid(path, size, mode, draft)
    return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", help="folder of PNG and JPEG files")
    parser.add_argument("--size", type=int, default=32,
                        help="side of the finest level in pixels")
    parser.add_argument("--color", choices=("gray", "rgb"), default="gray")
    parser.add_argument("--draft", action="store_true",
                        help="let the JPEG decoder reduce in the DCT domain")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes that decode in parallel")
    args = parser.parse_args()

    mode = "L" if args.color == "gray" else "RGB"
    files = list_images(args.images)
    if not files:
        parser.error(f"no PNG or JPEG files found under {args.images}")
    jobs = [(path, args.size, mode, args.draft) for path in files]

    start = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.Pool(args.workers) as pool:
            done = sum(pool.map(work, jobs, chunksize=8))
    else:
        done = sum(work(job) for job in jobs)
    seconds = time.perf_counter() - start
    print(json.dumps({"files": done, "seconds": seconds,
                      "images_per_s": done / seconds}))


if __name__ == "__main__":
    main()
