"""Generate the course's style images procedurally (no fetched paintings).

Provenance: every pixel of ``cs231n_style/data/images/{swirls,mosaic,dots}.png`` is made
by this script from a fixed seed with NumPy and Pillow; nothing is downloaded. The images are
released with the project under its licence. They imitate *kinds* of texture that make style
transfer visible - long curved brush strokes (swirls), flat colour cells with dark lead lines
(mosaic), and pointillist dots (dots) - not any particular artwork.

Usage::

    python tools/make_style_images.py            # refuses to overwrite existing files
    python tools/make_style_images.py --overwrite
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT_DIR = Path(__file__).resolve().parents[1] / "cs231n_style" / "data" / "images"
SIZE = 512


def _palette(hex_colours: list[str]) -> np.ndarray:
    return np.array([[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in hex_colours], np.float64)


def swirls(seed: int = 1) -> Image.Image:
    """Short curved strokes that follow a field of vortices, in night blues and yellows."""
    rng = np.random.default_rng(seed)
    colours = _palette(["#0b1d4f", "#1d3f8f", "#3a6fc4", "#8fb8e8", "#f2d64b", "#f7efc0", "#0f2a2a"])
    image = Image.new("RGB", (SIZE, SIZE), "#142a66")
    draw = ImageDraw.Draw(image)
    centres = rng.uniform(0, SIZE, size=(7, 2))
    spins = rng.choice([-1.0, 1.0], size=7) * rng.uniform(0.6, 1.4, size=7)

    def direction(p: np.ndarray) -> np.ndarray:
        d = p - centres
        r2 = (d**2).sum(axis=1) + 400.0
        v = (spins[:, None] * np.stack([-d[:, 1], d[:, 0]], axis=1) / r2[:, None]).sum(axis=0)
        v += np.array([0.002, 0.0005])
        return v / (np.linalg.norm(v) + 1e-9)

    for _ in range(5000):
        p = rng.uniform(-20, SIZE + 20, size=2)
        weights = np.array([3, 4, 4, 2, 1.2, 0.6, 1.0])
        colour = colours[rng.choice(len(colours), p=weights / weights.sum())]
        colour = np.clip(colour + rng.normal(0, 12, 3), 0, 255).astype(int)
        points = [tuple(p)]
        for _ in range(int(rng.integers(6, 16))):
            p = p + 4.0 * direction(p)
            points.append(tuple(p))
        draw.line(points, fill=tuple(colour), width=int(rng.integers(3, 7)))
    return image.filter(ImageFilter.SMOOTH)


def mosaic(seed: int = 2) -> Image.Image:
    """Voronoi cells in saturated colours separated by dark lead lines (stained glass)."""
    rng = np.random.default_rng(seed)
    colours = _palette(["#c0392b", "#e67e22", "#f1c40f", "#27ae60", "#2980b9", "#8e44ad", "#16a085"])
    sites = rng.uniform(0, SIZE, size=(160, 2))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    d = (xx[..., None] - sites[:, 0]) ** 2 + (yy[..., None] - sites[:, 1]) ** 2
    order = np.sort(d, axis=-1)
    nearest = np.argmin(d, axis=-1)
    edge = np.sqrt(order[..., 1]) - np.sqrt(order[..., 0]) < 3.5
    cell_colours = colours[rng.integers(0, len(colours), size=len(sites))]
    cell_colours = np.clip(cell_colours + rng.normal(0, 18, cell_colours.shape), 0, 255)
    pixels = cell_colours[nearest]
    shade = 0.85 + 0.15 * np.sin(xx / 23.0 + yy / 31.0)[..., None]
    pixels = pixels * shade
    pixels[edge] = (25, 20, 18)
    return Image.fromarray(pixels.astype(np.uint8))


def dots(seed: int = 3) -> Image.Image:
    """Pointillist dots of warm and green colours over a pale ground, in soft colour zones."""
    rng = np.random.default_rng(seed)
    colours = _palette(["#d1495b", "#edae49", "#f4d35e", "#66a182", "#2e4057", "#00798c", "#f78c6b"])
    image = Image.new("RGB", (SIZE, SIZE), "#f3ead8")
    draw = ImageDraw.Draw(image)
    zones = rng.uniform(0, SIZE, size=(9, 2))
    zone_colour = rng.integers(0, len(colours), size=len(zones))
    for _ in range(9000):
        x, y = rng.uniform(0, SIZE, size=2)
        zone = np.argmin(((zones - (x, y)) ** 2).sum(axis=1))
        index = zone_colour[zone] if rng.random() < 0.65 else rng.integers(0, len(colours))
        colour = np.clip(colours[index] + rng.normal(0, 15, 3), 0, 255).astype(int)
        r = rng.uniform(2.5, 5.5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(colour))
    return image


STYLES = {"swirls": swirls, "mosaic": mosaic, "dots": dots}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overwrite", action="store_true", help="replace existing images")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where to write the PNGs")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in STYLES.items():
        path = args.out_dir / f"{name}.png"
        if path.exists() and not args.overwrite:
            print(f"{path} exists; pass --overwrite to replace it")
            continue
        make().save(path, optimize=True)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
