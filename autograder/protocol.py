"""The message format between the grader and its sandboxed child: JSON plus raw arrays, no pickle.

Both directions use the same frame::

    b"CS231N" + nonce (32 ASCII hex digits) + payload length (8 bytes, big-endian) + payload

and the payload is a JSON header (length-prefixed) followed by the raw bytes of the arrays it
refers to. A NumPy array anywhere in a message (a dict/list/str/number/bool/None tree) is replaced
by ``{"__array__": i, "dtype": ..., "shape": [...]}``; only float32, float64, int64 and bool arrays
travel. Decoding never unpickles, so a message written by student code can at worst carry wrong
numbers - which the grader compares with its own expected values.

The nonce is drawn per run by the grader; a frame with another nonce is rejected, so text the
student's code prints or writes to some file descriptor is not taken for a result.

Decoding is bounded and raises nothing but :class:`ProtocolError`: a frame's payload is at most
``max_bytes``, its JSON header at most ``max_header`` bytes and :data:`MAX_DEPTH` arrays/objects
deep (a frame of ``[[[[...]]]]`` deeper than Python's recursion limit stops ``json.loads`` with a
``RecursionError``, turned into a ``ProtocolError``; one under it is refused after parsing, without
recursion), and every array's data must lie inside the payload.

This module imports only the standard library and NumPy: the child imports it before any student
code runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import time

import numpy as np

__all__ = [
    "MAGIC",
    "MAX_DEPTH",
    "ProtocolError",
    "build_tensors",
    "decode",
    "encode",
    "frame",
    "read_message",
    "read_nonce",
    "write_message",
]

MAGIC = b"CS231N"
#: The deepest nesting of JSON arrays and objects accepted (the messages here nest 6 deep at most).
MAX_DEPTH = 32
_DTYPES = {"float32", "float64", "int64", "bool"}
_LENGTH = struct.Struct(">Q")


class ProtocolError(Exception):
    """A frame that is malformed, has the wrong nonce, is too large, or never came (timeout, EOF)."""


def encode(message) -> bytes:
    """Serialize a JSON-like tree that may contain NumPy arrays (see the module docstring)."""
    arrays: list[np.ndarray] = []

    def strip(node):
        if isinstance(node, np.ndarray):
            if node.dtype.name not in _DTYPES:
                node = node.astype(np.float64)
            arrays.append(np.ascontiguousarray(node))
            return {"__array__": len(arrays) - 1, "dtype": node.dtype.name, "shape": list(node.shape)}
        if isinstance(node, dict):
            return {str(key): strip(value) for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            return [strip(value) for value in node]
        if isinstance(node, (np.floating, np.integer, np.bool_)):
            return node.item()
        return node

    header = json.dumps(strip(message), allow_nan=True).encode()
    return _LENGTH.pack(len(header)) + header + b"".join(a.tobytes() for a in arrays)


def _deeper_than(node, limit: int) -> bool:
    """Whether a parsed JSON tree nests more than ``limit`` arrays/objects (walked without recursion)."""
    stack = [(node, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def decode(payload: bytes, max_header: int | None = None):
    """Inverse of :func:`encode`.

    Args:
        payload: the bytes :func:`encode` made (a frame's payload).
        max_header: the largest JSON header accepted, in bytes (``None``: any that fits the payload).

    Returns:
        The message: dicts, lists, str, numbers, bools, ``None`` and NumPy arrays.

    Raises:
        ProtocolError: on anything malformed - a short payload, a header over ``max_header`` bytes
            or :data:`MAX_DEPTH` deep, invalid JSON, a bad array descriptor, array data outside the
            payload or bytes after it - and never any other exception.
    """
    try:
        return _decode(payload, max_header)
    except ProtocolError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the bytes are, the caller gets a ProtocolError
        raise ProtocolError(f"malformed message ({type(error).__name__}: {str(error)[:200]})") from None


def _decode(payload: bytes, max_header: int | None):
    if len(payload) < _LENGTH.size:
        raise ProtocolError("malformed message: shorter than its header's length")
    (size,) = _LENGTH.unpack_from(payload, 0)
    if size > len(payload) - _LENGTH.size or (max_header is not None and size > max_header):
        raise ProtocolError(f"malformed message: a header of {size} bytes (the payload has {len(payload)}"
                            + (f", the limit is {max_header})" if max_header is not None else ")"))
    too_deep = ProtocolError(f"malformed message: its header nests more than {MAX_DEPTH} levels deep")
    try:
        header = json.loads(payload[_LENGTH.size:_LENGTH.size + size])
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"malformed message header: {str(error)[:200]}") from None
    if _deeper_than(header, MAX_DEPTH):
        raise too_deep
    offset = _LENGTH.size + size

    def build(node):
        nonlocal offset
        if isinstance(node, dict) and "__array__" in node:
            dtype, shape = node.get("dtype"), node.get("shape")
            if (dtype not in _DTYPES or not isinstance(shape, list) or len(shape) > MAX_DEPTH
                    or not all(type(s) is int and s >= 0 for s in shape)):
                raise ProtocolError(f"bad array descriptor {str(node)[:200]}")
            count = math.prod(shape)
            nbytes = count * np.dtype(dtype).itemsize
            if offset + nbytes > len(payload):
                raise ProtocolError("array data truncated")
            array = np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
            offset += nbytes
            return array
        if isinstance(node, dict):
            return {key: build(value) for key, value in node.items()}
        if isinstance(node, list):
            return [build(value) for value in node]
        return node

    message = build(header)
    if offset != len(payload):
        raise ProtocolError(f"malformed message: {len(payload) - offset} bytes after its arrays")
    return message


def frame(nonce: str, message) -> bytes:
    """One framed message, ready to write."""
    payload = encode(message)
    return MAGIC + nonce.encode() + _LENGTH.pack(len(payload)) + payload


def write_message(fd: int, nonce: str, message) -> None:
    """Write one framed message to a file descriptor (blocking until all is written)."""
    view = memoryview(frame(nonce, message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, count: int, deadline: float | None) -> bytes:
    chunks, remaining = [], count
    try:
        while remaining:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise ProtocolError("timeout")
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                raise ProtocolError("end of stream")
            chunks.append(chunk)
            remaining -= len(chunk)
    except (OSError, ValueError) as error:  # e.g. a closed descriptor
        raise ProtocolError(f"unreadable: {error}") from None
    return b"".join(chunks)


def read_message(fd: int, nonce: str, timeout: float | None = None, max_bytes: int = 64 << 20,
                 max_header: int | None = None):
    """Read one framed message; return the decoded tree.

    Args:
        fd: the file descriptor to read.
        nonce: the nonce the frame must carry.
        timeout: seconds to wait for the whole frame (``None``: forever).
        max_bytes: the largest payload accepted.
        max_header: the largest JSON header accepted (``None``: up to ``max_bytes``).

    Raises:
        ProtocolError: ``"timeout"``, ``"end of stream"`` (the writer exited), a wrong magic or
            nonce, a payload over ``max_bytes``, or a malformed payload (see :func:`decode`);
            never any other exception.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    head = _read_exactly(fd, len(MAGIC) + 32 + _LENGTH.size, deadline)
    if head[:len(MAGIC)] != MAGIC or head[len(MAGIC):len(MAGIC) + 32] != nonce.encode():
        raise ProtocolError("a message without the run's nonce (forged or corrupted)")
    (size,) = _LENGTH.unpack(head[-_LENGTH.size:])
    if size > max_bytes:
        raise ProtocolError(f"a message of {size} bytes (limit {max_bytes})")
    return decode(_read_exactly(fd, size, deadline), max_header)


def read_nonce(fd: int) -> str:
    """Read the run's nonce: the first 33 bytes on ``fd`` (32 hex digits and a newline).

    Raises:
        ProtocolError: if the stream ends first, or the 32 characters are not hex digits.
    """
    nonce = _read_exactly(fd, 33, None)[:32]
    if not re.fullmatch(rb"[0-9a-f]{32}", nonce):
        raise ProtocolError("a nonce that is not 32 hex digits")
    return nonce.decode("ascii")


def build_tensors(node, dtype, device: str = "cpu", tensors: list | None = None, shared=None, csr=None):
    """Turn a call's arguments into tensors: each ``{"tensor": array, "grad": bool}`` leaf becomes one
    (a copy), each ``{"shared": offset, "shape": [...], "grad": bool}`` leaf one that *is* the values
    at ``offset`` in ``shared`` (no copy: what the function writes into it lands there), and each
    ``{"csr": {"crow_indices": int64 array, "col_indices": int64 array, "values": array, "size": [n, m]}}``
    leaf (a sparse matrix: notebook 06's Matting Laplacian) what ``csr`` makes of it.

    Args:
        node: the arguments tree (lists, numbers, bools, leaves).
        dtype: a ``torch.dtype`` for every tensor (a NumPy one of the same name for shared leaves).
        device: ``"cpu"`` or ``"meta"`` (shape only, no values).
        tensors: a list that collects the tensors made, in order (not the sparse matrices: they are
            inputs the grader does not read back).
        shared: a writable buffer (e.g. an ``mmap``) that the shared leaves point into.
        csr: ``csr(crow_indices, col_indices, values, size, dtype, device) -> tensor`` (the indices
            int64 tensors, the values a float64 tensor): how a sparse leaf becomes a tensor.

    Returns:
        The same tree with tensors in place of the leaves.

    Raises:
        ValueError: for a shared leaf that lies outside ``shared`` (or without ``shared``), or a
            sparse leaf without ``csr``.
    """
    import torch

    if isinstance(node, dict) and "csr" in node:
        if csr is None:
            raise ValueError("a sparse leaf without a maker of sparse tensors (csr)")
        parts = node["csr"]
        return csr(*(torch.from_numpy(np.asarray(parts[key])) for key in ("crow_indices", "col_indices", "values")),
                   tuple(parts["size"]), dtype, device)
    if isinstance(node, dict) and "shared" in node:
        if shared is None:
            raise ValueError("a shared leaf without the shared buffer")
        count = math.prod(node["shape"])
        array = np.frombuffer(shared, dtype=str(dtype).removeprefix("torch."), count=count, offset=node["shared"])
        tensor = torch.from_numpy(array.reshape(node["shape"]))
    elif isinstance(node, dict) and "tensor" in node:
        array = np.asarray(node["tensor"])
        if device == "meta":
            tensor = torch.empty(array.shape, dtype=dtype, device="meta")
        else:
            tensor = torch.tensor(array, dtype=dtype, device=device)
    elif isinstance(node, list):
        return [build_tensors(value, dtype, device, tensors, shared, csr) for value in node]
    else:
        return node
    tensor.requires_grad_(bool(node.get("grad")))
    if tensors is not None:
        tensors.append(tensor)
    return tensor
