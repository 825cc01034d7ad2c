"""Tests of cs231n_style.device: choosing the device and seeding every random generator."""

import random

import numpy as np
import pytest
import torch

from cs231n_style import device as device_module
from cs231n_style.device import DEVICE_ENV_VAR, describe_device, get_device, seed_everything

CUDA = torch.cuda.is_available()
MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@pytest.fixture(autouse=True)
def _no_device_env(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)


def test_explicit_cpu():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def _pretend(monkeypatch, cuda: bool, mps: bool, cuda_count: int = 1):
    """Make this machine look as if it had CUDA (with ``cuda_count`` GPUs) and/or Apple MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_count if cuda else 0)
    monkeypatch.setattr(device_module, "_mps_available", lambda: mps)


def test_automatic_choice_on_this_machine():
    expected = "cuda" if CUDA else "mps" if MPS else "cpu"
    assert get_device().type == expected


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"),  # CUDA beats MPS
    (True, False, "cuda"),
    (False, True, "mps"),  # MPS beats the CPU
    (False, False, "cpu"),
])
def test_automatic_choice_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _pretend(monkeypatch, cuda=cuda, mps=mps)
    assert get_device() == torch.device(expected)


def test_env_var_beats_the_automatic_choice(monkeypatch):
    _pretend(monkeypatch, cuda=True, mps=True)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert get_device() == torch.device("cpu")


def test_requested_devices_that_exist_are_returned(monkeypatch):
    _pretend(monkeypatch, cuda=True, mps=True, cuda_count=2)
    assert get_device("cuda:1") == torch.device("cuda:1")
    assert get_device("mps") == torch.device("mps")


def test_missing_gpu_index_names_the_count(monkeypatch):
    _pretend(monkeypatch, cuda=True, mps=False, cuda_count=2)
    with pytest.raises(RuntimeError, match=r"cuda:2 was requested but only 2 CUDA device"):
        get_device("cuda:2")


def test_unavailable_device_lists_what_is_available(monkeypatch):
    _pretend(monkeypatch, cuda=False, mps=True)
    with pytest.raises(RuntimeError, match="CUDA") as info:
        get_device("cuda")
    assert "available: cpu, mps" in str(info.value)
    _pretend(monkeypatch, cuda=True, mps=False)
    with pytest.raises(RuntimeError, match="MPS") as info:
        get_device("mps")
    assert "available: cpu, cuda" in str(info.value)


def test_env_var_is_used_when_no_argument(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert get_device() == torch.device("cpu")


def test_argument_beats_env_var(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "no-such-device")
    assert get_device("cpu") == torch.device("cpu")


def test_empty_env_var_means_automatic(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "")
    assert get_device() == get_device(None)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "", "cpu cpu"])
def test_invalid_name_raises_value_error_listing_choices(name):
    with pytest.raises(ValueError) as info:
        get_device(name)
    message = str(info.value)
    assert repr(name) in message
    for choice in ("'cpu'", "'cuda'", "'mps'"):
        assert choice in message


def test_invalid_env_var_names_the_variable(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match=DEVICE_ENV_VAR):
        get_device()


@pytest.mark.skipif(CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_unavailable_cuda_raises_runtime_error_naming_what_is_available(name):
    with pytest.raises(RuntimeError, match="CUDA") as info:
        get_device(name)
    assert "available: cpu" in str(info.value)


@pytest.mark.skipif(MPS, reason="MPS is available here")
def test_unavailable_mps_raises_runtime_error_naming_what_is_available():
    with pytest.raises(RuntimeError, match="MPS") as info:
        get_device("mps")
    assert "available: cpu" in str(info.value)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cuda_index_beyond_device_count():
    with pytest.raises(RuntimeError, match="CUDA device"):
        get_device(f"cuda:{torch.cuda.device_count()}")


def test_unsupported_device_type_raises_runtime_error():
    with pytest.raises(RuntimeError, match="not supported"):
        get_device("meta")


def test_describe_cpu_reports_threads():
    assert describe_device("cpu") == f"cpu ({torch.get_num_threads()} threads)"
    assert describe_device(torch.device("cpu")) == describe_device("cpu")


def test_describe_mps():
    assert describe_device("mps") == "mps (Apple GPU)"  # a description only: needs no MPS


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_describe_cuda_names_the_gpu():
    text = describe_device("cuda")
    assert text.startswith(f"cuda:{torch.cuda.current_device()} (")
    assert torch.cuda.get_device_name() in text and "GiB" in text


def test_describe_invalid_name_raises_value_error():
    with pytest.raises(ValueError, match="not a device name"):
        describe_device("gpu")


def _draw():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), torch.randint(0, 10**6, (1,)).item()


def test_seed_everything_makes_python_numpy_and_torch_reproducible():
    seed_everything(123)
    first = _draw()
    random.random(), np.random.rand(), torch.rand(1)  # move every generator on
    seed_everything(123)
    assert _draw() == first
    seed_everything(124)
    second = _draw()
    for a, b in zip(first, second, strict=True):
        assert a != b


def test_seed_everything_seeds_each_generator_as_its_own_seed_function_does():
    seed_everything(7)
    got = _draw()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    assert _draw() == got


def test_seed_everything_accepts_numpy_integers_and_bounds():
    seed_everything(np.int64(5))
    a = torch.rand(2)
    seed_everything(5)
    assert torch.equal(a, torch.rand(2))
    seed_everything(0)
    seed_everything(2**32 - 1)


@pytest.mark.parametrize("seed", [-1, 1.5, 2.0, "3", None, True, 2**32])
def test_seed_everything_rejects_bad_seeds_without_seeding(seed):
    random.seed(99)
    expected = random.random()
    random.seed(99)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)
    assert random.random() == expected  # nothing was seeded before the error


def test_describe_cuda_from_its_properties(monkeypatch):
    props = type("Props", (), {"name": "Fake GPU", "total_memory": 24 * 2**30})()
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    assert describe_device("cuda") == "cuda:0 (Fake GPU, 24 GiB)"
    assert describe_device("cuda:1") == "cuda:1 (Fake GPU, 24 GiB)"
