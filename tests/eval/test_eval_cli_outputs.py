"""`iggt eval --out`: checked before the model is loaded; a full disk keeps the previous reports whole."""

import errno
import os

import pytest

from iggt.cli.main import main
from iggt.eval import report
from iggt.model import hub


def test_an_out_under_a_regular_file_fails_before_loading_the_model(make_scene, tmp_path, capsys, monkeypatch):
    from iggt.io.scene_format import write_scene

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the destination was checked")

    monkeypatch.setattr(hub, "load_model", load_model)
    write_scene(make_scene(num_views=2), tmp_path / "data" / "kitchen")
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "report"
    assert main(["eval", "--data", str(tmp_path / "data"), "--out", str(out), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"iggt eval: error: --out {out} is under {tmp_path / 'file'}, which is a file; pass a folder path"
    )


def test_a_full_disk_keeps_the_previous_reports_whole(tmp_path, monkeypatch):
    out = tmp_path / "report"
    out.mkdir()
    rows = [{"scene": "a", "method": "m", "num_views": 2, "abs_rel": 0.5, "seconds": 1.0}]
    report.write_reports(rows, ["depth"], {"run": 1}, out)
    before = {name: (out / name).read_text() for name in os.listdir(out)}
    original_write_text = report.Path.write_text

    def fills_the_disk_on_the_second_file(self, text, *args, **kwargs):
        if self.name.startswith(report.SUMMARY_JSON):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return original_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(report.Path, "write_text", fills_the_disk_on_the_second_file)
    rows[0]["abs_rel"] = 0.25
    with pytest.raises(OSError, match="No space left on device"):
        report.write_reports(rows, ["depth"], {"run": 2}, out)
    assert {name: (out / name).read_text() for name in os.listdir(out)} == before
