"""A minimal client of OpenAI-compatible chat endpoints (``POST {base}/chat/completions``), standard library only.

Messages carry content parts ``{"type": "text", "text": ...}`` and
``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``; images are PNG,
downscaled so that their longest side is at most ``MAX_IMAGE_SIDE`` pixels. Time-outs, refused
connections, HTTP 429 and 5xx are retried a bounded number of times with exponential backoff;
every failure ends in one :class:`EndpointError` line naming the URL and what to check.
Nothing is sent unless a caller builds a client with an endpoint.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
from PIL import Image

from iggt.errors import IGGTError
from iggt.tasks.backends.base import as_uint8

MAX_IMAGE_SIDE = 768
"""Longest side, in pixels, of an image sent to a model (many vision endpoints cut larger ones anyway)."""
RETRIED_STATUS = {429, 500, 502, 503, 504}


class EndpointError(IGGTError):
    """A chat endpoint that cannot be reached, fails, or answers something unusable."""


def png_bytes(image: np.ndarray, max_side: int = MAX_IMAGE_SIDE) -> bytes:
    """(H, W, 3) uint8 or float image -> PNG bytes, downscaled (never upscaled) to ``max_side``."""
    picture = Image.fromarray(as_uint8(image))
    scale = max_side / max(picture.size)
    if scale < 1:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def image_part(png: bytes) -> dict:
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}


@dataclass
class ChatClient:
    """Sends one user message at a time to ``{endpoint}/chat/completions`` and returns the reply text.

    Attributes:
        endpoint: base URL, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server expects.
        api_key: sent as ``Authorization: Bearer``; None sends no header.
        timeout: seconds to wait for each answer.
        retries: extra attempts after a time-out, refused connection, HTTP 429 or 5xx.
        backoff: seconds before the first retry, doubled for each next one.
    """

    endpoint: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    retries: int = 2
    backoff: float = 1.0
    max_tokens: int = 256

    @property
    def url(self) -> str:
        return self.endpoint.rstrip("/") + "/chat/completions"

    def request_body(self, content: list[dict]) -> dict:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }

    def complete(self, content: list[dict]) -> str:
        """The assistant's reply to one user message made of ``content`` parts."""
        data = json.dumps(self.request_body(content)).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            try:
                request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return self._reply_text(response.read())
            except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError and time-outs are OSErrors
                message, worth_retrying = self._describe(exc)
                if attempt >= self.retries or not worth_retrying:
                    raise EndpointError(message) from exc
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def _describe(self, exc: Exception) -> tuple[str, bool]:
        """(one-line message, whether retrying may help)."""
        if isinstance(exc, urllib.error.HTTPError):
            body = exc.read().decode(errors="replace").strip().replace("\n", " ")[:200]
            hint = "; check the API key (--api-key-env)" if exc.code in (401, 403) else ""
            return f"{self.url} answered HTTP {exc.code} {exc.reason}: {body!r}{hint}", exc.code in RETRIED_STATUS
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
            return f"no answer from {self.url} within {self.timeout:g} s; raise --timeout or check the server", True
        if isinstance(reason, ConnectionRefusedError):
            return f"cannot reach {self.url}: connection refused; is the server running at that address?", True
        if isinstance(reason, (ConnectionError, OSError)):
            return f"cannot reach {self.url}: {reason}; check --endpoint", True
        return f"request to {self.url} failed: {type(exc).__name__}: {exc}", False

    def _reply_text(self, body: bytes) -> str:
        try:
            reply = json.loads(body)
        except ValueError as exc:
            shown = body[:80].decode(errors="replace")
            raise EndpointError(f"{self.url} answered with a body that is not JSON: {shown!r}") from exc
        try:
            text = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise EndpointError(
                f"{self.url} answered JSON without choices[0].message.content: {str(reply)[:120]!r}"
            ) from exc
        if isinstance(text, list):  # some servers answer in content parts too
            text = "".join(part.get("text", "") for part in text if isinstance(part, dict))
        return str(text or "")
