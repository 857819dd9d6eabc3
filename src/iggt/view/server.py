"""The HTTP side of the viewer: a threaded stdlib server on 127.0.0.1 that serves the page and the API.

Why the standard library and not an ASGI stack: the API is a dozen small routes plus two binary
downloads, one request per thread is plenty for one user's tabs, and it adds no dependency
(docs/viewer.md). Uploads are read straight from the socket after their size is checked, so an
oversized file is refused before a byte of it is stored.
"""

from __future__ import annotations

import re
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, quote, urlsplit

from iggt.errors import IGGTError, InputError
from iggt.view.app import Reply, ViewerApp

STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
UPLOAD_ROUTE = re.compile(r"^/api/uploads/(\w+)$")
PAGE_HEADER = "X-IGGT-Page"
"""Sent by our page with every POST. Another site's script cannot add it without a CORS preflight,
which this server never grants, so no other page open in the browser can start runs or upload."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's own files, shipped in iggt/view/static: name -> (bytes, content type)."""
    folder = resources.files("iggt.view") / "static"
    return {
        entry.name: (entry.read_bytes(), STATIC_TYPES[suffix])
        for entry in folder.iterdir()
        if (suffix := "." + entry.name.rsplit(".", 1)[-1]) in STATIC_TYPES
    }


class ViewerServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow download never holds up shutdown

    def __init__(self, address: tuple[str, int], app: ViewerApp, quiet: bool = True) -> None:
        self.app, self.quiet = app, quiet
        self.static = static_files()
        self.routes = [(method, re.compile(f"^{pattern}$"), handler) for method, pattern, handler in app.routes()]
        super().__init__(address, ViewerHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class ViewerHandler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format, *args) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            refusal = self._refusal(method)
            reply = refusal if refusal is not None else self._route(method, url.path, query)
        except IGGTError as exc:
            reply = Reply.json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except Exception as exc:  # one broken request must not end the server
            print(f"iggt serve: {method} {url.path} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            reply = Reply.json({"error": f"internal error ({type(exc).__name__}); see the server's output"}, 500)
        self._send(reply)

    def _refusal(self, method: str) -> Reply | None:
        """403 for a request that names another host while we listen on loopback (DNS rebinding), or
        a POST without the page's header (another site's form or script)."""
        try:
            host = urlsplit("//" + (self.headers.get("Host") or "")).hostname
        except ValueError:  # a malformed port
            host = None
        if self.server.server_address[0] in LOOPBACK_NAMES and host not in LOOPBACK_NAMES:
            self.close_connection = True
            return Reply.json({"error": f"this server answers to 127.0.0.1 or localhost, not {host!r}"}, 403)
        if method == "POST" and self.headers.get(PAGE_HEADER) != "1":
            self.close_connection = True
            return Reply.json({"error": f"POST requests need the {PAGE_HEADER} header the page sends"}, 403)
        return None

    def _route(self, method: str, path: str, query: dict) -> Reply:
        if method == "GET" and path in ("/", "/index.html"):
            return Reply(200, *self.server.static["index.html"])
        if method == "GET" and path == "/favicon.ico":
            return Reply(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        if method == "GET" and path.startswith("/static/"):
            name = path[len("/static/") :]
            if name not in self.server.static:
                return Reply.json({"error": f"no file {name!r}"}, HTTPStatus.NOT_FOUND)
            return Reply(200, *self.server.static[name])
        if method == "POST" and (match := UPLOAD_ROUTE.match(path)):
            return self._upload(match.group(1), query)
        for route_method, pattern, handler in self.server.routes:
            if route_method == method and (match := pattern.match(path)):
                return handler(*match.groups(), query, self._body())
        return Reply.json({"error": f"no route {method} {path}"}, HTTPStatus.NOT_FOUND)

    def _body(self, limit: int = 1 << 20) -> bytes:
        length = self._length()
        if length is None or length == 0:
            return b""
        if length > limit:
            self.close_connection = True
            raise InputError(f"the request body is {length} bytes; at most {limit} are accepted here")
        return self.rfile.read(length)

    def _length(self) -> int | None:
        value = self.headers.get("Content-Length")
        try:
            return None if value is None else int(value)
        except ValueError:
            raise InputError(f"Content-Length {value!r} is not a number") from None

    def _upload(self, batch_id: str, query: dict) -> Reply:
        name = query.get("name", [""])[0]
        batch = self.server.app.uploads.get(batch_id)
        try:
            batch.check_size(name, self._length())
        except InputError:
            self.close_connection = True  # the unread body must not be taken for the next request
            raise
        length = self._length()
        data = self.rfile.read(length)
        if len(data) != length:
            self.close_connection = True
            raise InputError(f"upload {name!r} ended after {len(data)} of {length} bytes; send it again")
        stored = batch.add(name, data)
        return Reply.json({"name": name, "stored": stored.name, "files": len(batch.files)})

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        if reply.filename:
            self.send_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(reply.filename)}")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)


def start_server(app: ViewerApp, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> ViewerServer:
    """A running server (its own thread); ``port`` 0 picks a free one. Stop it with :func:`stop_server`."""
    try:
        server = ViewerServer((host, port), app, quiet)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    threading.Thread(target=server.serve_forever, name="iggt-serve", daemon=True).start()
    return server


def stop_server(server: ViewerServer) -> None:
    server.shutdown()
    server.server_close()
