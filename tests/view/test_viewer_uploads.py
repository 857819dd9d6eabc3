"""Upload checks of the viewer, without HTTP: names, content sniffing, limits, storage."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from iggt.errors import InputError
from iggt.view.uploads import MAX_STEM_CHARS, UploadLimits, UploadStore, safe_stem, sniff


def image_bytes(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("photo.png", "photo"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system"),
        ("/absolute/path/to/shot.jpg", "shot"),
        ("..", "upload"),
        ("...png", "png"),
        (".hidden.png", "hidden"),
        ("a\x00b.png", "ab"),
        ("c:\x01\x1f name?*<>|.png", "c_name"),
        ("caf\u00e9 \u20ac.png", "cafe"),
        ("a..b.png", "a.b"),
        ("", "upload"),
    ],
)
def test_safe_stem_keeps_no_directory_dots_or_control_characters(name, stem):
    assert safe_stem(name) == stem


def test_safe_stem_cuts_very_long_names():
    stem = safe_stem("x" * 5000 + ".png")
    assert stem == "x" * MAX_STEM_CHARS


@pytest.mark.parametrize(
    ("kind", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("WEBP", ".webp")]
)
def test_sniff_reads_the_image_type_from_the_content(kind, suffix):
    assert sniff(image_bytes(kind)[:16]) == (suffix, "image")


def test_sniff_knows_videos_by_their_containers():
    assert sniff(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00")[1] == "video"
    assert sniff(b"\x1a\x45\xdf\xa3" + b"\x00" * 12) == (".mkv", "video")


def test_sniff_refuses_text_named_like_an_image():
    with pytest.raises(InputError, match="not an image .* or a video"):
        sniff(b"<html><script>")


def test_store_keeps_files_inside_the_batch_folder_under_the_sniffed_suffix(tmp_path):
    batch = UploadStore(tmp_path / "uploads", UploadLimits()).new_batch()
    jpeg = image_bytes("JPEG")
    first = batch.add("../../escape.png", jpeg)
    second = batch.add("../../escape.png", jpeg)
    assert first.parent == second.parent == batch.folder
    assert (first.name, second.name) == ("000_escape.jpg", "001_escape.jpg")  # content decides; no clash
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["000_escape.jpg", "001_escape.jpg"]
    assert batch.inputs() == [str(first), str(second)]


def test_store_limits_file_size_count_and_total(tmp_path):
    png = image_bytes("PNG")
    limits = UploadLimits(max_file_bytes=len(png) + 10, max_files=3, max_total_bytes=int(2.5 * len(png)))
    batch = UploadStore(tmp_path, limits).new_batch()
    with pytest.raises(
        InputError, match=f"'big.png' is {len(png) + 11} bytes; the limit is {len(png) + 10} bytes per file"
    ):
        batch.check_size("big.png", len(png) + 11)
    batch.add("a.png", png)
    batch.add("b.png", png)
    with pytest.raises(InputError, match="'c.png' would bring this upload past"):
        batch.add("c.png", png)
    small = UploadStore(tmp_path / "count", UploadLimits(max_files=1)).new_batch()
    small.add("a.png", png)
    with pytest.raises(InputError, match="would be file 2; at most 1 files per upload"):
        small.add("b.png", png)


def test_store_refuses_empty_missing_length_and_mixed_video(tmp_path):
    batch = UploadStore(tmp_path, UploadLimits()).new_batch()
    with pytest.raises(InputError, match="'e.png' is empty"):
        batch.add("e.png", b"")
    with pytest.raises(InputError, match="has no Content-Length"):
        batch.check_size("x.png", None)
    batch.add("a.png", image_bytes("PNG"))
    with pytest.raises(InputError, match="send one video alone, or images only"):
        batch.add("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    assert len(batch.files) == 1


def test_store_refuses_unknown_and_malformed_batch_ids(tmp_path):
    store = UploadStore(tmp_path, UploadLimits())
    for batch_id in ("0123456789abcdef", "../../etc", ""):
        with pytest.raises(InputError, match="no upload .* on this server"):
            store.get(batch_id)
    with pytest.raises(InputError, match="holds no files"):
        store.new_batch().inputs()
