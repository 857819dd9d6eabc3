"""StageTimer charges each interval to the stage marked at its end, and the trainer marks every stage."""

import time

import torch
from train_helpers import HandBuiltSource, make_batch, tiny_config

from iggt.train.stage_timer import STAGES, StageTimer
from iggt.train.trainer import Trainer


def test_each_interval_goes_to_the_stage_marked_at_its_end():
    timer = StageTimer(torch.device("cpu"))
    timer.start()
    time.sleep(0.02)
    timer.mark("data")
    timer.mark("forward")  # nothing happened in between
    time.sleep(0.01)
    timer.mark("data")
    assert timer.seconds["data"] >= 0.03
    assert timer.seconds["forward"] < 0.01
    timer.reset()
    assert dict(timer.seconds) == {}


def test_a_training_step_marks_every_stage_after_data(tmp_path):
    trainer = Trainer(tiny_config(tmp_path), source=HandBuiltSource(fixed=True), show_progress=False)
    batch = make_batch()
    timer = StageTimer(torch.device("cpu"))
    timer.start()
    trainer.train_step(batch, timer)
    assert set(timer.seconds) == set(STAGES) - {"data"}
    assert all(seconds > 0 for seconds in timer.seconds.values())
