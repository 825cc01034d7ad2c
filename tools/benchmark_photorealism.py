"""Time and memory of the Matting Laplacian (notebook 06) at 192, 384 and 512 px, printed as tables.

For each size (the shorter side of the ``rocket`` sample photo, resized as ``cs.preprocess`` does),
a fresh worker process (one torch thread) measures:

* **build**: ``matting_laplacian`` (NumPy, float64, one vectorized step per pair of window
  positions summed into a 25-diagonal band), against the textbook construction - 81 (i, j, value)
  triplets per window, duplicates summed by a sparse ``coalesce`` (what implementations built on
  ``scipy.sparse.coo_matrix`` do; SciPy is not a dependency here, torch's COO does the same job);
  CPU time (``time.process_time``), wall time, and peak memory growth (``VmHWM`` from
  /proc/self/status, minus the value just before; each build in its own process);
* **stored**: non-zeros and the bytes of the sparse tensor (values + indices);
* **loss step**: one forward and backward of ``weight * sum_c V_c^T M V_c`` (the student's
  ``photorealism_loss``) with the returned ``MattingLaplacian`` (backward by symmetry) and with the same
  matrix as a plain ``torch.sparse_csr`` tensor (PyTorch's backward transposes it), best of 5.

Usage::

    python tools/benchmark_photorealism.py                  # 192, 384, 512
    python tools/benchmark_photorealism.py --sizes 160 192  # other sizes

It prints the load average first: on a shared 2-core machine compare CPU times, and rerun when the
load is well below 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_kib() -> int:
    """This process's peak resident set size so far, in KiB (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _textbook_laplacian(pixels, eps: float = 1e-7):
    """Eq. 12 as 81 triplets per 3 x 3 window, duplicates summed by ``coalesce``: the comparison build."""
    import numpy as np
    import torch
    from numpy.lib.stride_tricks import sliding_window_view

    height, width, _ = pixels.shape
    numbers = np.arange(height * width).reshape(height, width)
    members = sliding_window_view(numbers, (3, 3)).reshape(-1, 9)                    # (K, 9) pixel numbers
    colours = pixels.reshape(-1, 3)[members]                                            # (K, 9, 3)
    centred = colours - colours.mean(axis=1, keepdims=True)
    inverse = np.linalg.inv(np.einsum("kna,knb->kab", centred, centred) / 9 + eps / 9 * np.eye(3))
    values = np.eye(9) - (1 + np.einsum("kia,kab,kjb->kij", centred, inverse, centred)) / 9   # (K, 9, 9)
    rows, columns = np.repeat(members, 9, axis=1), np.tile(members, (1, 9))
    indices = torch.from_numpy(np.stack([rows.ravel(), columns.ravel()]))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(values.ravel()), (height * width,) * 2).coalesce()


def _step_ms(laplacian, shape) -> float:
    """Best of 5: CPU milliseconds of one forward and backward of sum_c V_c^T M V_c."""
    import torch

    img = torch.rand(shape, requires_grad=True)
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        channels = img.reshape(3, -1).T
        loss = (channels * (laplacian @ channels)).sum()
        loss.backward()
        best = min(best, time.process_time() - start)
    return 1000 * best


def worker(job: dict) -> dict:
    """One measurement in this (fresh) process: ``job`` = {"size", "method"}."""
    import torch

    import cs231n_style as cs
    from cs231n_style.images import to_pixels
    from cs231n_style.photorealism import matting_laplacian

    torch.set_num_threads(1)
    pixels = to_pixels(cs.preprocess("rocket", job["size"]))
    before, cpu, wall = _peak_kib(), time.process_time(), time.perf_counter()
    if job["method"] == "band":
        laplacian = matting_laplacian(pixels)
    else:
        laplacian = _textbook_laplacian(pixels[0].permute(1, 2, 0).double().numpy()).float()
    cpu, wall, growth = time.process_time() - cpu, time.perf_counter() - wall, _peak_kib() - before
    result = {"shape": list(pixels.shape[2:]), "cpu": cpu, "wall": wall, "growth_mib": growth / 1024}
    if job["method"] == "band":
        plain = torch.Tensor._make_subclass(torch.Tensor, laplacian)  # the same matrix, a plain sparse CSR tensor
        stored = plain.values().nbytes + plain.crow_indices().nbytes + plain.col_indices().nbytes
        result.update(nnz=plain.values().numel(), stored_mib=stored / 2**20,
                      step_ms=_step_ms(laplacian, pixels.shape), plain_step_ms=_step_ms(plain, pixels.shape))
    return result


def _measure(job: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"worker {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 384, 512])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores; 1 torch thread per worker)\n")
    build_rows, step_rows = [], []
    for size in args.sizes:
        band, textbook = _measure({"size": size, "method": "band"}), _measure({"size": size, "method": "textbook"})
        pixels = f"{band['shape'][0]} x {band['shape'][1]}"
        for name, found in (("matting_laplacian (band)", band), ("textbook (triplets + coalesce)", textbook)):
            build_rows.append([pixels, name, f"{found['cpu']:.2f}", f"{found['wall']:.2f}",
                               f"{found['growth_mib']:.0f}"])
        step_rows.append([pixels, f"{band['nnz']:,}", f"{band['stored_mib']:.0f}", f"{band['step_ms']:.1f}",
                          f"{band['plain_step_ms']:.1f}"])
    print(_table(["image (px)", "build", "CPU s", "wall s", "peak memory growth (MiB)"], build_rows))
    print()
    print(_table(["image (px)", "non-zeros", "stored (MiB)", "loss step, MattingLaplacian (ms CPU)",
                  "loss step, plain sparse CSR (ms CPU)"], step_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
