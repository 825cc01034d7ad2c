"""Copy the public-domain paintings of ``../shared/paintings/`` into the package's sample images.

Each painting is resized (Lanczos) so that its shorter side is 512 pixels - the course's largest
style size (``TransferSettings.style_size``), so that no style image is ever upsampled - and
saved as a JPEG of quality 90 under ``cs231n_style/data/images/``, with ``PAINTINGS.md`` beside
them stating each work's provenance (copied from ``../shared/paintings/README.md``, which says
why these reproductions are in the public domain). The SHA-256 of each source file is checked
first, so the samples are known to come from the files the provenance describes.

Usage::

    python tools/make_painting_samples.py            # refuses to overwrite existing files
    python tools/make_painting_samples.py --overwrite
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "paintings"
OUT_DIR = ROOT / "cs231n_style" / "data" / "images"
SHORT_SIDE = 512

#: file name -> (work, artist (died), year, first 16 hex digits of the source file's SHA-256,
#: where the digital copy was found), as in ../shared/paintings/README.md.
PAINTINGS = {
    "starry_night.jpg": ("The Starry Night", "Vincent van Gogh (1890)", "1889", "c31741a09141c2e2",
                         "CS231n assignment 3 style images (also used by Gatys et al.)"),
    "the_scream.jpg": ("The Scream", "Edvard Munch (1944)", "1893", "f3075cddeb974a9e",
                       "CS231n assignment 3 style images"),
    "composition_vii.jpg": ("Composition VII", "Wassily Kandinsky (1944)", "1913", "8f992ed4aecd6dd5",
                            "CS231n assignment 3 style images"),
    "great_wave.jpg": ("The Great Wave off Kanagawa", "Katsushika Hokusai (1849)", "c. 1831", "54f19686bea5117c",
                       "example style images of a public fast-style-transfer project"),
    "shipwreck_of_the_minotaur.jpg": ("The Shipwreck of the Minotaur", "J. M. W. Turner (1851)", "c. 1810",
                                      "05e6d80cee6b2df5",
                                      "example style images of a public fast-style-transfer project"),
}

ATTRIBUTION = """# The paintings among the sample images

Digital reproductions of paintings whose copyright has expired: the artists died more than 70
years ago, and all the works were first published before 1927. Faithful photographic
reproductions of public-domain two-dimensional artworks carry no new copyright in the US
(Bridgeman v. Corel, 1999) or the EU (Directive 2019/790, Art. 14).

Made by `tools/make_painting_samples.py` from the project's shared copies: resized so that the
shorter side is {short} pixels, saved as JPEG (quality 90).

| file | work | artist (died) | year | pixels here | source sha256 (first 16) | digital copy found in |
|---|---|---|---|---|---|---|
{rows}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    rows = []
    for name, (work, artist, year, digest, found) in PAINTINGS.items():
        source = SOURCE / name
        actual = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        if actual != digest:
            raise SystemExit(f"{source}: sha256 starts {actual}, expected {digest}: not the documented file")
        image = Image.open(source).convert("RGB")
        scale = SHORT_SIDE / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        target = OUT_DIR / name
        if target.exists() and not args.overwrite:
            raise SystemExit(f"{target} exists; pass --overwrite to replace it")
        image.save(target, quality=90, optimize=True)
        rows.append(f"| {name} | *{work}* | {artist} | {year} | {image.width}x{image.height} | {digest} | {found} |")
        print(f"wrote {target.relative_to(ROOT)} ({image.width}x{image.height}, {target.stat().st_size // 1024} KiB)")
    (OUT_DIR / "PAINTINGS.md").write_text(ATTRIBUTION.format(short=SHORT_SIDE, rows="\n".join(rows)))


if __name__ == "__main__":
    main()
