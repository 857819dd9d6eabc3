"""Training: the IGGT losses, a typed run config, and the trainer (docs/training.md).

    from iggt.train import Trainer, load_run_config
    Trainer(load_run_config("configs/tiny_cpu.yaml", ["train.steps=10"])).run()

Command line: ``iggt train --config ...`` or ``torchrun ... -m iggt.cli.train --config ...``.
"""

from iggt.lazy_exports import lazy_getattr

__all__ = ["LossConfig", "RunConfig", "TrainResult", "Trainer", "load_run_config", "total_loss"]

# Lazy attributes: the CLI imports one submodule (iggt.train.config) before knowing what runs.
__getattr__ = lazy_getattr(
    __name__,
    {
        "LossConfig": "iggt.train.losses",
        "total_loss": "iggt.train.losses",
        "RunConfig": "iggt.train.config",
        "load_run_config": "iggt.train.config",
        "Trainer": "iggt.train.trainer",
        "TrainResult": "iggt.train.trainer",
    },
)
