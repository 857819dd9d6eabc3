"""Loading builds the network without drawing random weights and on one thread, and loses nothing."""

import subprocess
import sys

import torch
from safetensors.torch import load_file

from iggt.model.hub import resolve_model_source
from iggt.model.iggt import IGGT
from iggt.model.weightless import one_thread, skip_initialisation

LOAD_SCRIPT = (
    "import sys, torch; from iggt.model.hub import load_model; load_model('iggt-small'); "
    "print('torch._dynamo' in sys.modules, torch.get_num_threads())"
)


def test_the_shipped_model_loads_every_tensor_exactly():
    model = IGGT.from_pretrained("iggt-small")
    stored = load_file(str(resolve_model_source("iggt-small")))
    state = model.state_dict()
    assert sorted(state) == sorted(stored)
    assert all(torch.equal(state[key], stored[key].to(state[key].dtype)) for key in stored)
    assert model.load_report.fresh_modules == []


def test_loading_imports_no_compiler_and_keeps_the_thread_count():
    threads = 2
    result = subprocess.run(
        [sys.executable, "-c", f"import torch; torch.set_num_threads({threads}); {LOAD_SCRIPT}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["False", str(threads)]


def test_skipped_initialisers_leave_values_untouched_and_random_factories_draw_nothing():
    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    with skip_initialisation():
        linear = torch.nn.Linear(4, 4)
        weight = torch.full((2, 2), 7.0)
        torch.nn.init.normal_(weight)
        drawn = torch.randn(5, 3)
    assert torch.equal(weight, torch.full((2, 2), 7.0))
    assert drawn.shape == (5, 3) and linear.weight.device.type == "cpu"
    assert torch.equal(torch.rand(3), expected_next)  # the generator was never advanced


def test_one_thread_restores_the_callers_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
