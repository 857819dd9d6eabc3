"""`iggt train` output folders: rebuilding a transfer checkpoint never deletes a full folder, and a
train.output_dir under a regular file is refused before training starts."""

import torch

from iggt.cli.main import main
from iggt.train.checkpoint import split_into_parts, write_checkpoint


def transfer_checkpoint(tmp_path):
    weights = {"a.weight": torch.randn(30, 20, generator=torch.Generator().manual_seed(0))}
    directory = write_checkpoint(tmp_path / "step_0000003", weights, {"note": "test"}, {"step": 3})
    return split_into_parts(directory, tmp_path / "transfer", 1000, bf16=False, training_state=True)


def test_join_transfer_refuses_a_folder_that_holds_files(tmp_path, capsys):
    transfer = transfer_checkpoint(tmp_path)
    run = tmp_path / "my_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("train: {}\n")
    assert main(["train", "--join-transfer", str(transfer), "--output-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"iggt train: error: --output-dir {run} is not empty; choose a new or empty folder for the rebuilt checkpoint"
    )
    assert (run / "config.yaml").read_text() == "train: {}\n" and (run / "checkpoints").is_dir()


def test_join_transfer_refuses_the_transfer_folder_itself(tmp_path, capsys):
    transfer = transfer_checkpoint(tmp_path)
    parts = sorted(path.name for path in transfer.iterdir())
    assert main(["train", "--join-transfer", str(transfer), "--output-dir", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(path.name for path in transfer.iterdir()) == parts


def test_an_output_dir_under_a_regular_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run"
    assert main(["train", f"train.output_dir={out}", "train.steps=1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    where = f"train.output_dir {out} is under {tmp_path / 'file'}, which is a file"
    assert err == f"iggt train: error: {where}; pass a folder path"
