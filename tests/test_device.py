"""iggt.device: one device rule and one dtype vocabulary for every stage, with one-line errors.

Rules that depend on the GPUs present are checked by making torch report a GPU machine
(``torch.cuda.is_available`` / ``device_count``), the environment the resolver reads.
"""

import pytest
import torch

from iggt.device import DTYPES, dtype_name, parse_device, parse_dtype, resolve_device, resolve_dtype
from iggt.errors import InputError


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_cpu_and_auto_without_a_gpu_are_the_cpu(no_gpu):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


def test_auto_on_a_gpu_machine_is_the_first_gpu_and_cuda_n_is_checked_against_the_count(two_gpus):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")  # cpu stays cpu with GPUs visible
    with pytest.raises(InputError, match=r"^device 'cuda:2' does not exist: 2 GPU\(s\) visible; use cuda:0 to cuda:1$"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_a_gpu_asked_for_without_one_is_one_line_naming_the_fix(no_gpu, spec):
    message = r"^device 'cuda(:\d)?' asked for but no CUDA GPU is visible; use --device cpu$"
    with pytest.raises(InputError, match=message):
        resolve_device(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpu0", "unknown device 'gpu0'; use auto, cpu, cuda or cuda:N"),
        ("meta", "device 'meta' is not supported; use auto, cpu, cuda or cuda:N"),
        ("cuda:x", "unknown device 'cuda:x'"),
    ],
)
def test_misspelt_and_unsupported_devices_are_refused_before_any_hardware_check(spec, message):
    with pytest.raises(InputError, match=message):
        parse_device(spec)
    with pytest.raises(InputError, match=message):
        resolve_device(spec)


def test_every_spelling_of_the_vocabulary_names_one_dtype():
    pairs = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
    for long, short in pairs.items():
        assert DTYPES[long] is DTYPES[short] is getattr(torch, long)
        assert dtype_name(DTYPES[short]) == long
        assert parse_dtype(short) is parse_dtype(getattr(torch, long)) is getattr(torch, long)
    assert parse_dtype("auto") is None
    with pytest.raises(InputError, match=r"unknown dtype 'int8'; use auto, float32 \(fp32\), bfloat16 \(bf16\)"):
        parse_dtype("int8")
    with pytest.raises(InputError, match="dtype torch.float64 is not supported"):
        parse_dtype(torch.float64)


def test_dtype_on_the_cpu_is_float32_and_reduced_precision_there_is_refused():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) is torch.float32
    assert resolve_dtype("fp32", cpu) is resolve_dtype(torch.float32, cpu) is torch.float32
    for spec in ("bf16", "bfloat16", torch.float16):
        with pytest.raises(InputError, match=r"^dtype '(bfloat16|float16)' needs a CUDA device; on the CPU use"):
            resolve_dtype(spec, cpu)


@pytest.mark.parametrize(
    ("capability", "expected"), [((9, 0), torch.bfloat16), ((8, 0), torch.bfloat16), ((7, 5), torch.float16)]
)
def test_auto_dtype_on_a_gpu_follows_its_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cuda = torch.device("cuda")
    assert resolve_dtype("auto", cuda) is expected
    assert resolve_dtype("bf16", cuda) is torch.bfloat16  # an explicit choice is taken as given


def test_heads_run_in_float16_on_cuda_float32_on_the_cpu_and_reduced_precision_needs_cuda():
    from iggt.device import resolve_head_dtype

    cpu = torch.device("cpu")
    assert resolve_head_dtype("auto", cpu) == torch.float32
    assert resolve_head_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_head_dtype("float32", torch.device("cuda")) == torch.float32  # an explicit choice is kept
    assert resolve_head_dtype("float32", cpu) == torch.float32
    with pytest.raises(InputError, match="dtype 'bfloat16' needs a CUDA device"):
        resolve_head_dtype("bfloat16", cpu)
