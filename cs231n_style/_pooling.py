"""Speed internals of the style transfer loop (not part of the lesson: you can skip this module).

:func:`network_for` gives :func:`cs231n_style.style_transfer` the layers its losses need, with
max-pooling layers that compute exactly what :class:`torch.nn.MaxPool2d` computes, faster on CPUs.

Why. The loop computes exactly what CS231n's loop computes, bit for bit (the same image), with
less work: it runs the network only up to the deepest layer a loss reads, computes the targets
once without a graph, and never copies a loss value to the host inside the loop. On CPUs one more
thing is free: PyTorch's max-pooling kernel for plain NCHW tensors is slow (measured on a 2-core
CPU: 2.5 ms for SqueezeNet's first pooling layer at 192 x 288 pixels, against 0.15 ms for the same
tensor in channels-last layout), so the pooling layers use the channels-last kernel for their
forward pass, with identical results (see :class:`_MaxPool2dChannelsLastForward`).

Running the whole network in channels-last (NHWC) layout was tried and dropped: oneDNN's NHWC
convolutions are faster, but the students' losses need NCHW maps, and copying the five maps they
read back and forth cost what the convolutions gained (no faster in the end); and those
convolutions round differently, which CS231n's learning rate of 3.0 amplifies into a visibly
different final image. docs/benchmark.md has the measurements; tools/benchmark.py makes them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["network_for"]


class _MaxPool2dChannelsLastForward(torch.autograd.Function):
    """2-D max-pooling of an NCHW tensor whose forward pass runs PyTorch's channels-last kernel.

    The results are those of :class:`torch.nn.MaxPool2d`, bit for bit. The forward pass picks,
    in each window, the largest value (taking a maximum involves no rounding) and records where
    it was: the "argmax index" ``h * W + w`` within its channel, the same number whatever the
    memory layout. Both of PyTorch's CPU kernels scan a window row by row and keep the first
    maximum, so they record the same index even when several values tie
    (tests/test_transfer_speedups.py checks this). The backward pass sends each gradient to the
    recorded index; it runs PyTorch's own NCHW ``max_pool2d_with_indices_backward`` with those
    indices, as ``nn.MaxPool2d`` does.

    Args (of ``apply``):
        x: float tensor (N, C, H, W), contiguous (NCHW).
        kernel_size, stride, padding, dilation: lists of two ints, as in :class:`nn.MaxPool2d`.
        ceil_mode: bool, as in :class:`nn.MaxPool2d`.

    Returns:
        The pooled tensor (N, C, H_out, W_out), contiguous NCHW, same dtype and device as ``x``.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        args = (kernel_size, stride, padding, dilation, ceil_mode)
        pooled, indices = torch.ops.aten.max_pool2d_with_indices(
            x.contiguous(memory_format=torch.channels_last), *args)
        indices = indices.contiguous()
        ctx.save_for_backward(x, indices)
        ctx.args = args
        ctx.mark_non_differentiable(indices)
        return pooled.contiguous()  # NCHW again, so the next convolution runs its NCHW kernel

    @staticmethod
    def backward(ctx, grad):
        x, indices = ctx.saved_tensors
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(grad, x, *ctx.args, indices)
        return grad_x, None, None, None, None, None


class _MaxPool2dFast(nn.MaxPool2d):
    """:class:`nn.MaxPool2d` with the same results, faster on CPUs for NCHW tensors (see above)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous() or self.return_indices:
            return super().forward(x)
        stride = self.stride if self.stride is not None else self.kernel_size
        return _MaxPool2dChannelsLastForward.apply(x, _two(self.kernel_size), _two(stride), _two(self.padding),
                                                   _two(self.dilation), self.ceil_mode)


def _two(value) -> list[int]:
    """A pooling argument (``3`` or ``(3, 3)``) as the list of two ints aten expects."""
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


def network_for(model: nn.Sequential, last: int) -> nn.Sequential:
    """The layers the losses need, with faster max-pooling layers of the same results.

    Args:
        model: SqueezeNet ``features`` (any ``nn.Sequential``).
        last: index of the deepest layer a loss reads.

    Returns:
        ``model[: last + 1]`` as a new ``nn.Sequential`` whose ``nn.MaxPool2d`` layers are
        replaced by :class:`_MaxPool2dFast`. The other layers are shared, not copied; the caller's
        model is untouched.
    """
    return nn.Sequential(*(
        _MaxPool2dFast(layer.kernel_size, layer.stride, layer.padding, layer.dilation, ceil_mode=layer.ceil_mode)
        if type(layer) is nn.MaxPool2d else layer for layer in model[: last + 1]))
