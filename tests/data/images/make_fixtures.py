#!/usr/bin/python3
"""Write the image fixtures of test_image and prep_cli.sh, and expected.txt.

Run with Debian's /usr/bin/python3 and python3-pil from this folder:
    /usr/bin/python3 make_fixtures.py
Pillow both writes the files and decodes them again for expected.txt,
which gives the tests a second decoder to compare against. Each line of
expected.txt is: file mode width height value..., with mode L (8-bit
gray), I16 (16-bit gray), RGB or RGBA, values row-major and interleaved,
and the EXIF orientation already applied. The cjpeg fixtures have no
line there: test_image.c checks them against BLOCK_COLORS.
"""
import os
import subprocess

from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
EXIF_ORIENTATION = 0x0112


def orientation_fixtures():
    """2 x 3 gray images, stored the same, tagged with orientations 1-8."""
    stored = Image.new("L", (2, 3))
    stored.putdata([0, 50, 100, 150, 200, 250])
    names = []
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        name = f"orient_{orientation}.jpg"
        stored.save(os.path.join(HERE, name), quality=100,
                    exif=exif.tobytes())
        names.append(name)
    return names


def other_fixtures():
    names = []

    # Two flat 8 x 8 blocks: no ink (white) and full cyan. Pillow writes
    # CMYK inverted with an Adobe APP14 segment, as Photoshop does.
    cmyk = Image.new("CMYK", (16, 8), (0, 0, 0, 0))
    cmyk.paste((255, 0, 0, 0), (8, 0, 16, 8))
    cmyk.save(os.path.join(HERE, "cmyk_adobe.jpg"), quality=100)
    names.append("cmyk_adobe.jpg")

    rgb = Image.new("RGB", (16, 16), (200, 100, 50))
    rgb.save(os.path.join(HERE, "flat_rgb.jpg"), quality=90)
    names.append("flat_rgb.jpg")

    palette = Image.new("P", (3, 2))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
    palette.putdata([0, 1, 2, 3, 0, 1])
    palette.save(os.path.join(HERE, "palette_trns.png"), transparency=0)
    names.append("palette_trns.png")

    gray16 = Image.new("I;16", (3, 1))
    gray16.putdata([0, 1000, 65535])
    gray16.save(os.path.join(HERE, "gray16.png"))
    names.append("gray16.png")
    return names


# Colours of the 3 x 2 flat 16 x 16 blocks of the cjpeg fixtures, row by
# row. test_image.c repeats them as the expected pixels.
BLOCK_COLORS = [(200, 40, 40), (40, 200, 40), (40, 40, 200),
                (230, 230, 230), (20, 20, 20), (128, 100, 60)]


def coding_fixtures():
    """The same 48 x 32 RGB image coded three ways by cjpeg (Debian's
    libjpeg-turbo-progs): progressive, arithmetic and with a restart
    marker after every MCU. Flat 16 x 16 blocks keep the 4:2:0 chroma of
    each block flat, so block centers decode to BLOCK_COLORS."""
    rows = []
    for y in range(32):
        row = bytearray()
        for x in range(48):
            row.extend(BLOCK_COLORS[(y // 16) * 3 + x // 16])
        rows.append(bytes(row))
    ppm = b"P6\n48 32\n255\n" + b"".join(rows)
    codings = {"coding_progressive.jpg": ["-progressive"],
               "coding_arithmetic.jpg": ["-arithmetic"],
               "coding_restart.jpg": ["-restart", "1B"]}
    for name, flags in codings.items():
        with open(os.path.join(HERE, name), "wb") as out:
            subprocess.run(["cjpeg", "-quality", "100"] + flags, input=ppm,
                           stdout=out, check=True)
    return list(codings)


def expected_line(name):
    img = ImageOps.exif_transpose(Image.open(os.path.join(HERE, name)))
    if img.mode == "CMYK":
        img = img.convert("RGB")
    elif img.mode == "P":
        img = img.convert("RGBA")
    mode = {"I;16": "I16", "I": "I16"}.get(img.mode, img.mode)
    values = []
    for pixel in img.getdata():
        values.extend(pixel if isinstance(pixel, tuple) else (pixel,))
    fields = [name, mode, str(img.width), str(img.height)]
    return " ".join(fields + [str(v) for v in values])


def main():
    names = orientation_fixtures() + other_fixtures()
    with open(os.path.join(HERE, "expected.txt"), "w") as out:
        for name in names:
            out.write(expected_line(name) + "\n")
    coding_fixtures()


if __name__ == "__main__":
    main()
