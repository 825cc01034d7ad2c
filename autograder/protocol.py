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

This module imports only the standard library and NumPy: the child imports it before any student
code runs.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time

import numpy as np

__all__ = ["MAGIC", "ProtocolError", "encode", "decode", "frame", "write_message", "read_message", "read_nonce",
           "build_tensors"]

MAGIC = b"CS231N"
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


def decode(payload: bytes):
    """Inverse of :func:`encode`. Raises :class:`ProtocolError` on anything malformed."""
    try:
        (size,) = _LENGTH.unpack_from(payload, 0)
        header = json.loads(payload[_LENGTH.size:_LENGTH.size + size])
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"malformed message header: {error}") from None
    offset = _LENGTH.size + size

    def build(node):
        nonlocal offset
        if isinstance(node, dict) and "__array__" in node:
            dtype, shape = node.get("dtype"), node.get("shape")
            if (dtype not in _DTYPES or not isinstance(shape, list)
                    or not all(isinstance(s, int) and s >= 0 for s in shape)):
                raise ProtocolError(f"bad array descriptor {node!r}")
            count = int(np.prod(shape, dtype=np.int64))
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

    return build(header)


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
    return b"".join(chunks)


def read_message(fd: int, nonce: str, timeout: float | None = None, max_bytes: int = 64 << 20):
    """Read one framed message; return the decoded tree.

    Args:
        fd: the file descriptor to read.
        nonce: the nonce the frame must carry.
        timeout: seconds to wait for the whole frame (``None``: forever).
        max_bytes: the largest payload accepted.

    Raises:
        ProtocolError: ``"timeout"``, ``"end of stream"`` (the writer exited), a wrong magic or
            nonce, a payload over ``max_bytes``, or a malformed payload.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    head = _read_exactly(fd, len(MAGIC) + 32 + _LENGTH.size, deadline)
    if head[:len(MAGIC)] != MAGIC or head[len(MAGIC):len(MAGIC) + 32] != nonce.encode():
        raise ProtocolError("a message without the run's nonce (forged or corrupted)")
    (size,) = _LENGTH.unpack(head[-_LENGTH.size:])
    if size > max_bytes:
        raise ProtocolError(f"a message of {size} bytes (limit {max_bytes})")
    return decode(_read_exactly(fd, size, deadline))


def read_nonce(fd: int) -> str:
    """Read the run's nonce: the first 33 bytes on ``fd`` (32 hex digits and a newline)."""
    return _read_exactly(fd, 33, None).decode("ascii").strip()


def build_tensors(node, dtype, device: str = "cpu", tensors: list | None = None):
    """Turn a call's arguments into tensors: each ``{"tensor": array, "grad": bool}`` leaf becomes one.

    Args:
        node: the arguments tree (lists, numbers, bools, leaves).
        dtype: a ``torch.dtype`` for every tensor.
        device: ``"cpu"`` or ``"meta"`` (shape only, no values).
        tensors: a list that collects the tensors made, in order.

    Returns:
        The same tree with tensors in place of the leaves.
    """
    import torch

    if isinstance(node, dict) and "tensor" in node:
        array = np.asarray(node["tensor"])
        if device == "meta":
            tensor = torch.empty(array.shape, dtype=dtype, device="meta")
        else:
            tensor = torch.tensor(array, dtype=dtype, device=device)
        tensor.requires_grad_(bool(node.get("grad")))
        if tensors is not None:
            tensors.append(tensor)
        return tensor
    if isinstance(node, list):
        return [build_tensors(value, dtype, device, tensors) for value in node]
    return node
