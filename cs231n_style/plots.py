"""Figures for the notebooks: feature maps and loss curves (matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["plot_loss_history", "show_feature_maps"]


def show_feature_maps(feats: Sequence[torch.Tensor], layers: Sequence[int], num_channels: int = 6,
                      size: float = 1.6):
    """Show the first few channels of some layers' feature maps, one row per layer.

    Args:
        feats: the list from :func:`cs231n_style.extract_features`; ``feats[i]`` has shape
            (N, C_i, H_i, W_i). Only the first image of the batch is shown.
        layers: indices into ``feats``.
        num_channels: channels shown per layer (each scaled to its own min-max range).
        size: size of one panel in inches.

    Returns:
        The matplotlib ``Figure``, with ``len(layers) * num_channels`` ``Axes`` (panels beyond a
        layer's channel count stay blank).

    Raises:
        IndexError: if a layer index is beyond ``feats``.
        ValueError: if ``layers`` is empty or ``num_channels`` is below 1.
    """
    import matplotlib.pyplot as plt

    if len(layers) == 0 or num_channels < 1:
        raise ValueError(f"Need at least one layer and one channel; got layers={list(layers)}, "
                         f"num_channels={num_channels}.")
    for layer in layers:
        if not 0 <= layer < len(feats):
            raise IndexError(f"Layer {layer} is not in feats (layers 0-{len(feats) - 1}).")
    fig, axes = plt.subplots(len(layers), num_channels, figsize=(size * num_channels, size * len(layers) * 0.8),
                             squeeze=False)
    for row, layer in zip(axes, layers, strict=True):
        maps = feats[layer][0].detach().cpu().float().numpy()
        for channel, ax in enumerate(row):
            ax.axis("off")
            if channel < maps.shape[0]:
                ax.imshow(maps[channel], cmap="viridis")
        row[0].set_title(f"layer {layer}: {tuple(maps.shape)}", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_loss_history(history: Mapping[str, Sequence[float]], title: str = "", ax=None, *,
                      steps: Sequence[int] | None = None, num_steps: int | None = None):
    """Plot the loss terms of a run against the step, on a log scale.

    The notebooks plot a finished run's ``TransferResult.history``; the widget panel plots a
    run in progress with the same function, passing ``steps`` (it records every few steps) and
    ``num_steps`` (so that the x axis keeps its scale while the run goes on).

    Args:
        history: ``TransferResult.history``: name (``"content"``, ``"style"``, ``"tv"``,
            ``"total"``) -> list of floats, one per step. Terms that stay at 0 are skipped.
        title: the axes' title.
        ax: a matplotlib ``Axes`` to draw on, or ``None`` for a new figure (pyplot's).
        steps: the step number of each value, for a history recorded only every few steps
            (``RunProgress.steps`` of :mod:`cs231n_style.background`); ``None`` for 1, 2, 3, ...
        num_steps: if given, the x axis spans 0 to ``num_steps``; ``None`` fits it to the data.

    Returns:
        The matplotlib ``Axes``, with one line per term plotted and a legend naming them (no
        legend when every term is 0).

    Raises:
        ValueError: if ``steps`` is given and a term has a different number of values.

    Source: matplotlib's ``Axes.plot`` with a log-scaled y axis.
    """
    if steps is not None and any(len(values) != len(steps) for values in history.values()):
        raise ValueError(f"steps has {len(steps)} entries but the terms have "
                         f"{sorted({len(values) for values in history.values()})} values.")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3))
    for name, values in history.items():
        if any(v > 0 for v in values):
            x = range(1, len(values) + 1) if steps is None else steps
            ax.plot(x, values, label=name, linewidth=2 if name == "total" else 1)
    ax.set_yscale("log")
    if num_steps is not None:
        ax.set_xlim(0, max(num_steps, 1))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if ax.get_lines():
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)  # outside: curves start high
    ax.figure.tight_layout()
    return ax
