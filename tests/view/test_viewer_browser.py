"""End to end in headless Chromium: two tabs run the example and an upload at once, then one
result is explored: picking in 3D, the instance list, input views, a text query, colour modes,
the confidence cut and a download; a bad upload gives a message in the page.

One browser and one server are shared by the module (the runs are the slow part). Screenshots
are kept in the module's pytest tmp folder (``screenshots``), the path is printed.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from browser import launch
from PIL import Image

from conftest import EXAMPLE_SCENE, running_server
from iggt.io.images import views_to_keep
from iggt.structures import Instances
from iggt.tasks.backends import load_backend
from iggt.tasks.open_vocab import query
from iggt.tasks.qa import ground_by_text
from iggt.tasks.result import load_result
from iggt.tasks.tracking import track_instance

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright (pip install -e .[view])"
)
RUN_TIMEOUT_MS = 240_000
MAX_FRAMES = 4
"""Page runs use 4 of the example's 8 views (as `iggt serve --max-frames 4`): half the test's time."""
UPLOADED = sorted((EXAMPLE_SCENE / "images").iterdir())[:2]
BACKGROUND = np.array([13, 13, 15])


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"viewer screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("work"), [], example=EXAMPLE_SCENE, max_frames=MAX_FRAMES) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("profile"))
        yield context
        context.close()


@pytest.fixture(scope="module")
def tabs(server, browser, screenshots):
    """Tab A runs the example while tab B uploads two of its images and runs them; both finish."""
    example, upload = browser.new_page(), browser.new_page()
    errors = []
    for page in (example, upload):
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url)
        page.wait_for_selector("body[data-loaded='1']")
    example.click("#run-example")
    upload.set_input_files("#upload-input", [str(path) for path in UPLOADED])
    upload.click("#run-upload")
    example.wait_for_function("document.querySelector('#job-status').textContent.startsWith('running')")
    for page in (example, upload):
        page.wait_for_selector("body[data-job='done']", timeout=RUN_TIMEOUT_MS)
        page.wait_for_selector("body[data-ready]:not([data-ready=''])")
    example.screenshot(path=screenshots / "example_rgb.png")
    upload.screenshot(path=screenshots / "upload_rgb.png")
    assert errors == []
    return example, upload


def page_state(page) -> dict:
    return page.evaluate(
        "({id: iggtViewer.state.resultId, views: iggtViewer.state.meta.views.map(v => v.name),"
        " selected: iggtViewer.state.selected})"
    )


def folder_of(server, page):
    return server.app.library.entry(page_state(page)["id"]).folder


def test_two_tabs_running_at_once_keep_their_own_results(server, tabs):
    example, upload = tabs
    a, b = page_state(example), page_state(upload)
    assert a["id"] != b["id"]
    names = [path.name for path in sorted((EXAMPLE_SCENE / "images").iterdir())]
    assert a["views"] == [names[i] for i in views_to_keep(len(names), MAX_FRAMES)[0]]
    assert b["views"] == [f"{index:03d}_{path.stem}.png" for index, path in enumerate(UPLOADED)]
    for page, count in ((example, len(a["views"])), (upload, 2)):
        summary = json.loads((folder_of(server, page) / "reconstruction.json").read_text())
        assert summary["num_views"] == count
        assert page.locator("figure").count() == count


def check_selection_matches_files(page, folder, instance_id):
    """Highlighted pixels per view, the list's views and the per-view states agree with the files."""
    page.wait_for_selector(f"body[data-track='{instance_id}']")
    result = load_result(folder)
    row = result.check_instance(instance_id)
    counts = Instances.load(folder / "instances.npz").pixel_counts[row]
    figures = page.locator("figure")
    shown = [int(figures.nth(i).get_attribute("data-highlight-pixels")) for i in range(figures.count())]
    assert shown == counts.tolist()
    listed = page.get_attribute(f"#instance-table tr[data-id='{instance_id}']", "data-views")
    assert listed == ",".join(map(str, np.flatnonzero(counts > 0)))
    assert page.get_attribute(f"#instance-table tr[data-id='{instance_id}']", "class") == "selected"
    track = track_instance(result, instance_id)
    states = [figures.nth(i).get_attribute("data-state") for i in range(figures.count())]
    assert states == [state.value for state in track.states()]
    assert page.evaluate("iggtViewer.renderer.boxCount") == 24  # the 12 edges of its oriented box


# A CPU z-buffer of the drawn points (same projection, the picking pass's square sprites: at least
# 3 pixels, each covering the pixels whose centres lie within half its size), independent of the
# GPU's ID framebuffer: a pixel whose whole neighbourhood shows one instance must pick that instance.
# Sprites larger than the GPU's would fill gaps the picking pass leaves where points are sparse.
FIND_TARGET = """() => {
  const r = iggtViewer.renderer, s = iggtViewer.state, meta = s.meta, n = meta.num_points;
  const off = Object.fromEntries(meta.layout.map(e => [e.name, e.offset]));
  const xyz = new Float32Array(s.points, off.xyz, 3 * n), ids = new Uint32Array(s.points, off.instance_id, n);
  const rect = r.canvas.getBoundingClientRect(), w = Math.round(rect.width), h = Math.round(rect.height);
  const depth = new Float32Array(w * h).fill(Infinity), owner = new Uint32Array(w * h);
  const half = Math.max(r.pointSize, 3) / 2;
  for (let i = 0; i < n; i++) {
    const p = r.project([xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]]);
    if (!p || p[2] < -1 || p[2] > 1) continue;
    const x0 = Math.ceil(p[0] - half - 0.5), x1 = Math.floor(p[0] + half - 0.5);
    const y0 = Math.ceil(p[1] - half - 0.5), y1 = Math.floor(p[1] + half - 0.5);
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
      if (x < 0 || y < 0 || x >= w || y >= h || p[2] >= depth[y * w + x]) continue;
      depth[y * w + x] = p[2]; owner[y * w + x] = ids[i];
    }
  }
  const size = {}, spot = {};
  for (let y = 8; y < h - 8; y += 4) for (let x = 8; x < w - 8; x += 4) {
    const id = owner[y * w + x];
    if (!id) continue;
    let same = true;
    for (let dy = -6; dy <= 6 && same; dy++) for (let dx = -6; dx <= 6; dx++) {
      if (owner[(y + dy) * w + x + dx] !== id) { same = false; break; }
    }
    if (same) { size[id] = (size[id] || 0) + 1; spot[id] = [x + 0.5, y + 0.5]; }
  }
  const best = Object.keys(size).sort((a, b) => size[b] - size[a]);
  return best.map(id => ({id: Number(id), x: spot[id][0], y: spot[id][1]}));
}"""


def test_clicking_an_instance_in_3d_highlights_it_everywhere(server, tabs, screenshots):
    page = tabs[0]
    targets = page.evaluate(FIND_TARGET)
    assert len(targets) >= 3, "the example should show several instances unambiguously"
    target = targets[1]  # not the largest (a wall or the floor): a piece of furniture, likely
    box = page.locator("#scene").bounding_box()
    page.mouse.click(box["x"] + target["x"], box["y"] + target["y"])
    check_selection_matches_files(page, folder_of(server, page), target["id"])
    assert page_state(page)["selected"] == target["id"]
    page.screenshot(path=screenshots / "picked_in_3d.png")


def test_the_list_and_the_input_views_select_too(server, tabs, screenshots):
    page = tabs[0]
    folder = folder_of(server, page)
    instances = Instances.load(folder / "instances.npz")
    smallest = int(instances.ids[np.argmin(instances.pixel_counts.sum(1))])
    page.click(f"#instance-table tr[data-id='{smallest}']")
    check_selection_matches_files(page, folder, smallest)
    # a pixel of view 0's largest instance other than the one selected, clicked on the view's canvas
    shown = np.where(instances.ids == smallest, -1, instances.pixel_counts[:, 0])
    wanted = int(instances.ids[np.argmax(shown)])
    rows, columns = np.nonzero(instances.labels[0] == wanted)
    pixel = len(rows) // 2
    canvas = page.locator("figure[data-view='0'] canvas")
    box = canvas.bounding_box()
    height, width = instances.labels.shape[1:]
    canvas.click(
        position={"x": (columns[pixel] + 0.5) * box["width"] / width, "y": (rows[pixel] + 0.5) * box["height"] / height}
    )
    check_selection_matches_files(page, folder, wanted)
    page.screenshot(path=screenshots / "picked_in_view.png")


@pytest.mark.parametrize("text", ["a photo of a table.", "a photo of a cabinet."])
def test_a_text_query_with_the_shipped_backend_selects_the_best_match(server, tabs, screenshots, text):
    page = tabs[0]
    page.evaluate("delete document.body.dataset.query")
    page.fill("#query-text", text)
    page.press("#query-text", "Enter")
    page.wait_for_selector("body[data-query]", timeout=60_000)
    folder = folder_of(server, page)
    expected = query(load_result(folder), load_backend(), text)
    assert int(page.get_attribute("body", "data-query")) == expected[0][0]
    rows = page.locator("#instance-table tbody tr")
    assert [int(rows.nth(i).get_attribute("data-id")) for i in range(rows.count())] == [i for i, _ in expected]
    check_selection_matches_files(page, folder, expected[0][0])
    page.screenshot(path=screenshots / f"text_query_{text.split()[-1].strip('.')}.png")


def canvas_pixels(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator("#scene").screenshot())).convert("RGB")).astype(int)


def test_colour_modes_and_the_confidence_cut_change_the_drawing(tabs, screenshots):
    page = tabs[1]
    page.click("#instance-table tbody tr >> nth=0")
    page.click("#scene", position={"x": 2, "y": 2})  # empty corner: a click on nothing clears the selection
    page.wait_for_function("iggtViewer.state.selected === 0")
    images = []
    for mode in ("0", "1", "2"):
        page.select_option("#colour-mode", mode)
        page.wait_for_timeout(150)
        images.append(canvas_pixels(page))
        Image.fromarray(images[-1].astype(np.uint8)).save(screenshots / f"upload_mode_{mode}.png")
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(images[a] - images[b]).sum(-1).astype(bool).mean() > 0.05, (a, b)
    drawn = (np.abs(images[0] - BACKGROUND).sum(-1) > 12).mean()
    page.fill("#confidence", "90")
    page.wait_for_timeout(150)
    cut = (np.abs(canvas_pixels(page) - BACKGROUND).sum(-1) > 12).mean()
    assert drawn > 0.1 and cut < 0.6 * drawn
    page.fill("#confidence", "0")


def test_a_download_reads_back_as_the_saved_export(server, tabs, tmp_path):
    page = tabs[0]
    with page.expect_download() as download:
        page.click("#downloads a[data-name='instances.npz']")
    download.value.save_as(tmp_path / "instances.npz")
    folder = folder_of(server, page)
    saved, downloaded = Instances.load(folder / "instances.npz"), Instances.load(tmp_path / "instances.npz")
    np.testing.assert_array_equal(downloaded.labels, saved.labels)
    np.testing.assert_array_equal(downloaded.pixel_counts, saved.pixel_counts)
    with page.expect_download() as download:
        page.click("#downloads a[data-name='masks']")
    assert download.value.suggested_filename == "masks.zip"


def test_a_bad_upload_shows_a_message_and_the_page_keeps_working(server, tabs, screenshots):
    page = tabs[1]
    page.set_input_files("#upload-input", [{"name": "notes.png", "mimeType": "image/png", "buffer": b"just text"}])
    page.click("#run-upload")
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert message.inner_text() == (
        "upload 'notes.png': the file is not an image (PNG, JPEG, WebP, BMP, TIFF) or a video (MP4/MOV, MKV/WebM, "
        "AVI) by its content"
    )
    page.screenshot(path=screenshots / "bad_upload.png")
    page.select_option("#result-select", page_state(tabs[0])["id"])
    page.wait_for_selector(f"body[data-ready='{page_state(tabs[0])['id']}']")


def test_a_question_without_an_endpoint_is_grounded_like_iggt_ask(server, tabs):
    page, question = tabs[0], "where is the cabinet?"
    page.fill("#ask-text", question)
    page.press("#ask-text", "Enter")
    page.wait_for_function("document.querySelector('#answer').textContent.startsWith('answer (text_query)')")
    expected = ground_by_text(load_result(folder_of(server, page)), load_backend(), question)
    assert page.inner_text("#answer").startswith(f"answer (text_query): instances {expected.instance_ids[0]}.")
    check_selection_matches_files(page, folder_of(server, page), expected.instance_ids[0])
