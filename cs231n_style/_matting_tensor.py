"""The Matting Laplacian as a torch tensor: sparse, multiplied fast, never dense.

:func:`cs231n_style.photorealism.matting_laplacian` returns a :class:`MattingLaplacian`. This module
imports only torch, so that the autograder's sandboxed runner (``autograder/runner.py``) loads it by
its path - without importing the package - and hands a student's ``photorealism_loss`` the same
tensor the notebook does (Luan et al., "Deep Photo Style Transfer", CVPR 2017, Sec. 3.1).
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["DenseLaplacianError", "MattingLaplacian", "laplacian_from_csr"]


class DenseLaplacianError(RuntimeError):
    """Raised when code asks for a :class:`MattingLaplacian` as a dense matrix (``.to_dense()``)."""


class _SymmetricProduct(torch.autograd.Function):
    """``laplacian @ dense`` whose backward is ``laplacian @ grad``: the Laplacian is symmetric, so its
    transpose is itself (PyTorch's own backward would transpose the CSR matrix, re-sorting it: ~30x slower)."""

    @staticmethod
    def forward(ctx, laplacian: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.laplacian = laplacian
        return laplacian @ dense

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.laplacian @ grad


class MattingLaplacian(torch.Tensor):
    """What :func:`matting_laplacian` returns: a ``torch.sparse_csr`` tensor (N, N) that knows it is
    symmetric, and refuses to become dense.

    It is a torch tensor in every way (``.shape``, ``.dtype``, ``.to(device)``, ``.values()``, ...), with
    two differences, both through PyTorch's ``__torch_function__`` protocol:

    * a product with a dense tensor - ``laplacian @ v``, ``v.T @ laplacian``, ``torch.sparse.mm``,
      ``torch.mm``, ``torch.matmul``, ``.mm``, ``.matmul`` - returns a plain dense tensor whose
      gradient with respect to ``v`` is computed with the Laplacian itself (it is its own transpose);
      ``v`` is (N,) or (N, K) (or (K, N) on the left), of the Laplacian's dtype and device;
    * ``.to_dense()`` raises :class:`DenseLaplacianError`: an (N, N) dense matrix of a 192 x 288 px
      image would take 12 GB.

    ``.to(...)``, ``.cpu()``, ``.cuda()``, ``.float()``, ``.double()``, ``.clone()``, ``.detach()``,
    ``.coalesce()`` and ``.to_sparse...()`` keep it a ``MattingLaplacian`` (so ``.to_sparse_coo().to_dense()``
    is refused too); anything else returns plain tensors.

    Raises:
        DenseLaplacianError: from ``.to_dense()``.
        ValueError: from a product with something that is not a dense (N,) or 2-D tensor, or one of
            another dtype or device (the message says how to convert).
    """

    _KEEPS = ("to", "cpu", "cuda", "float", "double", "clone", "detach", "coalesce", "to_sparse", "to_sparse_coo",
              "to_sparse_csr")
    _PRODUCTS = ("__matmul__", "__rmatmul__", "matmul", "mm", "sparse.mm")

    @classmethod
    def _wrap(cls, sparse: torch.Tensor) -> MattingLaplacian:
        return torch.Tensor._make_subclass(cls, sparse)  # as torch.nn.Parameter wraps its data

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _function_name(func)
        if name == "to_dense":
            raise DenseLaplacianError(_DENSE_MESSAGE.format(n=args[0].shape[0]))
        if name in cls._PRODUCTS and len(args) == 2 and not kwargs:
            return _product(*args)
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        keep = name in cls._KEEPS and isinstance(out, torch.Tensor) and out.layout != torch.strided
        return cls._wrap(out) if keep else out


_DENSE_MESSAGE = ("The Matting Laplacian must stay sparse: as a dense matrix it would hold {n} x {n} numbers (12 GB "
                  "for a 192 x 288 px image). Multiply it as it is: laplacian @ v, with v a dense (H*W, K) tensor "
                  "(or torch.sparse.mm(laplacian, v)).")


def _function_name(func) -> str:
    name = getattr(func, "__name__", "")
    return "sparse.mm" if func is torch.sparse.mm else name


def _product(left, right) -> torch.Tensor:
    """``left @ right`` with one of them a :class:`MattingLaplacian` and the other dense."""
    with torch._C.DisableTorchFunctionSubclass():
        on_left = isinstance(left, MattingLaplacian)
        laplacian = torch.Tensor._make_subclass(torch.Tensor, left if on_left else right)
        dense = right if on_left else left
        if not isinstance(dense, torch.Tensor) or dense.layout != torch.strided or dense.dim() not in (1, 2):
            raise ValueError("the Matting Laplacian multiplies dense vectors (N,) or matrices: laplacian @ v with v "
                            f"of shape (N, K), N = {laplacian.shape[0]}.")
        if dense.dtype != laplacian.dtype or dense.device != laplacian.device:
            raise ValueError(f"the Matting Laplacian is {laplacian.dtype} on {laplacian.device}, the other factor "
                             f"{dense.dtype} on {dense.device}: make them the same, e.g. "
                             "laplacian.to(v.device, v.dtype).")
        column = dense.reshape(-1, 1) if dense.dim() == 1 else (dense if on_left else dense.mT)
        out = _SymmetricProduct.apply(laplacian, column)
        if dense.dim() == 1:
            return out.reshape(-1)
        return out if on_left else out.mT  # v^T L = (L v)^T: L is symmetric


def laplacian_from_csr(crow_indices: torch.Tensor, col_indices: torch.Tensor, values: torch.Tensor,
                       size: tuple[int, int], dtype: torch.dtype = torch.float32,
                       device: str | torch.device = "cpu") -> MattingLaplacian:
    """A :class:`MattingLaplacian` from its CSR parts (what ``crow_indices()``, ``col_indices()`` and
    ``values()`` of one return): how the autograder hands a Laplacian it built to a student's function.

    Args:
        crow_indices: int64 (N + 1,), the row starts; col_indices: int64 (nnz,), sorted within each row.
        values: the entries (nnz,), any float dtype (converted to ``dtype``).
        size: ``(N, N)``.
        dtype: the returned tensor's dtype (the image's).
        device: where it lives (a CPU or GPU device; sparse tensors cannot live on 'meta').

    Returns:
        The Laplacian, a sparse CSR (N, N) tensor.

    Raises:
        RuntimeError: from PyTorch, for indices that do not make a valid CSR matrix of ``size``.
    """
    with warnings.catch_warnings():  # torch's one-time "Sparse CSR tensor support is in beta state"
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        csr = torch.sparse_csr_tensor(crow_indices.to(device), col_indices.to(device),
                                      values.to(device, dtype), size, check_invariants=True)
    return MattingLaplacian._wrap(csr)
