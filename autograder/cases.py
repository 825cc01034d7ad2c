"""What each test kind does: the calls it makes (inputs drawn at grading time) and what it expects.

A test is a list of :class:`Call` s plus, for some kinds, a check of the function's source. Each
call's expected output and gradients are computed here, in the grader, by the reference functions
(:mod:`autograder.reference`) on float64 inputs; the values typical mistakes give come from
:func:`autograder.variants.mistake_variants` (the formulas the notebook checks' stored values came from).

Kinds (the rubric's ``kind``):

* ``public`` - the notebook check's own stored inputs and aspects: float64 (with gradient) and
  float32, inputs unmodified; ``normalize=False`` too for ``gram_matrix`` and ``guided_gram_matrix``;
  no loops for the functions whose hint says so (``cs231n_style.diagnosis.VECTORIZED``: ``content_loss``,
  ``gram_matrix``, ``guided_gram_matrix``, ``tv_loss``), as the notebook check;
* ``shapes`` - ``draws`` other random shapes, H != W (other layers and weights for ``style_loss``
  and ``guided_style_loss``: their drawn ``style_layers`` never include layer 0, so indexing
  ``feats`` by position fails; other numbers of regions R for the guided functions, R != N);
* ``batch`` - ``gram_matrix`` / ``guided_gram_matrix`` on batches of 3 and 4 images;
* ``dtypes`` - one input in float32 and in float64;
* ``scale`` - inputs multiplied by each of ``scales`` (1e-3 and 1e3), float32 and float64;
* ``gradient`` - ``draws`` inputs: the gradient (for a random upstream gradient where the output is
  not a scalar) must match the reference gradient;
* ``unmodified`` - inputs (not requiring grad, so in-place changes go through) must be unchanged;
* ``tensor`` - a ``torch.Tensor`` of the reference's shape and the inputs' dtype;
* ``device`` - no device literal in the source (``.cuda()``, ``"cuda"``, ``device="cpu"``...),
  and it runs on PyTorch's ``meta`` device, returning a tensor there;
* ``no_loops`` - right values, and no ``for``/``while``/comprehension in the source (the functions of
  ``VECTORIZED`` only: their hints say "no Python loops").

Every kind also requires the right values (except the ``meta`` call, which has none), so a stub or
a wrong function earns nothing from the "property" tests.

The guided functions (notebook 05, Gatys et al., CVPR 2017, Sec. 4) get soft masks, values in
[0.05, 1], so that the wrong normalizations (C*H*W, sum m, sum m^2 without C) give other values.

``photorealism_loss`` (notebook 06, Luan et al., CVPR 2017, Sec. 3.1) gets an output image of pixels
in [0, 1], (1, 3, H, W) with H != W, the Matting Laplacian of a photo-like content image of that size
(a sparse leaf, :func:`laplacian_leaf`: the student's function gets a ``MattingLaplacian``, which
refuses ``.to_dense()``) and a weight in [0.1, 1000]; its public test is the notebook check's inputs
(``cs231n_style.photorealism.check_inputs``). Sparse tensors cannot live on the ``meta`` device, so
it has no ``device`` test (the rubric's schema refuses one), nor ``batch`` or ``no_loops``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from cs231n_style._matting_tensor import laplacian_from_csr
from cs231n_style.diagnosis import VECTORIZED, diagnose_loops, reference_values, source_uses_python_loops
from cs231n_style.photorealism import check_inputs, matting_laplacian, photo_pair

from .protocol import build_tensors
from .rubric import TestSpec
from .variants import mistake_variants

__all__ = ["Call", "Case", "arrays", "build_case", "device_hardcoding", "given_grams", "given_guided_grams",
           "laplacian_leaf", "leaves"]


@dataclass
class Call:
    """One call of a student's function, and what the reference says about it.

    Attributes:
        function: the function's name.
        args: the arguments; tensors as ``{"tensor": float64 array, "grad": bool}`` leaves.
        dtype: ``"float64"`` or ``"float32"`` (every tensor is cast to it).
        device: ``"cpu"`` or ``"meta"``.
        check_grad, check_unmodified: the aspects checked besides the output and its values.
        upstream: the gradient of the output fed to autograd (``None`` for a scalar output).
        expected, expected_grads, variants: filled by :func:`build_case` from the reference.
        grams: ``style_loss`` only: :func:`given_grams` of its ``feats``, for a re-run with the
            grader's Gram matrices (filled by :func:`build_case`); ``guided_style_loss``:
            :func:`given_guided_grams` of its style layers' feature maps and masks.
    """

    function: str
    args: list
    dtype: str = "float64"
    device: str = "cpu"
    check_grad: bool = False
    check_unmodified: bool = False
    upstream: np.ndarray | None = None
    expected: np.ndarray | None = None
    expected_grads: list = field(default_factory=list)
    variants: dict = field(default_factory=dict)
    grams: list | None = None

    def request(self, grams: bool = False) -> dict:
        """The message sent to the sandbox: inputs only, never the expected values.

        Args:
            grams: ``style_loss`` (``guided_style_loss``) only: also send :attr:`grams`, the Gram
                matrices of this call's own feature maps (and masks), which the runner's stand-in
                ``gram_matrix`` (``guided_gram_matrix``) returns.
        """
        request = {"function": self.function, "args": self.args, "dtype": self.dtype, "device": self.device,
                   "grad": self.check_grad, "upstream": self.upstream}
        if grams:
            request["grams"] = self.grams
        return request

    def input_arrays(self) -> list[np.ndarray]:
        """The tensor inputs, in the order the runner reports them back."""
        arrays: list[np.ndarray] = []

        def walk(node):
            if isinstance(node, dict) and "tensor" in node:
                arrays.append(node["tensor"])
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.args)
        return arrays


@dataclass
class Case:
    """A test's calls and its source checks (each a function ``source -> message or None``)."""

    calls: list[Call]
    source_checks: list = field(default_factory=list)


# --- random inputs ----------------------------------------------------------------------------

def _features(rng: np.random.Generator, shape) -> np.ndarray:
    """Non-negative, sparse 'feature maps' (like ReLU outputs), float64."""
    return np.maximum(rng.normal(0.0, 1.0, size=shape) - 0.3, 0.0) * rng.uniform(0.5, 3.0)


def _shape(rng: np.random.Generator, batch: int = 1, channels=(3, 40)) -> tuple[int, int, int, int]:
    h = int(rng.integers(2, 14))
    w = int(rng.integers(2, 14))
    if w == h:
        w += 1
    return batch, int(rng.integers(*channels)), h, w


def _tensor(array: np.ndarray, grad: bool) -> dict:
    return {"tensor": array, "grad": grad}


def _masks(rng: np.random.Generator, n: int, regions: int, h: int, w: int) -> np.ndarray:
    """Soft masks (N, R, H, W) with values in [0.05, 1]: no region is empty."""
    return rng.uniform(0.05, 1.0, size=(n, regions, h, w))


def _regions(rng: np.random.Generator, batch: int) -> int:
    """A number of regions, 2 to 4, never equal to the batch size (so swapped axes change the shape)."""
    regions = int(rng.integers(2, 5))
    return regions + 1 if regions == batch else regions


def _style_layers(rng: np.random.Generator, count: int) -> list[int]:
    """Style layers among ``1 .. count-1``, never layer 0, so every chosen layer sits after its position
    (layers[j] > j): feats[j] in place of feats[style_layers[j]] always gives a wrong result."""
    chosen = rng.choice(np.arange(1, count), size=int(rng.integers(2, count)), replace=False)
    return sorted(int(i) for i in chosen)


def _plain_gram(features: np.ndarray) -> np.ndarray:
    """A style image's normalized Gram matrix, (1, C, C) (NumPy; the targets' formula)."""
    _, c, h, w = features.shape
    flat = features.reshape(1, c, h * w)
    return flat @ flat.transpose(0, 2, 1) / (c * h * w)


def _guided_style_args(rng: np.random.Generator, scale: float, grad: bool) -> list:
    """Random ``guided_style_loss`` arguments: feats, style_layers, targets (1, R, C, C), weights, masks."""
    count, regions = int(rng.integers(3, 7)), int(rng.integers(2, 4))
    feats = [_features(rng, _shape(rng, channels=(3, 24))) * scale for _ in range(count)]
    layers = _style_layers(rng, count)
    weights = [float(w) for w in 10.0 ** rng.uniform(-1, 3, size=len(layers))]
    targets = [np.stack([_plain_gram(_features(rng, feats[i].shape) * scale)[0] for _ in range(regions)])[None]
               for i in layers]
    masks = [_masks(rng, 1, regions, *feats[i].shape[2:]) for i in layers]
    return [[_tensor(f, grad and i in layers) for i, f in enumerate(feats)], layers,
            [_tensor(t, False) for t in targets], weights, [_tensor(m, False) for m in masks]]


def draw_args(function: str, rng: np.random.Generator, batch: int = 1, scale: float = 1.0, grad: bool = True,
              normalize: bool = True) -> list:
    """Random arguments for ``function`` (see the module docstring); ``scale`` multiplies every input.

    ``grad`` sets ``requires_grad`` on the inputs the loss is differentiated against.
    """
    if function == "content_loss":
        shape = _shape(rng)
        return [float(rng.uniform(1e-3, 1.0)), _tensor(_features(rng, shape) * scale, grad),
                _tensor(_features(rng, shape) * scale, False)]
    if function == "gram_matrix":
        args = [_tensor(_features(rng, _shape(rng, batch)) * scale, grad)]
        return args if normalize else [*args, False]
    if function == "style_loss":
        count = int(rng.integers(3, 7))
        feats = [_features(rng, _shape(rng, channels=(3, 24))) * scale for _ in range(count)]
        layers = _style_layers(rng, count)
        weights = [float(w) for w in 10.0 ** rng.uniform(-1, 3, size=len(layers))]
        targets = [_plain_gram(_features(rng, feats[i].shape) * scale) for i in layers]  # a style image's
        return [[_tensor(f, grad and i in layers) for i, f in enumerate(feats)], layers,
                [_tensor(t, False) for t in targets], weights]
    if function == "guided_gram_matrix":
        n, c, h, w = _shape(rng, batch, channels=(3, 24))
        args = [_tensor(_features(rng, (n, c, h, w)) * scale, grad),
                _tensor(_masks(rng, n, _regions(rng, n), h, w), False)]
        return args if normalize else [*args, False]
    if function == "guided_style_loss":
        return _guided_style_args(rng, scale, grad)
    if function == "tv_loss":
        return [_tensor(rng.normal(0.0, 1.0, size=(1, 3, *_shape(rng)[2:])) * scale, grad),
                float(rng.uniform(1e-3, 1.0))]
    if function == "photorealism_loss":
        _, _, h, w = _shape(rng)
        h, w = h + 1, w + 1  # at least 3 pixels: the Laplacian's 3 x 3 windows
        content, img = photo_pair(h, w, torch.Generator().manual_seed(int(rng.integers(2**31))))
        return [_tensor(img.numpy() * scale, grad), laplacian_leaf(content), float(10.0 ** rng.uniform(-1, 3))]
    raise KeyError(function)


def laplacian_leaf(content: torch.Tensor) -> dict:
    """The Matting Laplacian (Levin et al., 2008; ``eps = 1e-7``, 3 x 3 windows) of a content image
    (1, 3, H, W) of pixels in [0, 1], as a sparse leaf of a call's arguments: ``{"csr": {"crow_indices",
    "col_indices", "values" (float64), "size"}}`` (built with ``cs231n_style.photorealism.matting_laplacian``;
    ``autograder.protocol.build_tensors`` turns it back into a ``MattingLaplacian`` of the call's dtype)."""
    laplacian = matting_laplacian(content, dtype=torch.float64)
    return {"csr": {"crow_indices": laplacian.crow_indices().numpy().copy(),
                    "col_indices": laplacian.col_indices().numpy().copy(),
                    "values": laplacian.values().numpy().copy(), "size": list(laplacian.shape)}}


def public_args(function: str, grad: bool = True) -> list[list]:
    """The notebook check's stored inputs (``cs231n_style/data/reference_values.npz``), as argument lists."""
    ref = reference_values()
    if function == "content_loss":
        return [[float(ref["content_loss.content_weight"]), _tensor(ref["content_loss.content_current"], grad),
                 _tensor(ref["content_loss.content_original"], False)]]
    if function == "gram_matrix":
        features = _tensor(ref["gram_matrix.features"], grad)
        return [[features], [features, False]]
    if function == "style_loss":
        layers = [int(i) for i in ref["style_loss.style_layers"]]
        feats = [_tensor(ref[f"style_loss.feats.{i}"], grad and i in layers)
                 for i in range(int(ref["style_loss.num_feats"]))]
        targets = [_tensor(ref[f"style_loss.style_targets.{j}"], False) for j in range(len(layers))]
        return [[feats, layers, targets, [float(w) for w in ref["style_loss.style_weights"]]]]
    if function == "guided_gram_matrix":
        features = _tensor(ref["guided_gram_matrix.features"], grad)
        masks = _tensor(ref["guided_gram_matrix.masks"], False)
        return [[features, masks], [features, masks, False]]
    if function == "guided_style_loss":
        p = "guided_style_loss."
        layers = [int(i) for i in ref[p + "style_layers"]]
        feats = [_tensor(ref[f"{p}feats.{i}"], grad and i in layers) for i in range(int(ref[p + "num_feats"]))]
        targets = [_tensor(ref[f"{p}style_targets.{j}"], False) for j in range(len(layers))]
        content_masks = [_tensor(ref[f"{p}content_masks.{j}"], False) for j in range(len(layers))]
        return [[feats, layers, targets, [float(w) for w in ref[p + "style_weights"]], content_masks]]
    if function == "photorealism_loss":
        content, img, weight = check_inputs()  # notebook 06's check draws its inputs (seeded), stores none
        return [[_tensor(img.numpy(), grad), laplacian_leaf(content), weight]]
    return [[_tensor(ref["tv_loss.img"], grad), float(ref["tv_loss.tv_weight"])]]


# --- source checks -----------------------------------------------------------------------------

_DEVICE_WORD = re.compile(r"^(cuda|cpu|mps|xpu|meta)(:\d+)?$")


def device_hardcoding(function: str, source: str) -> str | None:
    """The failure message if the source names a device (``.cuda()``, ``.cpu()``, ``"cuda"``, ...)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines()
    for node in ast.walk(tree):
        found: ast.expr | None = None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("cuda", "cpu", "mps")):
            found = node
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _DEVICE_WORD.match(node.value):
            found = node
        if found is not None:
            line = lines[found.lineno - 1].strip() if found.lineno <= len(lines) else ""
            return (f"{function}: FAIL - it hard-codes a device (line {found.lineno}: {line}). The inputs may live "
                    "on a GPU or elsewhere: create new tensors on the inputs' device (device=x.device, "
                    "torch.zeros_like(x)) and never move tensors with .cuda()/.cpu()/.to('cuda').")
    return None


def _no_loops(function: str, source: str) -> str | None:
    return diagnose_loops(function, source_uses_python_loops(source))


# --- the kinds ---------------------------------------------------------------------------------

def _calls(spec: TestSpec, rng: np.random.Generator) -> tuple[list[Call], list]:
    f, kind = spec.function, spec.kind
    if kind == "public":
        calls = []
        for dtype in ("float64", "float32"):
            for args in public_args(f):
                normalize_false = args[-1] is False  # gram_matrix's / guided_gram_matrix's normalize=False
                calls.append(Call(f, args, dtype, check_grad=dtype == "float64" and not normalize_false,
                                  check_unmodified=True))
        return calls, [_no_loops] if f in VECTORIZED else []
    if kind == "shapes":
        calls = [Call(f, draw_args(f, rng)) for _ in range(spec.draws + 1)]
        if f in ("gram_matrix", "guided_gram_matrix"):
            calls.append(Call(f, draw_args(f, rng, normalize=False)))
        return calls, []
    if kind == "batch":
        return ([Call(f, draw_args(f, rng, batch=n)) for n in (3, 4)]
                + [Call(f, draw_args(f, rng, batch=3, normalize=False))]), []
    if kind == "dtypes":
        args = draw_args(f, rng)
        return [Call(f, args, "float32"), Call(f, args, "float64")], []
    if kind == "scale":
        return [Call(f, draw_args(f, rng, scale=s), dtype) for s in spec.scales for dtype in ("float32", "float64")], []
    if kind == "gradient":
        return [Call(f, draw_args(f, rng), check_grad=True) for _ in range(spec.draws)], []
    if kind == "unmodified":
        return [Call(f, draw_args(f, rng, grad=False), dtype, check_unmodified=True)
                for dtype in ("float64", "float32")], []
    if kind == "tensor":
        return [Call(f, draw_args(f, rng), dtype) for dtype in ("float64", "float32")], []
    if kind == "device":
        args = draw_args(f, rng)
        return [Call(f, args), Call(f, args, device="meta")], [device_hardcoding]
    if kind == "no_loops":
        return [Call(f, draw_args(f, rng))], [_no_loops]
    raise KeyError(kind)


def arrays(args):
    """Arguments with their arrays in place of the tensor leaves ``{"tensor": array, "grad": bool}``: as
    ``mistake_variants`` and the diagnosis (``cs231n_style.diagnosis.locate_mistake``) take them."""
    if isinstance(args, dict) and "tensor" in args:
        return args["tensor"]
    if isinstance(args, list):
        return [arrays(value) for value in args]
    return args


def leaves(args):
    """:func:`arrays` undone: every array a leaf ``{"tensor": float64 array, "grad": False}`` (a probe's
    request, which needs no gradient)."""
    if isinstance(args, np.ndarray):
        return {"tensor": np.asarray(args, dtype=np.float64), "grad": False}
    if isinstance(args, (list, tuple)):
        return [leaves(value) for value in args]
    return args.item() if isinstance(args, np.generic) else args


def _numpy_args(call: Call) -> list:
    """The arguments with arrays in place of tensor leaves, as ``mistake_variants`` takes them."""
    args = arrays(call.args)
    if call.function == "gram_matrix":
        return args[:1]
    if call.function == "guided_gram_matrix":
        return [args[0], args[1], args[2] if len(args) > 2 else True]
    return args


def given_grams(feats: list, gram_matrix) -> list[dict]:
    """The Gram matrices of a ``style_loss`` call's feature maps, computed in the grader's process.

    Args:
        feats: the call's ``feats`` argument: ``{"tensor": (1, C, H, W) float64 array, ...}`` leaves.
        gram_matrix: the reference ``gram_matrix``.

    Returns:
        For each feature map: ``{"normalized": {"tensor": (1, C, C)}, "raw": {"tensor": (1, C, C)},
        "scale": 1 / (C*H*W)}`` - what the runner's stand-in ``gram_matrix`` returns for that map
        (``normalize=True`` / ``False``) and the factor its gradient needs. Values only: no
        function of the grader's ever runs in the student's process.
    """
    out = []
    with torch.no_grad():
        for leaf in feats:
            features = torch.tensor(leaf["tensor"], dtype=torch.float64)
            _, c, h, w = features.shape
            out.append({"normalized": {"tensor": gram_matrix(features).numpy().copy()},
                        "raw": {"tensor": gram_matrix(features, False).numpy().copy()}, "scale": 1.0 / (c * h * w)})
    return out


def given_guided_grams(feats: list, style_layers: list[int], content_masks: list, guided_gram_matrix) -> list[dict]:
    """The guided Gram matrices of a ``guided_style_loss`` call's style layers, computed in the grader.

    Args:
        feats: the call's ``feats`` argument: ``{"tensor": (1, C, H, W) float64 array, ...}`` leaves.
        style_layers: the call's layer numbers.
        content_masks: the call's masks, ``content_masks[i]`` a leaf (1, R, H_i, W_i) for ``style_layers[i]``.
        guided_gram_matrix: the reference ``guided_gram_matrix``.

    Returns:
        For each position i: ``{"layer": style_layers[i], "normalized": {"tensor": (1, R, C, C)},
        "raw": {"tensor": (1, R, C, C)}, "scale": {"tensor": (1, R, 1, 1)}}`` - what the runner's
        stand-in ``guided_gram_matrix`` returns for ``feats[layer]`` with ``content_masks[i]``
        (``normalize=True`` / ``False``) and the factor 1 / (C * sum m^2) its gradient needs.
        Values only: no function of the grader's ever runs in the student's process.
    """
    out = []
    with torch.no_grad():
        for layer, leaf in zip(style_layers, content_masks, strict=True):
            features = torch.tensor(feats[layer]["tensor"], dtype=torch.float64)
            masks = torch.tensor(leaf["tensor"], dtype=torch.float64)
            n, c = features.shape[:2]
            scale = 1.0 / (c * (masks**2).sum(dim=(2, 3))).reshape(n, -1, 1, 1)
            out.append({"layer": int(layer),
                        "normalized": {"tensor": guided_gram_matrix(features, masks).numpy().copy()},
                        "raw": {"tensor": guided_gram_matrix(features, masks, False).numpy().copy()},
                        "scale": {"tensor": scale.numpy().copy()}})
    return out


def _complete(call: Call, reference, rng: np.random.Generator) -> None:
    """Fill in the expected output, gradients and mistake variants, from float64 inputs."""
    tensors: list[torch.Tensor] = []
    args = build_tensors(call.args, torch.float64, "cpu", tensors, csr=laplacian_from_csr)
    out = getattr(reference, call.function)(*args)
    call.expected = out.detach().numpy().copy()
    call.variants = mistake_variants(call.function, *_numpy_args(call))
    if call.function == "style_loss":
        call.grams = given_grams(call.args[0], reference.gram_matrix)
    elif call.function == "guided_style_loss":
        call.grams = given_guided_grams(call.args[0], call.args[1], call.args[4], reference.guided_gram_matrix)
    if call.check_grad:
        wanted = [t for t in tensors if t.requires_grad]
        if out.dim() > 0:
            call.upstream = rng.normal(size=tuple(out.shape))
        upstream = None if call.upstream is None else torch.tensor(call.upstream, dtype=torch.float64)
        call.expected_grads = [g.numpy() for g in torch.autograd.grad(out, wanted, grad_outputs=upstream)]


def build_case(spec: TestSpec, rng: np.random.Generator, reference) -> Case:
    """The calls of one test, with inputs drawn from ``rng`` and expected values from ``reference``.

    Args:
        spec: the rubric's test.
        rng: the test's random generator (seeded by the grading run's seed and the test's id).
        reference: the reference functions (:func:`autograder.reference.load_reference`).

    Returns:
        A :class:`Case`.
    """
    calls, source_checks = _calls(spec, rng)
    for call in calls:
        _complete(call, reference, rng)
    return Case(calls, source_checks)
