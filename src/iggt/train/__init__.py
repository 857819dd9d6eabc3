"""Training: the IGGT losses, a typed run config, and the trainer (docs/training.md).

    from iggt.train import Trainer, load_run_config
    Trainer(load_run_config("configs/tiny_cpu.yaml", ["train.steps=10"])).run()

Command line: ``iggt train --config ...`` or ``torchrun ... -m iggt.train --config ...``.
"""

from importlib import import_module

__all__ = ["LossConfig", "RunConfig", "TrainResult", "Trainer", "load_run_config", "total_loss"]

# Lazy attributes: `python -m iggt.train` and the CLI import this package before knowing what runs.
_LAZY = {
    "LossConfig": "iggt.train.losses",
    "total_loss": "iggt.train.losses",
    "RunConfig": "iggt.train.config",
    "load_run_config": "iggt.train.config",
    "Trainer": "iggt.train.trainer",
    "TrainResult": "iggt.train.trainer",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'iggt.train' has no attribute {name!r}")
