"""Figures for the notebooks: feature maps and loss curves (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["show_feature_maps", "plot_loss_history"]


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
    for row, layer in zip(axes, layers):
        maps = feats[layer][0].detach().cpu().float().numpy()
        for channel, ax in enumerate(row):
            ax.axis("off")
            if channel < maps.shape[0]:
                ax.imshow(maps[channel], cmap="viridis")
        row[0].set_title(f"layer {layer}: {tuple(maps.shape)}", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def plot_loss_history(history: dict[str, Sequence[float]], title: str = "", ax=None):
    """Plot the loss terms of a run against the step, on a log scale.

    Args:
        history: ``TransferResult.history``: name (``"content"``, ``"style"``, ``"tv"``,
            ``"total"``) -> list of floats, one per step. Terms that stay at 0 are skipped.
        title: the axes' title.
        ax: a matplotlib ``Axes`` to draw on, or ``None`` for a new figure.

    Returns:
        The matplotlib ``Axes``, with one line per term plotted and a legend naming them (no
        legend when every term is 0).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for name, values in history.items():
        if any(v > 0 for v in values):
            ax.plot(range(1, len(values) + 1), values, label=name, linewidth=2 if name == "total" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if ax.get_lines():
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)  # outside: curves start high
    ax.figure.tight_layout()
    return ax
