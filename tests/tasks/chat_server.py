"""A real local HTTP server speaking the OpenAI chat-completions protocol, for the QA tests.

Runs in a thread on 127.0.0.1 at a free port. Each POST to /v1/chat/completions is parsed,
recorded (JSON body, headers, decoded images) and answered by ``reply(request)``, a function of
the test that returns (status, body); a dict body is sent as a chat completion whose message
content is the dict's "content", bytes are sent as they are.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


@dataclass
class ChatRequest:
    body: dict
    headers: dict
    images: list[np.ndarray]

    @property
    def text(self) -> str:
        return "".join(part["text"] for part in self.body["messages"][0]["content"] if part["type"] == "text")


@dataclass
class ChatServer:
    reply: Callable[[ChatRequest], tuple[int, dict | bytes]]
    delay: float = 0.0
    requests: list[ChatRequest] = field(default_factory=list)
    url: str = ""


def _decode_images(body: dict) -> list[np.ndarray]:
    images = []
    for part in body["messages"][0]["content"]:
        if part["type"] == "image_url":
            prefix, data = part["image_url"]["url"].split(",", 1)
            assert prefix == "data:image/png;base64"
            images.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")))
    return images


def _handler(state: ChatServer):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/v1/chat/completions":
                status, payload = 404, b"not found"
            else:
                request = ChatRequest(body, dict(self.headers), _decode_images(body))
                state.requests.append(request)
                status, payload = state.reply(request)
            time.sleep(state.delay)
            if isinstance(payload, dict):
                message = {"role": "assistant", "content": payload["content"]}
                payload = json.dumps(
                    {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}
                )
                payload = payload.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def log_message(self, *args):
            pass

    return Handler


@contextmanager
def chat_server(reply, delay: float = 0.0):
    state = ChatServer(reply, delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
