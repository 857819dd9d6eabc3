"""Fetch the source archives that hold the real stereo pairs of :data:`real_scenes.SDIST_PAIRS`.

Run by the user, never at evaluation time: ``python -m iggt.eval.sdist_fetch DIR``. Each archive
comes from the package index's simple API in its JSON form (PEP 691, what pip reads: the file's URL
and sha256), is written to ``DIR/<archive>.part`` while it streams, and is renamed into place only
once its sha256 matches, so a folder never holds a partial or altered archive under the real name. ``pip download
--no-binary`` is not used: it builds each sdist's metadata, which needs the packages' build
tools (opencv-python's build dependencies fail without autotools).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from iggt.errors import InputError
from iggt.eval.real_scenes import SDIST_PAIRS, SdistStereoPair

PYPI_SIMPLE = "https://pypi.org/simple"
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _release_file(pair: SdistStereoPair, index: str) -> tuple[str, str]:
    """(URL, sha256) of the pair's sdist, as the index's project page lists it."""
    address = f"{index.rstrip('/')}/{pair.package}/"
    request = urllib.request.Request(address, headers={"Accept": _SIMPLE_JSON})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            project = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise InputError(f"could not read {address} ({error}); check the connection to the package index") from None
    for entry in project.get("files", []):
        if entry.get("filename") == pair.archive and "sha256" in entry.get("hashes", {}):
            return entry["url"], entry["hashes"]["sha256"]
    raise InputError(f"{address} lists no {pair.archive} with a sha256; the release may have been removed")


def fetch_sdist(pair: SdistStereoPair, folder: Path, index: str = PYPI_SIMPLE) -> Path:
    """``folder / pair.archive``, downloaded unless a file with the index's sha256 is already there."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    url, expected = _release_file(pair, index)
    target = folder / pair.archive
    if target.is_file() and _sha256(target) == expected:
        return target
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as file:
            for block in iter(lambda: response.read(_CHUNK), b""):
                digest.update(block)
                file.write(block)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise InputError(f"could not download {url} ({error}); run the command again") from None
    if digest.hexdigest() != expected:
        partial.unlink()
        raise InputError(f"{url} arrived with sha256 {digest.hexdigest()}, not the index's {expected}; run again")
    os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the sdists that hold the Aloe and Cones stereo pairs.")
    parser.add_argument("folder", type=Path, help="where the archives go (about 125 MB)")
    parser.add_argument("--index", default=PYPI_SIMPLE, help="base URL of a PyPI-style simple index (PEP 691 JSON)")
    args = parser.parse_args(argv)
    try:
        for pair in SDIST_PAIRS.values():
            print(fetch_sdist(pair, args.folder, args.index))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
