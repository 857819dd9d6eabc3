"""Fetching the stereo pairs' sdists: over real HTTP from a PyPI-style index on 127.0.0.1."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_real_scenes import _write_sdist

from iggt.errors import InputError
from iggt.eval.real_scenes import SDIST_PAIRS, sdist_stereo_pair
from iggt.eval.sdist_fetch import fetch_sdist, main


@pytest.fixture
def index(tmp_path):
    """A PyPI-style simple index (PEP 691 JSON) serving every pair's stand-in archive: (base URL, files, digests)."""
    served = tmp_path / "served"
    served.mkdir()
    files = {
        pair.archive: _write_sdist(served, name, pair.disparity_right is not None).read_bytes()
        for name, pair in SDIST_PAIRS.items()
    }
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = self.path.strip("/").split("/")
            if parts[0] == "files" and parts[1] in files:
                body = files[parts[1]]
            elif len(parts) == 2 and self.headers["Accept"] == "application/vnd.pypi.simple.v1+json":
                pair = next((p for p in SDIST_PAIRS.values() if p.package == parts[1]), None)
                if pair is None:
                    self.send_error(404)
                    return
                host = f"http://127.0.0.1:{self.server.server_port}"
                entry = {"filename": pair.archive, "url": f"{host}/files/{pair.archive}"}
                body = json.dumps({"files": [{**entry, "hashes": {"sha256": digests[pair.archive]}}]}).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/simple", files, digests
    server.shutdown()
    server.server_close()


def test_fetched_archives_equal_the_index_files_and_give_the_pairs(index, tmp_path):
    url, files, _ = index
    folder = tmp_path / "sdists"
    assert main([str(folder), "--index", url]) == 0
    for name, pair in SDIST_PAIRS.items():
        assert (folder / pair.archive).read_bytes() == files[pair.archive]
        assert sdist_stereo_pair(name, folder).images.shape == (2, 48, 64, 3)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)  # no .part left


def test_an_archive_with_the_wrong_digest_is_never_kept(index, tmp_path):
    url, files, digests = index
    pair = SDIST_PAIRS["middlebury-cones"]
    digests[pair.archive] = "0" * 64  # the index now promises other bytes
    folder = tmp_path / "sdists"
    with pytest.raises(InputError, match=f"arrived with sha256 .*not the index's {'0' * 64}"):
        fetch_sdist(pair, folder, url)
    assert list(folder.iterdir()) == []


def test_a_present_archive_is_kept_only_when_its_digest_matches(index, tmp_path):
    url, files, _ = index
    pair = SDIST_PAIRS["middlebury-aloe"]
    folder = tmp_path / "sdists"
    folder.mkdir()
    (folder / pair.archive).write_bytes(b"a truncated download")
    fetch_sdist(pair, folder, url)
    assert (folder / pair.archive).read_bytes() == files[pair.archive]


def test_an_unreachable_index_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path), "--index", "http://127.0.0.1:9/simple"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: could not read http://127.0.0.1:9/simple/") and error.count("\n") == 1
