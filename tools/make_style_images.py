"""Generate the course's style images procedurally (no fetched paintings).

Provenance: every pixel of ``cs231n_style/data/images/{swirls,mosaic,marbling}.png`` is made
by this script from a fixed seed with NumPy and Pillow; nothing is downloaded. The images are
released with the project under its licence. They imitate *kinds* of texture that make style
transfer visible - long curved brush strokes (swirls), flat colour cells with dark lead lines
(mosaic), and warped colour bands (marbling) - not any particular artwork.

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


def marbling(seed: int = 3) -> Image.Image:
    """Warped colour bands, like marbled paper: smooth, flowing, high-contrast stripes."""
    rng = np.random.default_rng(seed)
    colours = _palette(["#1b1b3a", "#693668", "#a74482", "#f84aa7", "#ff3562", "#ffb86f", "#f7f1e3"])
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / SIZE
    warp = np.zeros_like(xx)
    for _ in range(6):
        fx, fy = rng.uniform(1, 5, size=2)
        phase = rng.uniform(0, 2 * np.pi)
        warp += rng.uniform(0.05, 0.15) * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
    t = (xx + 0.6 * yy + 1.2 * warp) * 4.0
    t = t - np.floor(t)
    position = t * (len(colours) - 1)
    low = np.floor(position).astype(int)
    frac = (position - low)[..., None]
    high = np.minimum(low + 1, len(colours) - 1)
    pixels = (1 - frac) * colours[low] + frac * colours[high]
    return Image.fromarray(pixels.astype(np.uint8))


STYLES = {"swirls": swirls, "mosaic": mosaic, "marbling": marbling}


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
