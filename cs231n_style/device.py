"""Pick the device to compute on (CUDA, Apple MPS or CPU) and seed every random generator.

There are no device or dtype globals in this package: call :func:`get_device` once and pass the
result on as ``device=``. The choice can be overridden per call (``get_device("cpu")``) or for a
whole session with the environment variable ``CS231N_STYLE_DEVICE`` (for example
``CS231N_STYLE_DEVICE=cpu jupyter lab``).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["DEVICE_ENV_VAR", "describe_device", "get_device", "seed_everything"]

DEVICE_ENV_VAR = "CS231N_STYLE_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(preference: str | torch.device | None = None) -> torch.device:
    """Return the device to run on: CUDA if present, else Apple MPS, else the CPU.

    Args:
        preference: ``None`` to choose automatically, or a device string such as ``"cpu"``,
            ``"cuda"``, ``"cuda:1"`` or ``"mps"``. When ``None``, the environment variable
            ``CS231N_STYLE_DEVICE`` is used if set.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: if the preference is not a device name torch understands.
        RuntimeError: if the requested device is not available on this machine (for example
            ``"cuda"`` on a laptop without an NVIDIA GPU, or ``"cuda:3"`` with one GPU), or is a
            device type other than CPU, CUDA and MPS; the message says what is available.
    """
    if preference is None:
        preference = os.environ.get(DEVICE_ENV_VAR) or None
    if preference is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preference)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"{preference!r} is not a device name; use 'cpu', 'cuda', 'cuda:N' or 'mps' "
            f"(argument or ${DEVICE_ENV_VAR})."
        ) from error
    available = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"CUDA was requested but is not available here; available: {', '.join(available)}.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"{device} was requested but only {torch.cuda.device_count()} CUDA device(s) exist.")
    elif device.type == "mps" and not _mps_available():
        raise RuntimeError(f"Apple MPS was requested but is not available here; available: {', '.join(available)}.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise RuntimeError(f"Device type {device.type!r} is not supported; use one of: {', '.join(available)}.")
    return device


def describe_device(device: torch.device | str) -> str:
    """Return a one-line description of ``device``, e.g. ``"cpu (2 threads)"``.

    Args:
        device: a ``torch.device`` or device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).

    Returns:
        A human-readable ``str``: for CUDA the index, GPU name and memory in GiB.

    Raises:
        ValueError: if ``device`` is not a device name torch understands.
        RuntimeError: if ``device`` is a CUDA device that is not available.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"{device!r} is not a device name; use 'cpu', 'cuda', 'cuda:N' or 'mps'.") from error
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and torch's random generators (all devices) with ``seed``.

    Args:
        seed: an ``int`` in [0, 2**32 - 1] (NumPy's legacy generator takes no more).

    Returns:
        ``None``.

    Raises:
        ValueError: if ``seed`` is not an integer (``bool`` and ``float`` included) or lies
            outside [0, 2**32 - 1]; nothing is seeded then.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS
