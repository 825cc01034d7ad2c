"""Measure the package's style transfer loop against a straightforward one, and against the machine.

Prints, for this machine (CPU unless ``--device`` says otherwise):

1. the machine's dense float32 matmul speed (a 2048 x 2048 ``A @ B``), the yardstick below;
2. per content size (default 192, 384, 512; style image 512): milliseconds per iteration of
   (a) the straightforward loop of ``tools/plain_loop.py``, as a student would write it after
   CS231n - every layer of SqueezeNet extracted each iteration, NCHW tensors, targets computed
   before the loop with autograd on (the tests' yardstick too) - and (b)
   :func:`cs231n_style.style_transfer`; their ratio; the FLOPs of one iteration (forward +
   backward, convolutions *and* Gram matrices); the achieved FLOP/s as a fraction of the matmul
   speed; and the peak memory;
3. where the time of one iteration goes, at the first size, for both loops (``torch.profiler``
   self CPU time by operator family): the Gram matrices and the convolutions are kernels any
   loop that makes the *same* image must run unchanged, which bounds the possible speedup;
4. whether both loops make the same image: the largest and mean pixel difference in [0, 255]
   units after :func:`cs231n_style.deprocess`, after ``--check-steps`` (200) iterations at the
   first size, next to the straightforward loop run with one thread instead of two - the size of
   difference float rounding alone causes (see "Same image?" in docs/benchmark.md);
5. the loss Adam and L-BFGS reach against wall time;
6. the time-to-quality table of the fast mode (``--quality-sizes``, default 192 512 1024; also
   alone with ``--only-quality``): seconds until the float32 total loss of the image each method
   would return - evaluated by one shared function, ``tools.plain_loop.LossEvaluator``, with
   the same loss functions for every method, the evaluations' own time excluded - first falls to
   the straightforward loop's 200-step loss, for (a) the straightforward loop, (b) the package's
   exact loop, (c) each idea of the fast mode alone (``--skip-variants`` skips them),
   (d) ``speed="fast"``; the content image's own loss as a reference row, flagged when the
   criterion is (nearly) degenerate; whole-run times; peak memory of (a) and (d) in a fresh
   process each (``--skip-memory``); and a side-by-side PNG of (a)'s and (d)'s final images in
   docs/images/;
7. the size-aware weights table (``--size-aware-sizes``, default 192 384 768; also alone with
   ``--only-size-aware``, skipped with ``--skip-size-aware``): content ``--content``, style
   ``--size-aware-style`` (great_wave), ``--size-aware-speed`` (fast), with ``weights_size=192``
   (the command line's default) and 0 (CS231n's weights as given): the style loss of the result
   relative to the photo's and the mean pixel difference from the photo, so whether 384 and
   768 px stylize as 192 px does; a side-by-side PNG per size in docs/images/;
8. the wall time of each solution notebook (``solutions/*.ipynb``, run with nbclient).

How things are measured:

* Time: ``time.perf_counter`` around the iterations only (targets excluded for both loops: both
  compute them once), after a warm-up run of each; the two loops alternate in one process, (a),
  (b), (a), (b)..., so that a slower minute on a shared machine hits both, and each loop's best of
  ``--repeats`` runs counts. On CUDA each run ends with ``torch.cuda.synchronize()``.
* FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` counts matmuls (``bmm``, the Gram matrices)
  and convolutions, forward and backward; element-wise work (ReLU, max-pooling, Adam) is not
  counted. One iteration's FLOPs = FLOPs of a 2-iteration run minus those of a 1-iteration run,
  so target computation cancels out.
* Peak memory: each (size, loop) pair also runs in a fresh Python process; on the CPU its
  ``VmHWM`` (/proc/self/status; not ``ru_maxrss``, which Linux keeps across ``execve``: a
  worker would report its parent's peak) (peak resident set size of the whole process,
  including Python, torch and the model) and, in brackets, how much that peak grew from just
  before the first iteration (images, activations, gradients, oneDNN's buffers) are reported;
  on CUDA ``torch.cuda.max_memory_allocated``.
* Loss functions: CS231n's reference solutions, loaded from ``solutions/0[1-3]_*.ipynb`` with
  :func:`cs231n_style.load_functions`.

Usage::

    export CS231N_STYLE_WEIGHTS=/path/to/squeezenet1_1_features.pth
    python tools/benchmark.py                      # a few minutes on a 2-core laptop CPU
    python tools/benchmark.py --sizes 192 --steps 10 --check-steps 50 --skip-notebooks --skip-quality  # quick
    python tools/benchmark.py --only-quality --quality-sizes 192 --skip-variants --skip-memory         # quick
    python tools/benchmark.py --only-size-aware                    # ~2 minutes with the fast mode
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cs231n_style as cs  # noqa: E402
from cs231n_style.settings import WEIGHTS_SIZE, weights_for_size  # noqa: E402
from tools.plain_loop import (  # noqa: E402
    LossEvaluator,
    PlainRun,
    straightforward_loop,
    synchronize as _sync,
)

SOLUTIONS = ROOT / "solutions"


# --- the loss functions and the two loops -----------------------------------------------------

def load_losses() -> cs.LossFunctions:
    """The reference solutions of notebooks 1-3, as :class:`cs231n_style.LossFunctions`.

    Raises:
        FileNotFoundError / LookupError: if the solution notebooks are missing or incomplete.
    """
    return cs.LossFunctions(**vars(cs.load_course_functions(SOLUTIONS)))


def package_loop(content_image, style_image, losses, model, settings, threads: int | None = None) -> PlainRun:
    """:func:`cs231n_style.style_transfer`, returning what :func:`straightforward_loop` returns."""
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = cs.style_transfer(content_image, style_image, losses, model, settings, progress=False)
    finally:
        torch.set_num_threads(old_threads)
    return PlainRun(result.image, result.history["total"], result.seconds, None)


LOOPS = {"straightforward": straightforward_loop, "package": package_loop}


# --- measurements -----------------------------------------------------------------------------

def matmul_flops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Dense float32 ``A @ B`` speed of ``device`` in FLOP/s (best of ``repeats``; 2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def iteration_flops(loop, content_image, style_image, losses, model, settings) -> int:
    """FLOPs of one iteration (forward + backward) counted by ``FlopCounterMode``: those of a
    2-iteration run minus those of a 1-iteration run (target computation cancels)."""
    from torch.utils.flop_counter import FlopCounterMode

    counts = []
    for steps in (1, 2):
        with FlopCounterMode(display=False) as counter:
            loop(content_image, style_image, losses, model, settings.replace(num_steps=steps))
        counts.append(counter.get_total_flops())
    return counts[1] - counts[0]


def worker(job: dict) -> dict:
    """Peak memory and FLOPs of one loop at one size, in this (fresh) process; see the module docstring."""
    device = cs.get_device(job["device"])
    losses, model = load_losses(), cs.load_squeezenet(device=device)
    loop = LOOPS[job["loop"]]
    settings = quality_settings(job["size"], job["style_size"], job["steps"], job["scale_weights"])
    rss_before = _peak_rss_kib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loop(job["content"], job["style"], losses, model, settings)
    out = {"flops": iteration_flops(loop, job["content"], job["style"], losses, model, settings)}
    if device.type == "cuda":
        out["memory"] = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (cuda max allocated)"
    else:
        peak = _peak_rss_kib()
        out["memory"] = f"{peak / 1024:.0f} MiB (+{(peak - rss_before) / 1024:.0f})"
    return out


def run_worker(job: dict, quality: bool = False) -> dict:
    """Run :func:`worker` (:func:`quality_worker` if ``quality``) in a fresh process, so that its peak
    memory is its own."""
    flag = "--quality-worker" if quality else "--worker"
    done = subprocess.run([sys.executable, __file__, flag, json.dumps(job)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pixels(image: torch.Tensor) -> np.ndarray:
    """A normalized (1, 3, H, W) image as int [0, 255] pixels, via ``cs.deprocess``."""
    return np.asarray(cs.deprocess(image), dtype=np.int64)


def describe_difference(a: torch.Tensor, b: torch.Tensor) -> str:
    diff = np.abs(pixels(a) - pixels(b))
    return (f"max {diff.max():3d}, mean {diff.mean():5.2f}, 99th percentile {np.percentile(diff, 99):5.1f}, "
            f"pixels equal {np.mean(diff == 0):5.1%}")


# --- the report -------------------------------------------------------------------------------

def machine_description(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = f"{names[0]} x {len(names)} logical CPUs" if names else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cs.describe_device(device)}; CPU {cpu}; torch {torch.__version__}; Python {platform.python_version()}; "
            f"load average {load:.2f} at start")


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def interleaved_ms(args, size: int, losses, model) -> dict[str, float]:
    """Milliseconds per iteration of each loop at ``size``: the loops alternate, best of ``repeats``."""
    settings = cs.TransferSettings(image_size=size, style_size=args.style_size, num_steps=args.steps)
    for loop in LOOPS.values():  # warm-up
        loop(args.content, args.style, losses, model, settings.replace(num_steps=3))
    best = {name: float("inf") for name in LOOPS}
    for _ in range(args.repeats):
        for name, loop in LOOPS.items():
            best[name] = min(best[name], loop(args.content, args.style, losses, model, settings)[2])
    return {name: 1000 * seconds / args.steps for name, seconds in best.items()}


def timing_table(args, device, peak: float, losses, model) -> None:
    rows = []
    for size in args.sizes:
        results = {}
        for loop in LOOPS:
            job = {"loop": loop, "size": size, "style_size": args.style_size, "steps": args.steps,
                   "device": str(device), "content": args.content, "style": args.style,
                       "scale_weights": args.scale_weights}
            results[loop] = run_worker(job)
        for loop, ms in interleaved_ms(args, size, losses, model).items():
            results[loop]["ms"] = ms
        a, b = results["straightforward"], results["package"]
        for name, r in (("(a) straightforward", a), ("(b) package", b)):
            achieved = r["flops"] / (r["ms"] / 1000)
            rows.append([str(size) if name.startswith("(a)") else "", name, f"{r['ms']:.1f}",
                         f"{a['ms'] / r['ms']:.2f}x" if name.startswith("(b)") else "",
                         f"{r['flops'] / 1e9:.2f}", f"{achieved / 1e9:.0f} ({achieved / peak:.0%})", r["memory"]])
        print(f"  size {size} done", file=sys.stderr)
    print(table(rows, ["content size", "loop", "ms / iteration", "speedup", "GFLOP / iteration",
                       "GFLOP/s (of matmul)", "peak memory"]))


def equality_check(args, device, losses, model) -> None:
    size = args.sizes[0]
    settings = cs.TransferSettings(image_size=size, style_size=args.style_size, num_steps=args.check_steps)
    threads = torch.get_num_threads()
    for loop in LOOPS.values():  # warm-up: the first run at a size also sets up oneDNN's kernels
        loop(args.content, args.style, losses, model, settings.replace(num_steps=3))
    runs = {
        "straightforward": straightforward_loop(args.content, args.style, losses, model, settings),
        "package": package_loop(args.content, args.style, losses, model, settings),
    }
    if threads > 1:
        runs["straightforward, 1 thread"] = straightforward_loop(args.content, args.style, losses, model, settings,
                                                                 threads=1)
    base = runs["straightforward"]
    rows = []
    for name, (image, totals, seconds, *_) in runs.items():
        rows.append([name, f"{1000 * seconds / settings.num_steps:.1f}", f"{totals[-1]:.6g}",
                     "-" if name == "straightforward" else describe_difference(base[0], image)])
    print(f"Content size {size}, style size {args.style_size}, {settings.num_steps} Adam iterations, "
          f"{threads} threads unless said:\n")
    print(table(rows, ["loop", "ms / iteration", "final loss", "pixel difference to the straightforward loop"]))
    speedup = base[2] / runs["package"][2]
    print(f"\nSpeedup of the package loop over {settings.num_steps} iterations: {speedup:.2f}x")


#: Operator families of the time breakdown: profiler event name -> family.
FAMILIES = {
    "aten::bmm": "Gram matrices (bmm, forward + backward)",
    "aten::mkldnn_convolution": "convolutions",
    "aten::_slow_conv2d_forward": "convolutions",
    "aten::convolution_backward": "convolutions",
    "aten::max_pool2d_with_indices": "max-pooling",
    "aten::max_pool2d_with_indices_backward": "max-pooling",
}
SAME_KERNELS = ("Gram matrices (bmm, forward + backward)", "convolutions")


def time_breakdown(args, device, losses, model) -> None:
    """Per-iteration self CPU time by operator family (torch.profiler), both loops, first size."""
    from torch.profiler import ProfilerActivity, profile

    size, steps = args.sizes[0], args.steps
    settings = cs.TransferSettings(image_size=size, style_size=args.style_size, num_steps=steps)
    per_loop = {}
    for name, loop in LOOPS.items():
        loop(args.content, args.style, losses, model, settings.replace(num_steps=3))  # warm-up
        totals = {}
        for steps_run in (1, 1 + steps):  # the difference cancels the targets and the set-up
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                loop(args.content, args.style, losses, model, settings.replace(num_steps=steps_run))
            totals[steps_run] = {event.key: event.self_cpu_time_total for event in prof.key_averages()}
        families: dict[str, float] = {}
        for key, micros in totals[1 + steps].items():
            family = FAMILIES.get(key, "everything else (element-wise, copies, Adam, autograd, Python)")
            families[family] = families.get(family, 0.0) + (micros - totals[1].get(key, 0.0)) / steps / 1000
        per_loop[name] = families
    names = list(dict.fromkeys(n for families in per_loop.values() for n in families))
    rows = [[n] + [f"{per_loop[loop].get(n, 0.0):.1f}" for loop in LOOPS] for n in names]
    rows.append(["**total (profiled)**"] + [f"**{sum(per_loop[loop].values()):.1f}**" for loop in LOOPS])
    print(f"Content size {size}, style size {args.style_size}, {steps} iterations, ms of self CPU time per "
          "iteration (the profiler adds some overhead to small operators):\n")
    print(table(rows, ["operator family"] + [f"({'ab'[i]}) {loop}" for i, loop in enumerate(LOOPS)]))
    straight = per_loop["straightforward"]
    fixed = sum(straight.get(n, 0.0) for n in SAME_KERNELS)
    print(f"\nA loop that makes the same image, bit for bit, must run the same convolution and Gram-matrix "
          f"kernels on the same layers 0-{settings.deepest_layer}: the package's loop spends "
          f"{sum(per_loop['package'].get(n, 0.0) for n in SAME_KERNELS):.1f} ms of its iteration in them "
          f"(the straightforward loop {fixed:.1f} ms, including layers it runs beyond "
          f"{settings.deepest_layer}).")


def optimizer_comparison(args, device, losses, model) -> None:
    size = args.sizes[0]
    rows = []
    for optimizer in ("adam", "lbfgs"):
        settings = cs.TransferSettings(image_size=size, style_size=args.style_size, num_steps=args.check_steps,
                                       optimizer=optimizer)
        result = cs.style_transfer(args.content, args.style, losses, model, settings, progress=False)
        per_step = result.seconds / len(result.history["total"])
        best = np.minimum.accumulate(result.history["total"])
        marks = [int(len(best) * f) - 1 for f in (0.1, 0.25, 0.5, 1.0)]
        rows.append([optimizer] + [f"{best[i]:.4g} @ {per_step * (i + 1):.1f} s" for i in marks]
                    + [f"{result.history['total'][-1]:.4g}"])
    print(f"Content size {size}, {args.check_steps} loss evaluations each (one per Adam step; L-BFGS also "
          "spends evaluations on its line search). Best total loss so far @ wall time:\n")
    print(table(rows, ["optimizer", "10% of evaluations", "25%", "50%", "100%", "last evaluation's loss"]))


# --- time to quality: the fast mode ----------------------------------------------------------

#: The methods of the time-to-quality table: name -> the changes to the settings of a
#: ``style_transfer`` run (None: the straightforward loop). (a) and (b) are the exact loops; (c) one
#: idea each; (d) ``speed="fast"``. The variants measured before the fast mode shipped (bfloat16, the
#: first fast mode's L-BFGS from the photo with a 10-pair history, coarse to fine then L-BFGS) left
#: the package with issue #19; docs/benchmark.md keeps their rows, made by this file at commit 31496ed.
QUALITY_METHODS: dict[str, dict | None] = {
    "(a) straightforward": None,
    "(b) package, exact": {},
    "(c) L-BFGS only (float32, 200 evaluations from the photo)": {"optimizer": "lbfgs"},
    "(c) coarse to fine only, the exact mode's (Adam: 100 steps at half size, 100 at full size, no detail added)": {
        "coarse_size": "half", "num_steps": "half", "decay_at": "half", "clamp_until": "half"},
    "(d) fast mode": {"speed": "fast"},
}


def method_settings(name: str, settings: cs.TransferSettings) -> cs.TransferSettings:
    """The settings method ``name`` of :data:`QUALITY_METHODS` runs with ("half": half of ``settings``' value)."""
    halves = {"coarse_size": settings.image_size // 2, "num_steps": settings.num_steps // 2,
              "decay_at": settings.decay_at // 2, "clamp_until": settings.clamp_until // 2}
    changes = QUALITY_METHODS[name] or {}
    return settings.replace(**{key: halves[key] if value == "half" else value for key, value in changes.items()})


def run_method(name: str, content, style, losses, model, settings, evaluate=None) -> dict:
    """Run one method of :data:`QUALITY_METHODS`; with ``evaluate`` (a ``tools.plain_loop.LossEvaluator``),
    also the float32 loss of the image after each step or evaluation and the wall time at which it
    was there, the evaluations' own time excluded.

    Returns ``{"image", "seconds", "curve": [(seconds, float32 total loss), ...], "terms"}``:
    ``image`` the final normalized (1, 3, H, W) CPU image, ``seconds`` the wall time of the whole
    optimization, ``terms`` the final image's float32 loss terms (``None`` without ``evaluate``).
    For (a) and (b) the curve is the loop's own history (the float32 loss of the image before
    each step, with the same functions: the same numbers the evaluator computes, bit for bit) and
    the final image's loss at the end; the other methods' curves are computed by ``evaluate`` on
    the image the run would return if stopped there (upsampled to full size during a coarse stage,
    clamped for L-BFGS).
    """
    if QUALITY_METHODS[name] is None:
        run = straightforward_loop(content, style, losses, model, settings)
        curve = list(zip(run.step_seconds, run.totals, strict=True))
        image, seconds = run.image, run.seconds
    elif not QUALITY_METHODS[name]:
        stamps = []
        result = cs.style_transfer(content, style, losses, model, settings, progress=False, preview_every=1,
                                   callback=lambda step, img, terms: stamps.append(time.perf_counter()))
        begin = time.perf_counter() - result.seconds
        curve = [(t - begin, loss) for t, loss in zip(stamps, result.history["total"], strict=True)]
        image, seconds = result.image, result.seconds
    else:
        run_settings = method_settings(name, settings)
        stamps, paused = [], [0.0]
        full = tuple(cs.preprocess(content, settings.image_size).shape[-2:])

        def record(step, img, terms):
            entered = time.perf_counter()
            if evaluate is not None:
                if img.shape[-2:] != full:
                    img = torch.nn.functional.interpolate(img, size=full, mode="bilinear", align_corners=False)
                if run_settings.optimizer == "lbfgs":
                    img = img.clamp(-settings.clamp, settings.clamp)
                stamps.append((entered - paused[0], evaluate(img)["total"]))
            paused[0] += time.perf_counter() - entered

        result = cs.style_transfer(content, style, losses, model, run_settings, progress=False,
                                   preview_every=1 if evaluate is not None else 0, callback=record)
        end = time.perf_counter()
        seconds = result.seconds - paused[0]
        begin = end - result.seconds
        curve = [(t - begin, loss) for t, loss in stamps]
        image = result.image
    terms = None
    if evaluate is not None:
        terms = evaluate(image)
        curve.append((seconds, terms["total"]))
    return {"image": image, "seconds": seconds, "curve": curve, "terms": terms}


#: The content size CS231n's weights were tuned at; ``--scale-weights`` keeps their balance at other sizes.
TUNED_SIZE = WEIGHTS_SIZE


def quality_settings(size: int, style_size: int, steps: int, scale_weights: bool) -> cs.TransferSettings:
    """CS231n's default settings at content size ``size``; with ``scale_weights``, the content and
    total variation weights multiplied by ``(TUNED_SIZE / size) ** 2`` by the package's own rule
    (``settings.weights_for_size``, what ``weights_size=192`` does in every stage), written into
    the settings so that the straightforward loop and the evaluator use the same weights.

    Why: the content loss and the TV loss are sums over pixels, so they grow with H x W, while the
    style loss compares Gram matrices normalized by C x H x W, which do not. At 512 px CS231n's
    weights therefore give content (1/192^2 * 512^2 =) 7x its weight at 192 px and the image barely
    stylizes, so the 200-step loss is hardly below the photo's own (a nearly degenerate target).
    Scaling both weights by the pixel ratio keeps the balance the weights were tuned for.
    """
    settings = cs.TransferSettings(image_size=size, style_size=style_size, num_steps=steps)
    return weights_for_size(settings, TUNED_SIZE) if scale_weights else settings


def quality_worker(job: dict) -> dict:
    """Peak memory of one method of the time-to-quality table, in this (fresh) process."""
    device = cs.get_device(job["device"])
    losses, model = load_losses(), cs.load_squeezenet(device=device)
    settings = quality_settings(job["size"], job["style_size"], job["steps"], job["scale_weights"])
    rss_before = _peak_rss_kib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run_method(job["method"], job["content"], job["style"], losses, model, settings)
    if device.type == "cuda":
        return {"memory": f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (cuda max allocated)"}
    peak = _peak_rss_kib()
    return {"memory": f"{peak / 2**20:.2f} GiB (+{(peak - rss_before) / 2**20:.2f})"}


def _peak_rss_kib() -> int:
    """This process's peak resident set size in KiB: ``VmHWM`` from /proc/self/status on Linux.
    Not ``ru_maxrss``: Linux keeps that across ``execve``, so a worker started by a big parent
    would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def first_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """The first time in ``curve`` at which the loss is <= ``target`` (None if never)."""
    return next((t for t, loss in curve if loss <= target), None)


def side_by_side(images: list[torch.Tensor], titles: list[str], path: Path, height: int | None = None,
                 colors: int | None = None) -> None:
    """Write the images next to each other, with a title strip above each, as a PNG.

    Args:
        images: normalized (1, 3, H, W) images.
        titles: one line of text per image.
        path: the file to write (its folder is made).
        height: if given, each image is resized (Lanczos) to this height first; else as it is.
        colors: if given, the picture is stored with a palette of this many colours (at most 256,
            dithered): a file several times smaller.
    """
    from PIL import Image, ImageDraw

    pils = [cs.deprocess(image) for image in images]
    if height is not None:
        pils = [pil.resize((round(pil.width * height / pil.height), height), Image.Resampling.LANCZOS)
                for pil in pils]
    width, height = sum(p.width for p in pils) + 10 * (len(pils) - 1), max(p.height for p in pils) + 24
    canvas = Image.new("RGB", (width, height), "white")
    x = 0
    for pil, title in zip(pils, titles, strict=True):
        canvas.paste(pil, (x, 24))
        ImageDraw.Draw(canvas).text((x + 4, 6), title, fill="black")
        x += pil.width + 10
    path.parent.mkdir(parents=True, exist_ok=True)
    if colors is not None:
        canvas = canvas.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    canvas.save(path, optimize=True)


def _split(terms: dict[str, float]) -> str:
    """A final loss's terms, "content / style / TV": at the same total, a lower style term is a more
    stylized image (the first fast mode's images matched the total but stayed near the photo)."""
    return f"{terms['content']:.4g} / {terms['style']:.4g} / {terms['tv']:.4g}"


def quality_table(args, device, losses, model) -> None:
    """The time-to-quality table (see docs/benchmark.md, "Fast mode: time to quality")."""
    rows = []
    methods = [m for m in QUALITY_METHODS if not (args.skip_variants and m.startswith("(c)"))]
    for size in args.quality_sizes:
        settings = quality_settings(size, args.style_size, args.quality_steps, args.scale_weights)
        evaluate = LossEvaluator(args.content, args.style, losses, model, settings)
        for name in methods[:2] + methods[-1:]:  # warm-up (oneDNN sets up its kernels at each new shape)
            run_method(name, args.content, args.style, losses, model, settings.replace(num_steps=2))
        runs = {name: run_method(name, args.content, args.style, losses, model, settings, evaluate)
                for name in methods}
        memory = {}
        if not args.skip_memory:
            for name in (methods[0], methods[-1]):  # the yardstick and the fast mode (each a full run)
                job = {"method": name, "size": size, "style_size": args.style_size, "steps": args.quality_steps,
                       "device": str(device), "content": args.content, "style": args.style,
                       "scale_weights": args.scale_weights}
                memory[name] = run_worker(job, quality=True)["memory"]
        base = runs["(a) straightforward"]
        target = base["curve"][-1][1]
        photo = evaluate(evaluate.content)
        start = photo["total"]
        start_clamped = evaluate(evaluate.content.clamp(-settings.clamp, settings.clamp))["total"]
        degenerate = start <= target or start_clamped <= target
        nearly = not degenerate and min(start, start_clamped) <= 1.05 * target
        rows.append([str(size), "content image itself (reference)", "0", "", f"{start:.5g} "
                     f"(clamped to +-{settings.clamp:g}: {start_clamped:.5g})", _split(photo), "", "", ""])
        for name in methods:
            run = runs[name]
            reach = first_reach(run["curve"], target)
            final = run["curve"][-1][1]
            rows.append(["", name, f"{reach:.1f}" if reach is not None else "never",
                         f"{base['seconds'] / reach:.1f}x" if reach else "", f"{final:.5g}", _split(run["terms"]),
                         f"{run['seconds']:.1f}", f"{base['seconds'] / run['seconds']:.1f}x", memory.get(name, "")])
        note = (" **degenerate at this size: the content image's own loss is already at or below the target, "
                "so 'first reach' measures nothing**" if degenerate else
                " **nearly degenerate: the content image's loss is within 5% of the target, so 'first reach' "
                "measures little; compare the final losses and whole runs**" if nearly else "")
        rows.append(["", f"target: (a)'s {settings.num_steps}-step loss {target:.5g}{note}"] + [""] * 7)
        png = ROOT / "docs" / "images" / f"fast_vs_straightforward_{size}{'_scaled' if args.scale_weights else ''}.png"
        side_by_side([base["image"], runs["(d) fast mode"]["image"]],
                     [f"(a) straightforward, {base['seconds']:.1f} s, loss {target:.4g} "
                      f"(style {base['terms']['style']:.4g})",
                      f"(d) fast, {runs['(d) fast mode']['seconds']:.1f} s, "
                      f"loss {runs['(d) fast mode']['curve'][-1][1]:.4g} "
                      f"(style {runs['(d) fast mode']['terms']['style']:.4g})"], png)
        print(f"  time to quality at {size} done; side by side: {png.relative_to(ROOT)}", file=sys.stderr)
    weights = (f"content and TV weights scaled by ({TUNED_SIZE}/size)^2" if args.scale_weights
               else "CS231n's default weights")
    print(f"Content {args.content}, style {args.style} ({args.style_size}), {weights}, {args.quality_steps} steps. "
          "Seconds until the float32 total loss (one shared function) of the image the method would return first falls "
          "to the straightforward loop's final loss; speedup = (a)'s time for all its steps / that time.\n")
    print(table(rows, ["content size", "method", "s to target", "speedup vs (a)'s full run", "final loss",
                       "its content / style / TV", "s total", "whole run vs (a)", "peak memory (VmHWM, growth)"]))


# --- size-aware weights (TransferSettings.weights_size) ---------------------------------------

def size_aware_runs(args, losses, model) -> list[dict]:
    """Style transfer of ``args.content`` + ``args.size_aware_style`` at each of
    ``args.size_aware_sizes``, with ``weights_size=192`` (the command line's default) and 0 (CS231n's
    weights as given), ``args.size_aware_speed``, ``args.size_aware_steps`` steps, style image at
    ``args.style_size``.

    Returns:
        One dict per (size, weights size), in that order: ``size``, ``weights_size``, ``image`` (the
        normalized (1, 3, H, W) CPU result), ``photo`` (the content image at that size, likewise),
        ``seconds``, ``weights`` (content and TV weights of the full-size stage), ``style_ratio``
        (the result's float32 style loss / the photo's, the same style weights: 1 is the photo's
        style, lower is more stylized), ``mean_difference`` (mean absolute difference from the
        photo in [0, 255] pixels). At 192 px both weight sizes are the same run (a factor of
        exactly 1.0): it runs once and fills both rows.
    """
    rows = []
    for size in args.size_aware_sizes:
        photo = cs.preprocess(args.content, size)
        runs = {}
        for weights_size in (WEIGHTS_SIZE, 0):
            settings = cs.TransferSettings(image_size=size, style_size=args.style_size, speed=args.size_aware_speed,
                                           num_steps=args.size_aware_steps, weights_size=weights_size)
            stage = weights_for_size(settings, weights_size)  # the full-size stage's weights (the one rule)
            if size == WEIGHTS_SIZE and runs:  # the factor is 1.0: the same run
                result = next(iter(runs.values()))
            else:
                result = cs.style_transfer(args.content, args.size_aware_style, losses, model, settings,
                                           progress=False)
            runs[weights_size] = result
            evaluate = LossEvaluator(args.content, args.size_aware_style, losses, model, settings)
            style, photo_style = evaluate(result.image)["style"], evaluate(photo)["style"]
            difference = float(np.abs(pixels(result.image) - pixels(photo)).mean())
            rows.append({"size": size, "weights_size": weights_size, "image": result.image, "photo": photo,
                         "seconds": result.seconds, "weights": (stage.content_weight, stage.tv_weight),
                         "style_ratio": style / photo_style, "mean_difference": difference})
            print(f"  size-aware weights: {size} px, weights_size {weights_size} done ({result.seconds:.1f} s)",
                  file=sys.stderr)
    return rows


def size_aware_table(args, losses, model) -> None:
    """The size-aware weights table (docs/benchmark.md, "Size-aware weights"), and per size a side by
    side PNG in docs/images/ (the photo, weights_size 0, weights_size 192; each shown
    ``args.size_aware_height`` px high, a 256-colour PNG: small files)."""
    rows = size_aware_runs(args, losses, model)
    lines = []
    for row in rows:
        lines.append([str(row["size"]), str(row["weights_size"]) + (" (as given)" if not row["weights_size"] else ""),
                      f"{row['weights'][0]:.4g} / {row['weights'][1]:.4g}", f"{row['style_ratio']:.3f}",
                      f"{row['mean_difference']:.1f}", f"{row['seconds']:.1f}"])
    print(f"Content {args.content}, style {args.size_aware_style} ({args.style_size} px), speed "
          f"{args.size_aware_speed}, {args.size_aware_steps} steps; weights_size {WEIGHTS_SIZE} (the command line's "
          "default) vs 0 (CS231n's weights as given). Style ratio: the result's style loss / the photo's at that "
          "size (lower: more stylized).\n")
    print(table(lines, ["content size", "weights_size", "content / TV weight used", "style loss / photo's",
                        "mean abs. difference from the photo (0-255)", "s"]))
    for size in args.size_aware_sizes:
        scaled, given = [row for row in rows if row["size"] == size]
        png = ROOT / "docs" / "images" / f"size_aware_weights_{size}.png"
        side_by_side([scaled["photo"], given["image"], scaled["image"]],
                     [f"photo, {size} px", f"weights_size 0: style x{given['style_ratio']:.2f}, "
                      f"diff {given['mean_difference']:.1f}",
                      f"weights_size {WEIGHTS_SIZE}: style x{scaled['style_ratio']:.2f}, "
                      f"diff {scaled['mean_difference']:.1f}"],
                     png, height=args.size_aware_height, colors=256)
        print(f"  side by side: {png.relative_to(ROOT)}", file=sys.stderr)


def notebook_times(args) -> None:
    notebooks = sorted(SOLUTIONS.glob("*.ipynb"))
    if args.skip_notebooks:
        print("Skipped (--skip-notebooks).")
        return
    if not notebooks:
        print(f"No solution notebooks in {SOLUTIONS} yet: skipped.")
        return
    import nbclient
    import nbformat

    rows = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        try:
            nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}}).execute()
            status = "ok"
        except Exception as error:  # a failing notebook is reported, not fatal
            status = f"FAILED: {type(error).__name__}: {str(error).strip().splitlines()[-1][:80]}"
        rows.append([path.name, f"{time.perf_counter() - start:.1f}", status])
    print(table(rows, ["notebook", "wall time (s)", "status"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 384, 512],
                        help="content image sizes (shorter side, pixels) to time; the first one is also "
                             "used for the equality check and the optimizer comparison")
    parser.add_argument("--style-size", type=int, default=512, help="style image size (shorter side, pixels)")
    parser.add_argument("--steps", type=int, default=20, help="iterations per timing run")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs of each loop, alternating; the best counts")
    parser.add_argument("--check-steps", type=int, default=200,
                        help="iterations of the equality check and of the Adam / L-BFGS comparison")
    parser.add_argument("--content", default="cat", help="content image: sample name or path")
    parser.add_argument("--style", default="swirls", help="style image: sample name or path")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda', 'mps' (default: cpu)")
    parser.add_argument("--skip-notebooks", action="store_true", help="do not run the solution notebooks")
    parser.add_argument("--quality-sizes", type=int, nargs="+", default=[192, 512, 1024],
                        help="content sizes of the time-to-quality table")
    parser.add_argument("--quality-steps", type=int, default=200,
                        help="steps of the straightforward loop whose final loss is the target")
    parser.add_argument("--only-quality", action="store_true", help="print only the time-to-quality table")
    parser.add_argument("--skip-quality", action="store_true", help="skip the time-to-quality table")
    parser.add_argument("--skip-variants", action="store_true", help="time-to-quality: skip the (c) rows")
    parser.add_argument("--skip-memory", action="store_true",
                        help="time-to-quality: skip the peak memory (a fresh process per method and size)")
    parser.add_argument("--scale-weights", action="store_true",
                        help=f"time-to-quality: content and TV weights times ({TUNED_SIZE}/size)^2, so that "
                             "larger images stylize as much as at 192 px (see quality_settings)")
    parser.add_argument("--size-aware-sizes", type=int, nargs="+", default=[192, 384, 768],
                        help="content sizes of the size-aware weights table")
    parser.add_argument("--size-aware-style", default="great_wave",
                        help="style image of the size-aware weights table (issue #22's example)")
    parser.add_argument("--size-aware-speed", choices=("fast", "exact"), default="fast",
                        help="size-aware weights table: the speed setting of its runs")
    parser.add_argument("--size-aware-steps", type=int, default=200, help="size-aware weights table: num_steps")
    parser.add_argument("--size-aware-height", type=int, default=256,
                        help="size-aware weights table: height of each image in its PNGs (docs/images/)")
    parser.add_argument("--only-size-aware", action="store_true", help="print only the size-aware weights table")
    parser.add_argument("--skip-size-aware", action="store_true", help="skip the size-aware weights table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quality-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.quality_worker:
        print(json.dumps(quality_worker(json.loads(args.quality_worker))))
        return

    device = cs.get_device(args.device)
    losses, model = load_losses(), cs.load_squeezenet(device=device)
    print(f"# Style transfer benchmark, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"Machine: {machine_description(device)}\n")
    if args.only_quality:
        print("## Fast mode: time to quality\n")
        quality_table(args, device, losses, model)
        return
    if args.only_size_aware:
        print("## Size-aware weights\n")
        size_aware_table(args, losses, model)
        return
    peak = matmul_flops(device)
    print(f"Dense float32 matmul (2048 x 2048): {peak / 1e9:.0f} GFLOP/s\n")
    print(f"## Time per iteration (style size {args.style_size}, {args.steps} iterations, best of {args.repeats})\n")
    timing_table(args, device, peak, losses, model)
    print("\n## Where the time goes\n")
    time_breakdown(args, device, losses, model)
    print("\n## Same image?\n")
    equality_check(args, device, losses, model)
    print("\n## Adam vs L-BFGS\n")
    optimizer_comparison(args, device, losses, model)
    if not args.skip_quality:
        print("\n## Fast mode: time to quality\n")
        quality_table(args, device, losses, model)
    if not args.skip_size_aware:
        print("\n## Size-aware weights\n")
        size_aware_table(args, losses, model)
    print("\n## Solution notebooks\n")
    notebook_times(args)


if __name__ == "__main__":
    main()
