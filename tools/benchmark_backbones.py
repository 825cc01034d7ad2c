"""What each backbone costs: SqueezeNet 1.1 against VGG-16 and VGG-19, measured on this machine.

Prints one Markdown table, a row per (backbone, content size):

* **parameters** of the ``features`` part (the layers style transfer uses), and of torchvision's
  whole classifier (``meta["num_params"]``);
* **weights file**: the ``features`` part saved with ``torch.save(state_dict)`` (measured), and
  torchvision's whole checkpoint (``meta["_file_size"]``, MiB), which its download fetches;
* **layers run**: up to the deepest layer the backbone's default losses read
  (:func:`cs231n_style.backbones.get_backbone` ``.default_settings()``), as the package's loop does;
* **GFLOP / iteration**: one step of :func:`cs231n_style.style_transfer` (forward to the deepest
  layer, the losses, backward to the image), counted by ``torch.utils.flop_counter.FlopCounterMode``
  (convolutions and matmuls, Gram matrices included; element-wise work is not counted): the count
  of a 2-step run minus that of a 1-step run (``tools/benchmark.py``'s ``iteration_flops``);
* **ms / iteration** (wall) and **CPU ms / iteration** (``time.process_time``, all threads: less
  sensitive than wall time to other processes on a shared machine): the time of a
  ``1 + --steps``-step run minus that of a 1-step run, divided by ``--steps`` (the targets and the
  image loading cancel out), best of ``--repeats`` each, with ``torch.set_num_threads(--threads)``;
  and the GFLOP per CPU second they make (with several threads, time spent waiting for each other
  counts as CPU time too: on a busy machine, ``--threads 1`` gives the steadier CPU times);
* **peak memory**: ``VmHWM`` of a fresh Python process per row (/proc/self/status; not
  ``ru_maxrss``, which Linux carries across ``execve``, so a worker would report at least its
  parent's peak; see ``tools/benchmark.py``), and in brackets its growth from just before the
  first run (images, feature maps, gradients, the optimizer).

Weights are random: speed and memory do not depend on the weights' values, and no VGG weights are
needed (they are 528 and 548 MiB downloads). Content ``--content``, style ``--style`` resized to the
same size as the content, the backbone's default layers and weights, everything else as
``TransferSettings()`` (Adam). The load average is printed at the start and the end.

Usage::

    python tools/benchmark_backbones.py                 # ~5 minutes on a quiet 2-core CPU
    python tools/benchmark_backbones.py --sizes 192 --backbones squeezenet1_1 vgg16 --steps 2   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cs231n_style as cs  # noqa: E402
from cs231n_style.backbones import BACKBONE_NAMES, get_backbone, load_backbone  # noqa: E402
from tools.benchmark import _peak_rss_kib, iteration_flops, machine_description, package_loop, table  # noqa: E402
from tools.plain_loop import CS231N_LOSSES  # noqa: E402


def settings_for(name: str, size: int, steps: int) -> cs.TransferSettings:
    """The backbone's default layers and weights at ``size`` (content and style), ``steps`` Adam steps."""
    return cs.TransferSettings.for_backbone(name, image_size=size, style_size=size, num_steps=steps)


def timed(job: dict, model, steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of one ``steps``-step run of the package's loop."""
    settings = settings_for(job["backbone"], job["size"], steps)
    wall, cpu = time.perf_counter(), time.process_time()
    package_loop(job["content"], job["style"], CS231N_LOSSES, model, settings)
    return time.perf_counter() - wall, time.process_time() - cpu


def worker(job: dict) -> dict:
    """One row's time, CPU time, peak memory and FLOPs, in this (fresh) process."""
    torch.set_num_threads(job["threads"])
    model = load_backbone(job["backbone"], weights_path=job["weights"], download=False)
    rss_before = _peak_rss_kib()
    timed(job, model, 1)  # warm-up
    best = {steps: (float("inf"), float("inf")) for steps in (1, 1 + job["steps"])}
    for _ in range(job["repeats"]):
        for steps in best:
            wall, cpu = timed(job, model, steps)
            best[steps] = (min(best[steps][0], wall), min(best[steps][1], cpu))
    peak = _peak_rss_kib()
    (wall_1, cpu_1), (wall_n, cpu_n) = best[1], best[1 + job["steps"]]
    flops = iteration_flops(package_loop, job["content"], job["style"], CS231N_LOSSES, model,
                            settings_for(job["backbone"], job["size"], 1))
    return {"ms": 1000 * (wall_n - wall_1) / job["steps"], "cpu_ms": 1000 * (cpu_n - cpu_1) / job["steps"],
            "flops": flops, "peak_mib": peak / 1024, "growth_mib": (peak - rss_before) / 1024}


def run_worker(job: dict) -> dict:
    """:func:`worker` in a fresh Python process, so that its peak memory is its own."""
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def random_weights_file(name: str, folder: Path) -> tuple[Path, int]:
    """The backbone's ``features`` with random weights saved to ``folder``: the file and its parameter count."""
    torch.manual_seed(0)
    features = get_backbone(name).weights.build()
    path = folder / f"{name}_features.pth"
    torch.save(features.state_dict(), path)
    return path, sum(p.numel() for p in features.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", choices=BACKBONE_NAMES, default=list(BACKBONE_NAMES))
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 384, 512],
                        help="content (and style) image sizes, shorter side in pixels")
    parser.add_argument("--steps", type=int, default=3, help="iterations timed per run (beyond the first)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each length; the best counts")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--content", default="cat", help="content image: sample name or path")
    parser.add_argument("--style", default="swirls", help="style image: sample name or path")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    print(f"# Backbones: cost per style transfer iteration, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"Machine: {machine_description(torch.device('cpu'))}; {args.threads} torch threads\n")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.backbones:
            backbone = get_backbone(name)
            path, params = random_weights_file(name, Path(folder))
            meta = backbone.weights.weights().meta
            defaults = backbone.default_settings()
            deepest = max(defaults["content_layer"], *defaults["style_layers"])
            described = [backbone.title, f"{params / 1e6:.2f} M ({meta['num_params'] / 1e6:.1f} M)",
                         f"{os.path.getsize(path) / 2**20:.1f} MiB ({meta['_file_size']:.0f} MiB)",
                         f"{deepest + 1} of {len(backbone.layer_names)} (to {backbone.layer_names[deepest]})"]
            for number, size in enumerate(args.sizes):
                job = {"backbone": name, "size": size, "steps": args.steps, "repeats": args.repeats,
                       "threads": args.threads, "weights": str(path), "content": args.content, "style": args.style}
                result = run_worker(job)
                rows.append((described if number == 0 else [""] * len(described)) + [
                    str(size), f"{result['flops'] / 1e9:.1f}", f"{result['ms']:.0f}", f"{result['cpu_ms']:.0f}",
                    f"{result['flops'] / result['cpu_ms'] / 1e6:.0f}",
                    f"{result['peak_mib']:.0f} MiB (+{result['growth_mib']:.0f})"])
                print(f"  {name} {size} done, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(table(rows, ["backbone", "parameters: features (whole model)", "weights file: features (torchvision's)",
                       "layers run", "size (px)", "GFLOP / iteration", "ms / iteration", "CPU ms / iteration",
                       "GFLOP / CPU second", "peak memory (VmHWM, growth)"]))
    print(f"\nLoad average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 minutes)")


if __name__ == "__main__":
    main()
