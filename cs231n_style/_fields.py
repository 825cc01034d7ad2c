"""How a :class:`cs231n_style.TransferSettings` field is declared (:func:`_option`, with its
:class:`Slider` for the widget panel) and how a value is checked against its declaration
(:func:`_checked`, which ``TransferSettings.__post_init__`` runs on every field). Part of
:mod:`cs231n_style.settings`, which holds the table of fields itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Slider:
    """How the widget panel shows a setting: a slider captioned ``label``, on a linear or log scale.

    Attributes:
        label: the caption; ``{layer}`` in it stands for a style layer's index.
        scale: ``"linear"``: a whole-number slider from ``low`` to ``high`` (raised when a setting
            needs more), moving by ``step``. ``"log"``: a base-10 slider from ``decades`` powers of
            ten below its first value to ``decades`` above, moving by ``step`` powers of ten (for
            weights: useful values span many powers of ten).
        step: the smallest move, in the scale's units.
        low, high: the ends of a linear slider (``None`` for a log one).
        decades: the reach of a log slider either side of its first value (2: four or five powers of
            ten over the slider's track, about 3x per 40 px dragged; a value typed in the slider's
            box may lie beyond, and widens it).
    """

    label: str
    scale: str
    step: float
    low: int | None = None
    high: int | None = None
    decades: int = 2


def _option(default, help: str, *, kind: str, minimum: float | None = None,
            exclusive_minimum: float | None = None, maximum: float | None = None, unit: str | None = None,
            choices: tuple[str, ...] | None = None, item: str | None = None, slider: Slider | None = None):
    """Declare a field of :class:`TransferSettings`: its default, and in its ``metadata`` what the
    checks, the command line and the widget panel need to know of it.

    Args:
        default: the field's default value.
        help: what the field does, in a sentence: the panel's tooltip and the command line's help.
        kind: what one value is: ``"whole number"`` (an int), ``"number"`` (a finite int or
            float), ``"layer index"`` (a whole number naming a SqueezeNet layer) or ``"choice"``
            (one of ``choices``).
        minimum, exclusive_minimum, maximum: the allowed range, ``>=``, ``>`` and ``<=`` (the
            names JSON Schema uses); ``None``: no such bound.
        unit: what a whole number counts, for error messages (``"pixels"``); ``None``: nothing.
        choices: the allowed values of a ``"choice"``.
        item: for a sequence of values of ``kind`` (stored as a tuple), what one value is called
            in error messages (``"style layer"``); ``None`` for a single value.
        slider: how the widget panel shows the field, if with a slider.

    Returns:
        A ``dataclasses.field``: ``metadata`` maps each of the names above but ``default`` to its
        value (``None`` where not given).
    """
    return field(default=default, metadata={
        "help": help, "kind": kind, "minimum": minimum, "exclusive_minimum": exclusive_minimum,
        "maximum": maximum, "unit": unit, "choices": choices, "item": item, "slider": slider})


# --- Checking a value against its field's metadata (TransferSettings.__post_init__) ---------------

#: What a value of each kind must be, as the error messages say it: ``{unit}`` becomes " of pixels"
#: (or nothing), ``{range}`` the field's bounds (">= 32 and <= 2048").
_MUST_BE = {
    "whole number": "a whole number{unit} {range}",
    "number": "a finite number {range}",
    "layer index": "a layer index {range} (see cs.describe_layers)",
}


def _checked(option: dataclasses.Field, value) -> tuple[Any, list[str]]:
    """Check one field's value against the field's metadata.

    Returns:
        ``(value, problems)``: the value to store (a sequence as a tuple of ints for layer indices,
        4.0 read as 4, or of floats for numbers; else as given) and a message for each thing
        wrong with it, such as ``"num_steps must be a whole number >= 0, not 2.5"`` (none: ``[]``).
    """
    meta, name = option.metadata, option.name
    if meta["item"] is None:
        return value, [] if _fits(value, meta) else [f"{name} must be {_must_be(meta)}, not {value!r}"]
    if isinstance(value, (str, bytes)):
        return value, [f"{name} must be a sequence of numbers such as {option.default}, not a string"]
    try:
        items = tuple(item if isinstance(item, str) and meta["kind"] == "layer index"
                      else (float if meta["kind"] == "number" else _whole)(item) for item in value)
    except (TypeError, ValueError) as error:
        return value, [f"{name} must be a sequence of numbers such as {option.default} ({error})"]
    return items, [f"{meta['item']} must be {_must_be(meta)}, not {item!r}" for item in items if not _fits(item, meta)]


def _fits(value, meta: Mapping[str, Any]) -> bool:
    """Whether one value is of the field's kind and within its bounds (``True`` is no number, 4.0 no
    whole number; ``nan``, ``inf`` and ints too large for a float are no finite number)."""
    if meta["kind"] == "choice":
        return isinstance(value, str) and value in meta["choices"]
    if meta["kind"] == "layer index" and isinstance(value, str):
        return True  # a name the backbone does not have: TransferSettings._layers_by_index says so
    numbers = (int, np.integer, float, np.floating) if meta["kind"] == "number" else (int, np.integer)
    if isinstance(value, bool) or not isinstance(value, numbers):
        return False
    if meta["kind"] == "number" and not _finite(value):
        return False
    return ((meta["minimum"] is None or value >= meta["minimum"])
            and (meta["exclusive_minimum"] is None or value > meta["exclusive_minimum"])
            and (meta["maximum"] is None or value <= meta["maximum"]))


def _must_be(meta: Mapping[str, Any]) -> str:
    """What a value of the field must be: ``"a whole number of pixels >= 32 and <= 2048"``,
    ``"a finite number > 0"``, ``"'adam' or 'lbfgs'"``."""
    if meta["kind"] == "choice":
        *others, last = (repr(choice) for choice in meta["choices"])
        return f"{', '.join(others)} or {last}" if others else last
    bounds = ((">=", meta["minimum"]), (">", meta["exclusive_minimum"]), ("<=", meta["maximum"]))
    return _MUST_BE[meta["kind"]].format(
        unit=f" of {meta['unit']}" if meta["unit"] else "",
        range=" and ".join(f"{sign} {bound}" for sign, bound in bounds if bound is not None))


def _finite(value) -> bool:
    """Whether a number is neither ``nan`` nor infinite, and fits a float (``10**400`` does not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _whole(value) -> int:
    """``value`` as an int if it is a whole number (4, 4.0, ``np.int64(4)``); else ValueError."""
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)
