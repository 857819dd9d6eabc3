"""Scene QA against a real local server speaking the OpenAI chat protocol."""

import json
import socket

import numpy as np
import pytest
from chat_server import chat_server
from colour_scene import ColourBackend, colour_scene
from PIL import Image
from plyfile import PlyData
from tiny_models import save_tiny_clip

from iggt.cli.main import main
from iggt.export.selection import to_uint8
from iggt.tasks.chat_client import ChatClient, EndpointError, png_bytes, text_part
from iggt.tasks.highlight import tint
from iggt.tasks.open_vocab import best_views
from iggt.tasks.qa import ground_by_text, needs_scene_table, parse_marks, parse_yes_no
from iggt.tasks.result import load_result

MODEL = "tiny-vl"
YES = {10, 22}  # the instances the scripted model says yes to


def tinted_instance(result, image: np.ndarray) -> int:
    """The instance whose masks are tinted red in ``image`` (a view of ``result``), checked exactly."""
    for view, original in enumerate(to_uint8(result.predictions.images)):
        changed = (image != original).any(-1)
        if image.shape != original.shape or not changed.any():
            continue
        ids, counts = np.unique(result.instances.labels[view][changed], return_counts=True)
        instance_id = int(ids[np.argmax(counts)])
        mask = result.instances.labels[view] == instance_id
        if np.array_equal(image, tint(result.predictions.images[view], mask)):
            redness = image[mask, 0].astype(int) - image[mask, 1:].mean(1)
            assert (redness > original[mask, 0] - original[mask, 1:].mean(1)).mean() > 0.9  # red tint on the mask
            return instance_id
    raise AssertionError("no view of the result matches the image with one instance tinted red")


def test_paper_mode_asks_per_instance_with_red_masks(synth_scene, tmp_path, monkeypatch, capsys):
    result = load_result(synth_scene.folder)
    asked = []

    def reply(request):
        assert request.body["model"] == MODEL
        assert request.headers["Authorization"] == "Bearer sk-test"
        assert request.images and "Answer yes or no" in request.text
        instance_ids = {tinted_instance(result, image) for image in request.images}
        assert len(instance_ids) == 1
        asked.append(instance_ids.pop())
        return 200, {"content": "Yes." if asked[-1] in YES else "No"}

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    out = tmp_path / "ask"
    with chat_server(reply) as server:
        argv = ["ask", str(synth_scene.folder), "where is the chair?", "--endpoint", server.url, "--model", MODEL]
        assert main([*argv, "--out", str(out)]) == 0
    assert sorted(asked) == result.instances.ids.tolist()  # every instance asked about once
    assert "Answer (paper): instances [10, 22]" in capsys.readouterr().out
    answer = json.loads((out / "answer.json").read_text())
    assert answer["instance_ids"] == [10, 22] and answer["mode"] == "paper" and answer["model"] == MODEL
    for number, request in enumerate(server.requests):  # what was sent is what was saved
        saved = json.loads((out / f"request_{number:03d}.json").read_text())
        assert saved["instance_id"] == asked[number] and saved["prompt"] == request.text
        assert saved["views"] == best_views(result, asked[number], 2)  # the default --views 2
        assert len(request.images) == len(saved["views"]) >= 1
        for name, image in zip(saved["images"], request.images, strict=True):
            np.testing.assert_array_equal(np.asarray(Image.open(out / name).convert("RGB")), image)
        assert (out / saved["answer_file"]).read_text() in ("Yes.", "No")
    assert not any("sk-test" in path.read_bytes().decode(errors="ignore") for path in out.rglob("*") if path.is_file())
    for view in range(result.num_views):
        shown = np.isin(result.instances.labels[view], list(YES)).any()
        assert (out / "views" / f"highlight_{view:03d}.png").exists() == shown
    assert set(PlyData.read(str(out / "points.ply"))["vertex"]["instance_id"]) == YES


def test_marks_mode_sends_numbered_views_and_the_scene_table(synth_scene, tmp_path, capsys):
    result = load_result(synth_scene.folder)

    def reply(request):
        assert "Objects of the scene" in request.text and "- object 10" in request.text  # a counting question
        assert "Distances between object centres: 1-3:" in request.text
        originals = to_uint8(result.predictions.images)
        assert all(not any(np.array_equal(image, o) for o in originals) for image in request.images)  # marks drawn
        return 200, {"content": "Objects 10 and 22, and 99."}

    out = tmp_path / "ask"
    with chat_server(reply) as server:
        argv = ["ask", str(synth_scene.folder), "how many chairs are there?", "--endpoint", server.url]
        assert main([*argv, "--model", MODEL, "--mode", "marks", "--out", str(out)]) == 0
    assert len(server.requests) == 1 and len(server.requests[0].images) == 2
    printed = capsys.readouterr().out
    assert "numbers that are no mark, ignored: [99]" in printed and "instances [10, 22]" in printed
    assert json.loads((out / "answer.json").read_text())["instance_ids"] == [10, 22]


@pytest.mark.parametrize(
    ("answer", "expected"), [("Yes.", True), ("yes, the second one", True), ("No", False), ("  NO!", False)]
)
def test_yes_no_answers(answer, expected):
    assert parse_yes_no(answer) is expected


@pytest.mark.parametrize("answer", ["", "Maybe", "Not sure", "I think so"])
def test_answers_that_are_neither_yes_nor_no(answer):
    with pytest.raises(EndpointError, match="the model's answer is neither yes nor no"):
        parse_yes_no(answer)


@pytest.mark.parametrize(
    ("answer", "named", "ignored"),
    [
        ("3 and 5", [3, 5], []),
        ("2, 9", [2], [9]),
        ("none", [], []),
        ("No objects.", [], []),
        ("5, 5 and 3.", [5, 3], []),
    ],
)
def test_mark_answers(answer, named, ignored):
    assert parse_marks(answer, [2, 3, 5]) == (named, ignored)


@pytest.mark.parametrize("answer", ["", "the chair", "3.5"])
def test_mark_answers_without_numbers(answer):
    with pytest.raises(EndpointError, match="the model's answer names no mark number"):
        parse_marks(answer, [2, 3])


def test_which_questions_get_the_scene_table():
    assert needs_scene_table("How many chairs are there?")
    assert needs_scene_table("Is the lamp left of the sofa?")
    assert not needs_scene_table("Where can I sit?")


def test_images_are_downscaled_to_the_stated_limit():
    large = Image.open(__import__("io").BytesIO(png_bytes(np.zeros((500, 1000, 3), np.uint8))))
    assert large.size == (768, 384)
    small = Image.open(__import__("io").BytesIO(png_bytes(np.zeros((30, 40, 3), np.float32))))
    assert small.size == (40, 30)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_refused_connection_is_one_line():
    client = ChatClient(closed_port_url(), MODEL, retries=1, backoff=0.01)
    with pytest.raises(
        EndpointError, match=r"cannot reach http://127.0.0.1:\d+/v1/chat/completions: connection refused"
    ):
        client.complete([text_part("hi")])


def test_a_server_that_sleeps_times_out():
    with chat_server(lambda request: (200, {"content": "late"}), delay=1.0) as server:
        client = ChatClient(server.url, MODEL, timeout=0.2, retries=0)
        with pytest.raises(EndpointError, match=r"no answer from .* within 0.2 s; raise --timeout"):
            client.complete([text_part("hi")])


def test_http_500_is_retried_then_reported():
    with chat_server(lambda request: (500, b'{"error": "boom"}')) as server:
        with pytest.raises(EndpointError, match=r"answered HTTP 500 Internal Server Error: '\{\"error\": \"boom\"\}'"):
            ChatClient(server.url, MODEL, retries=1, backoff=0.01).complete([text_part("hi")])
        assert len(server.requests) == 2


def test_a_failure_that_passes_is_retried():
    replies = iter([(503, b"busy"), (200, {"content": "fine"})])
    with chat_server(lambda request: next(replies)) as server:
        assert ChatClient(server.url, MODEL, retries=2, backoff=0.01).complete([text_part("hi")]) == "fine"
        assert len(server.requests) == 2


def test_http_401_names_the_key_and_is_not_retried():
    with chat_server(lambda request: (401, b"bad key")) as server:
        with pytest.raises(
            EndpointError, match=r"HTTP 401 Unauthorized: 'bad key'; check the API key \(--api-key-env\)"
        ):
            ChatClient(server.url, MODEL, retries=2, backoff=0.01).complete([text_part("hi")])
        assert len(server.requests) == 1


def test_bodies_that_are_not_a_completion():
    not_json = pytest.raises(EndpointError, match="answered with a body that is not JSON: '<html>oops</html>'")
    with chat_server(lambda request: (200, b"<html>oops</html>")) as server, not_json:
        ChatClient(server.url, MODEL).complete([text_part("hi")])
    no_content = pytest.raises(EndpointError, match=r"answered JSON without choices\[0\].message.content")
    with chat_server(lambda request: (200, b'{"result": 1}')) as server, no_content:
        ChatClient(server.url, MODEL).complete([text_part("hi")])


def test_cli_failures_are_one_line(synth_scene, tmp_path, capsys):
    folder = str(synth_scene.folder)
    assert main(["ask", folder, "q", "--endpoint", closed_port_url(), "--model", MODEL, "--retries", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("iggt ask: error: cannot reach http://127.0.0.1:") and error.count("\n") == 1
    assert main(["ask", folder, "q", "--endpoint", "http://127.0.0.1:1/v1"]) == 2
    assert "--endpoint needs --model" in capsys.readouterr().err
    # Neither endpoint nor backend: the shipped image-text model grounds the question, and says so.
    assert main(["ask", folder, "a chair", "--out", str(tmp_path / "ask")]) == 0
    assert "note: no --endpoint: grounded by the iggt-text backend's text query" in capsys.readouterr().out


@pytest.fixture(scope="module")
def colour_result(tmp_path_factory):
    return load_result(colour_scene(tmp_path_factory.mktemp("colour") / "result"))


def test_without_an_endpoint_the_text_query_grounds_and_says_so(colour_result, tmp_path, capsys):
    answer = ground_by_text(colour_result, ColourBackend(), "the blue one")
    assert answer.instance_ids == [2] and answer.mode == "text_query"
    assert answer.notes == ["no --endpoint: grounded by the colour backend's text query; no chat model was asked"]
    clip = save_tiny_clip(tmp_path / "clip")
    out = tmp_path / "ask"
    argv = ["ask", str(colour_result.folder), "a red chair", "--backend", "clip", "--backend-path", str(clip)]
    assert main([*argv, "--out", str(out)]) == 0
    assert "note: no --endpoint: grounded by the clip backend's text query" in capsys.readouterr().out
    assert json.loads((out / "answer.json").read_text())["mode"] == "text_query"
    assert not list((out / "images").iterdir())  # nothing was sent
