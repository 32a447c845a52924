#!/usr/bin/python3
"""Cut square random crops from every photo under a folder.

For each photo (sorted by path) the script draws --per-photo crops. A
crop's side is 64 * k pixels with k uniform in 1 .. --max-factor, limited
to what fits in the photo's short side, and its position is uniform
over the photo. Each crop is written as an 8-bit RGB PNG file, or RGBA
when the photo has transparency so that fsr-prep composites it as it
would the whole photo. Files are named <photo path with / as _>-<n>.png,
and fsr-prep resizes a crop of side 64 * k by exactly 1/k. Every draw comes from Python's random.Random
seeded with --seed, so the same seed, photos and Python 3 version give
the same crops. EXIF orientation is applied before cropping, as
fsr-prep does.

Run with Debian's /usr/bin/python3 and python3-pil.
"""
import argparse
import os
import random
import sys

from PIL import Image, ImageOps

EXTENSIONS = (".png", ".jpg", ".jpeg")
UNIT = 64


def list_photos(folder):
    """Return the image paths under FOLDER relative to it, sorted."""
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                found.append(os.path.relpath(os.path.join(parent, name),
                                             folder))
    return sorted(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder of PNG and JPEG photos")
    parser.add_argument("out", help="folder for the crops, created if missing")
    parser.add_argument("--per-photo", type=int, default=16,
                        help="crops per photo (default 16)")
    parser.add_argument("--max-factor", type=int, default=8,
                        help="largest k of the crop side 64 * k (default 8)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the random generator (default 1)")
    args = parser.parse_args()
    if args.per_photo < 1 or args.max_factor < 1:
        parser.error("--per-photo and --max-factor must be at least 1")

    photos = list_photos(args.source)
    if not photos:
        parser.error(f"no PNG or JPEG files found under {args.source}")
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    written = 0
    for rel in photos:
        with Image.open(os.path.join(args.source, rel)) as img:
            img = ImageOps.exif_transpose(img)
            has_alpha = (img.mode in ("RGBA", "LA", "PA") or
                         "transparency" in img.info)
            img = img.convert("RGBA" if has_alpha else "RGB")
        # Pillow would copy the ICC profile into every crop. fsr-prep
        # ignores profiles, and libpng warns about the incorrect sRGB
        # profile that five of the PNG photos carry.
        img.info = {}
        width, height = img.size
        fit = min(width, height) // UNIT
        if fit < 1:
            print(f"skipped {rel}: {width} x {height} is smaller than "
                  f"{UNIT} px", file=sys.stderr)
            continue
        stem = os.path.splitext(rel)[0].replace(os.sep, "_")
        for n in range(args.per_photo):
            side = UNIT * rng.randint(1, min(args.max_factor, fit))
            left = rng.randint(0, width - side)
            top = rng.randint(0, height - side)
            crop = img.crop((left, top, left + side, top + side))
            crop.save(os.path.join(args.out, f"{stem}-{n:03d}.png"))
            written += 1
    print(f"wrote {written} crops from {len(photos)} photos to {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
