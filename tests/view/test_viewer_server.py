"""The viewer's HTTP API against a real server on 127.0.0.1: results, uploads, hostile names, errors."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import running_server
from iggt.io.images import load_images
from iggt.structures import Instances
from iggt.tasks.open_vocab import InstanceLabel
from iggt.tasks.open_vocab_output import SEGMENT_FOLDER, write_segmentation
from iggt.tasks.output import write_output_folder
from iggt.tasks.result import load_result
from iggt.view.app import ViewerApp, ViewerConfig
from iggt.view.jobs import JobSettings
from iggt.view.library import MAX_LOADED_RESULTS, ResultLibrary
from iggt.view.scene_buffers import build_display
from iggt.view.server import start_server, static_files, stop_server
from iggt.view.uploads import UploadLimits

REPO = Path(__file__).resolve().parents[2]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def call(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON or raw bytes) of one request."""
    headers = {"X-IGGT-Page": "1", **(headers or {})}
    request = urllib.request.Request(server.url.rstrip("/") + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            status, data, kind = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        status, data, kind = error.code, error.read(), error.headers["Content-Type"]
    return status, json.loads(data) if kind == "application/json" else data


def new_batch(server) -> str:
    return call(server, "POST", "/api/uploads", b"{}")[1]["batch"]


@pytest.fixture(scope="module")
def server(planar, tmp_path_factory):
    limits = UploadLimits(max_file_bytes=4096, max_files=3, max_total_bytes=10_000)
    with running_server(tmp_path_factory.mktemp("work"), [planar], limits) as running:
        yield running


def result_id(server) -> str:
    return call(server, "GET", "/api/results")[1][0]["id"]


def test_server_binds_this_machine_and_serves_only_its_own_page(server):
    assert server.url.startswith("http://127.0.0.1:")
    status, page = call(server, "GET", "/")
    assert status == 200 and b"/static/app.js" in page
    for name, (content, _) in static_files().items():
        assert not re.search(rb"https?://", content), f"{name} refers to another host; the page must work offline"
    assert call(server, "GET", "/static/../server.py")[0] == 404


def test_scene_points_and_labels_match_the_export_folder(server, planar):
    result = load_result(planar)
    rid = result_id(server)
    status, meta = call(server, "GET", f"/api/results/{rid}/scene")
    assert status == 200
    pixels = int(np.prod(result.predictions.depth.shape))
    assert meta["num_points"] == meta["num_pixels"] == pixels  # small scene: nothing decimated
    assert [row["id"] for row in meta["instances"]] == result.instances.ids.tolist()
    assert [row["pixels"] for row in meta["instances"]] == result.instances.pixel_counts.sum(1).tolist()
    points = call(server, "GET", f"/api/results/{rid}/points.bin")[1]
    assert len(points) == 23 * pixels
    offsets = {entry["name"]: entry["offset"] for entry in meta["layout"]}
    xyz = np.frombuffer(points, "<f4", pixels * 3, offsets["xyz"]).reshape(-1, 3)
    ids = np.frombuffer(points, "<u4", pixels, offsets["instance_id"])
    np.testing.assert_array_equal(xyz, result.predictions.world_points.reshape(-1, 3))  # same bytes, same order
    np.testing.assert_array_equal(ids, result.instances.labels.reshape(-1))
    images = np.frombuffer(call(server, "GET", f"/api/results/{rid}/images.bin")[1], np.uint8)
    np.testing.assert_array_equal(
        images.reshape(result.predictions.images.shape), np.round(result.predictions.images * 255)
    )
    labels = np.frombuffer(call(server, "GET", f"/api/results/{rid}/labels.bin")[1], "<u4")
    np.testing.assert_array_equal(labels.reshape(result.instances.labels.shape), result.instances.labels)


def test_display_decimation_leaves_the_export_alone(planar):
    before = (planar / "points.ply").read_bytes()
    display = build_display(load_result(planar), max_points=100)
    assert display.meta["num_points"] == 100 and len(display.points) == 2300
    assert display.meta["num_pixels"] == 3 * 32 * 48
    assert (planar / "points.ply").read_bytes() == before


def test_downloads_are_the_files_and_folders_of_the_result(server, planar):
    rid = result_id(server)
    names = {row["name"]: row["kind"] for row in call(server, "GET", f"/api/results/{rid}/exports")[1]}
    assert names == {
        "instances.json": "file",
        "instances.npz": "file",
        "masks": "folder",
        "points.ply": "file",
        "predictions.npz": "file",
    }
    assert (
        call(server, "GET", f"/api/results/{rid}/download/instances.json")[1]
        == (planar / "instances.json").read_bytes()
    )
    archive = zipfile.ZipFile(io.BytesIO(call(server, "GET", f"/api/results/{rid}/download/masks")[1]))
    assert sorted(archive.namelist()) == sorted(f"masks/{p.name}" for p in (planar / "masks").iterdir())
    for hostile in ("%2E%2E", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
        status, reply = call(server, "GET", f"/api/results/{rid}/download/{hostile}")
        assert status == 400 and "has no export" in reply["error"]


def test_track_gives_every_view_a_state(server, planar):
    rid = result_id(server)
    status, track = call(server, "GET", f"/api/results/{rid}/track/{load_result(planar).instances.ids[0]}")
    assert status == 200 and [view["view"] for view in track["views"]] == [0, 1, 2]
    assert {view["state"] for view in track["views"]} <= {"visible", "occluded", "out_of_frame"}
    status, reply = call(server, "GET", f"/api/results/{rid}/track/999")
    assert status == 400 and "no instance with ID 999" in reply["error"]


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../evil.png", "000_evil.png"),
        ("..%5C..%5Cevil.png", "000_evil.png"),
        ("a%00b.png", "000_ab.png"),
        ("%2Fetc%2Fcron.d%2Fjob", "000_job.png"),
        ("..", "000_upload.png"),
        ("x" * 3000, "000_" + "x" * 64 + ".png"),
    ],
)
def test_hostile_upload_names_stay_inside_the_batch_folder(server, name, stored):
    batch = new_batch(server)
    status, reply = call(server, "POST", f"/api/uploads/{batch}?name={name}", png_bytes())
    assert status == 200 and reply["stored"] == stored
    work = server.app.config.work_dir
    files = [p for p in work.rglob("*") if p.is_file() and p.suffix == ".png"]
    assert all(p.parent.parent == work / "uploads" for p in files)
    assert (work / "uploads" / batch / stored).read_bytes() == png_bytes()


def test_bad_uploads_get_a_message_and_the_server_lives_on(server):
    batch = new_batch(server)
    status, reply = call(server, "POST", f"/api/uploads/{batch}?name=photo.png", b"<html>not an image</html>")
    assert status == 400 and reply["error"].startswith("upload 'photo.png': the file is not an image")
    status, reply = call(server, "POST", f"/api/uploads/{batch}?name=empty.png", b"")
    assert status == 400 and "'empty.png' is empty" in reply["error"]
    status, reply = call(server, "POST", "/api/uploads/0123456789abcdef?name=a.png", png_bytes())
    assert status == 400 and "no upload '0123456789abcdef'" in reply["error"]
    for index in range(3):
        assert call(server, "POST", f"/api/uploads/{batch}?name={index}.png", png_bytes())[0] == 200
    status, reply = call(server, "POST", f"/api/uploads/{batch}?name=3.png", png_bytes())
    assert status == 400 and "would be file 4; at most 3" in reply["error"]
    assert call(server, "GET", "/api/results")[0] == 200


def test_an_oversized_upload_is_refused_before_its_body_is_read(server):
    batch = new_batch(server)
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.putrequest("POST", f"/api/uploads/{batch}?name=huge.png")
    connection.putheader("X-IGGT-Page", "1")
    connection.putheader("Content-Length", str(50 * 2**20))  # 50 MiB announced, 16 bytes sent
    connection.endheaders(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8)
    response = connection.getresponse()
    reply = json.loads(response.read())
    assert response.status == 400 and "'huge.png' is 50.0 MiB; the limit is 4096 bytes per file" in reply["error"]
    assert response.getheader("Connection") == "close"
    connection.close()
    assert not list((server.app.config.work_dir / "uploads" / batch).iterdir())


def test_request_errors_name_the_fix(server):
    rid = result_id(server)
    status, reply = call(server, "POST", f"/api/results/{rid}/query", b'{"text": "  "}')
    assert status == 400 and "needs a non-empty text field 'text'" in reply["error"]
    status, reply = call(server, "POST", f"/api/results/{rid}/query", b"[1, 2")
    assert status == 400 and "not a JSON object" in reply["error"]
    status, reply = call(server, "POST", "/api/jobs", b'{"source": "camera"}')
    assert status == 400 and "unknown source 'camera'" in reply["error"]
    status, reply = call(server, "POST", "/api/jobs", b'{"source": "example"}')
    assert status == 400 and "no example scene" in reply["error"]
    status, reply = call(server, "GET", "/api/results/abcdefabcdef/scene")
    assert status == 400 and "no result 'abcdefabcdef'" in reply["error"]
    assert call(server, "GET", "/api/nothing")[0] == 404


def test_a_broken_upload_fails_its_run_with_a_message(server):
    batch = new_batch(server)
    corrupt = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200  # a PNG signature, then nothing an image reader accepts
    assert call(server, "POST", f"/api/uploads/{batch}?name=broken.png", corrupt)[0] == 200
    job = call(server, "POST", "/api/jobs", json.dumps({"source": "upload", "batch": batch}).encode())[1]
    deadline = time.monotonic() + 60
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = call(server, "GET", f"/api/jobs/{job['job']}")[1]
    assert job["state"] == "failed" and "broken.png" in job["error"]
    assert call(server, "GET", "/api/results")[0] == 200


def test_showing_a_result_never_imports_the_model(planar):
    script = (
        "import sys; from iggt.view.library import ResultLibrary; from iggt.tasks.tracking import track_instance\n"
        f"library = ResultLibrary(); rid = library.add({str(planar)!r}, prepare=False); library.display(rid)\n"
        "track_instance(library.result(rid), int(library.result(rid).instances.ids[0]))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('iggt.model', 'iggt.inference'))))"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"


def test_library_refuses_a_folder_that_is_no_result(tmp_path):
    with pytest.raises(Exception, match="has no predictions.npz or instances.npz"):
        ResultLibrary().add(tmp_path)


# Starts a command as a shell starts a background job: SIGINT ignored (and here also blocked),
# which the exec'd process inherits.
AS_BACKGROUND_JOB = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}); os.execv(sys.executable, sys.argv[1:])"
)


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cli_serve_prints_its_address_and_stops_cleanly(planar, tmp_path, stop, code):
    serve_then_stop(planar, tmp_path, stop, code, launcher=[])


def test_cli_serve_stops_on_ctrl_c_when_started_as_a_background_job(planar, tmp_path):
    serve_then_stop(planar, tmp_path, signal.SIGINT, 130, launcher=[sys.executable, "-c", AS_BACKGROUND_JOB])


def serve_then_stop(planar, tmp_path, stop, code, launcher):
    environment = {**os.environ, "TMPDIR": str(tmp_path)}  # where its upload folder goes
    process = subprocess.Popen(
        [*launcher, sys.executable, "-m", "iggt.cli.main", "serve", str(planar), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        with urllib.request.urlopen(url + "api/results") as response:
            assert [row["name"] for row in json.loads(response.read())] == [planar.name]
        assert [p.name.startswith("iggt-serve-") for p in tmp_path.iterdir()] == [True]
        process.send_signal(stop)
        assert process.wait(timeout=20) == code
        assert "stopped" in process.stdout.read()
    finally:
        process.kill() if process.poll() is None else None
    assert list(tmp_path.iterdir()) == []  # the work folder is gone
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "api/results", timeout=2)


def test_cli_serve_refuses_bad_options(planar):
    output = subprocess.run(
        [sys.executable, "-m", "iggt.cli.main", "serve", "--port", "70000"], capture_output=True, text=True
    )
    assert output.returncode == 2
    assert output.stderr.strip() == "iggt serve: error: --port 70000 is not a port; use 0..65535 (0 picks a free one)"


def test_saved_instances_round_trip_through_the_download(server, planar, tmp_path):
    rid = result_id(server)
    (tmp_path / "instances.npz").write_bytes(call(server, "GET", f"/api/results/{rid}/download/instances.npz")[1])
    np.testing.assert_array_equal(
        Instances.load(tmp_path / "instances.npz").labels, load_result(planar).instances.labels
    )


def test_results_dir_lists_earlier_runs_and_skips_other_folders(planar, tmp_path):
    shutil.copytree(planar, tmp_path / "earlier")
    (tmp_path / "notes").mkdir()
    library = ResultLibrary()
    ids = library.add_children(tmp_path)
    assert [row["name"] for row in library.listing()] == ["earlier"] and len(ids) == 1
    assert library.add(tmp_path / "earlier") == ids[0]  # the same folder keeps its ID


def test_instance_list_shows_the_labels_of_iggt_segment(planar, tmp_path):
    folder = shutil.copytree(planar, tmp_path / "labelled")
    result = load_result(folder)
    vocabulary = ["left", "right"]
    labels = [
        InstanceLabel(int(i), vocabulary[int(i) % 2], int(i) % 2 + 1, 0.5, [(vocabulary[int(i) % 2], 0.5)])
        for i in result.instances.ids
    ]
    write_output_folder(
        result, folder / SEGMENT_FOLDER, lambda out: write_segmentation(result, labels, vocabulary, {}, out)
    )
    library = ResultLibrary()
    rid = library.add(folder)
    rows = library.display(rid).meta["instances"]
    assert {row["id"]: row["label"] for row in rows} == {label.instance_id: label.label for label in labels}


def test_only_the_most_recently_used_results_stay_in_memory(planar, tmp_path):
    library = ResultLibrary()
    ids = [
        library.add(shutil.copytree(planar, tmp_path / f"copy{i}"), prepare=False)
        for i in range(MAX_LOADED_RESULTS + 1)
    ]
    assert library.entry(ids[0]).result is None  # dropped when the last one came in
    assert all(library.entry(i).result is not None for i in ids[1:])
    np.testing.assert_array_equal(library.result(ids[0]).instances.labels, load_result(planar).instances.labels)
    assert library.entry(ids[1]).result is None  # now the least recently used


def test_other_sites_cannot_post_or_rebind_a_name_to_the_server(server):
    status, reply = call(server, "POST", "/api/jobs", b'{"source": "example"}', {"X-IGGT-Page": "0"})
    assert status == 403 and reply["error"] == "POST requests need the X-IGGT-Page header the page sends"
    status, reply = call(server, "GET", "/api/results", headers={"Host": f"evil.example:{server.server_address[1]}"})
    assert status == 403 and reply["error"] == "this server answers to 127.0.0.1 or localhost, not 'evil.example'"
    assert call(server, "GET", "/api/results", headers={"Host": f"localhost:{server.server_address[1]}"})[0] == 200


@pytest.mark.parametrize(
    ("name", "codec", "suffix"), [("holiday.MOV", "libx264", ".mp4"), ("clip.webm", "libvpx", ".mkv")]
)
def test_an_uploaded_video_is_stored_for_the_reader_whatever_its_name(server, tmp_path, name, codec, suffix):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    path = tmp_path / f"source{'.mp4' if suffix == '.mp4' else '.webm'}"
    with imageio.get_writer(str(path), fps=5, format="FFMPEG", codec=codec, macro_block_size=16) as writer:
        for index in range(4):
            writer.append_data(np.full((32, 32, 3), 60 * index, np.uint8))
    batch = new_batch(server)
    status, reply = call(server, "POST", f"/api/uploads/{batch}?name={name}", path.read_bytes())
    assert status == 200 and reply["stored"] == f"000_{name.rsplit('.', 1)[0]}{suffix}"
    stored = server.app.uploads.get(batch).inputs()
    loaded = load_images(stored[0], fps=5)  # what a run from the page reads
    assert loaded.num_views == 4


def test_an_upload_cut_short_is_refused_not_stored(server):
    batch = new_batch(server)
    body = png_bytes()
    with socket.create_connection(server.server_address[:2], timeout=10) as connection:
        head = (
            f"POST /api/uploads/{batch}?name=cut.png HTTP/1.1\r\nHost: 127.0.0.1\r\nX-IGGT-Page: 1\r\n"
            f"Content-Length: {len(body) + 500}\r\n\r\n"
        )
        connection.sendall(head.encode() + body)
        connection.shutdown(socket.SHUT_WR)  # the client goes away 500 bytes early
        reply = connection.makefile("rb").read().decode(errors="replace")
    assert reply.startswith("HTTP/1.1 400")
    assert f"upload 'cut.png' ended after {len(body)} of {len(body) + 500} bytes" in reply
    assert not list((server.app.config.work_dir / "uploads" / batch).iterdir())


def test_a_question_goes_to_the_configured_chat_endpoint(planar, tmp_path):
    from tasks.chat_server import chat_server  # the QA tests' local OpenAI-compatible server

    def reply(request):  # yes to every other instance, in the order they are asked about
        return 200, {"content": "yes" if len(answers.requests) % 2 == 1 else "no"}

    with chat_server(reply) as answers:
        config = ViewerConfig(
            work_dir=tmp_path,
            results_dir=tmp_path / "results",
            jobs=JobSettings("iggt-small", "cpu"),
            endpoint=answers.url,
            chat_model="test-model",
        )
        app = ViewerApp(config)
        rid = app.library.add(planar, prepare=False)
        server = start_server(app)
        try:
            status, reply_json = call(server, "POST", f"/api/results/{rid}/ask", b'{"question": "which squares?"}')
        finally:
            stop_server(server)
    ids = load_result(planar).instances.ids.tolist()
    assert status == 200 and reply_json["mode"] == "paper"
    assert len(answers.requests) == len(ids) and all(r.body["model"] == "test-model" for r in answers.requests)
    assert reply_json["ids"] == ids[::2]
