"""What the server answers: every API route as a method of :class:`ViewerApp`, free of HTTP details.

Each route takes the path's groups, the query and the body, and returns a :class:`Reply`; an
:class:`iggt.errors.IGGTError` becomes a 400 reply with its one-line message, which the page shows.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from iggt.errors import InputError
from iggt.view.jobs import JobRunner, JobSettings
from iggt.view.library import ResultLibrary, export_payload, exports, images_buffer, labels_buffer
from iggt.view.scene_buffers import DEFAULT_MAX_DISPLAY_POINTS
from iggt.view.uploads import UploadLimits, UploadStore

MAX_JSON_BYTES = 64 * 1024


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    filename: str | None = None

    @classmethod
    def json(cls, value, status: int = 200) -> Reply:
        return cls(status, json.dumps(value).encode())


@dataclass
class ViewerConfig:
    """Everything ``iggt serve`` decides."""

    work_dir: Path
    """Uploads go under work_dir/uploads."""
    results_dir: Path
    """Each run from the page writes its export folder here."""
    jobs: JobSettings
    """Model and compute options of the runs."""
    example_scene: Path | None = None
    """The shipped example scene folder; None: no "Run the example" button."""
    limits: UploadLimits = UploadLimits()
    max_display_points: int = DEFAULT_MAX_DISPLAY_POINTS
    """Most points drawn per result (display decimation only)."""
    backend: str | None = None
    """Image-text backend of text queries; None: the shipped default (iggt-text)."""
    backend_path: str | None = None
    endpoint: str | None = None
    """OpenAI-compatible chat endpoint for questions; None: questions are grounded by text."""
    chat_model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the endpoint's API key (optional)."""


class ViewerApp:
    def __init__(self, config: ViewerConfig) -> None:
        self.config = config
        self.library = ResultLibrary(config.max_display_points)
        self.uploads = UploadStore(config.work_dir / "uploads", config.limits)
        config.results_dir.mkdir(parents=True, exist_ok=True)
        self.jobs = JobRunner(config.jobs, config.results_dir, lambda folder: self.library.add(folder, "run"))
        self._backend = None
        self._backend_lock = threading.Lock()
        self._embeddings: dict[str, object] = {}  # result ID -> (K, D) instance embeddings of the backend

    def routes(self):
        """(method, path pattern, handler) matched in order by the server; file uploads
        (POST /api/uploads/<batch>) are read by the server itself, their size checked first."""
        return [
            ("GET", r"/api/config", self.get_config),
            ("GET", r"/api/results", self.get_results),
            ("GET", r"/api/results/(\w+)/scene", self.get_scene),
            ("GET", r"/api/results/(\w+)/points\.bin", self.get_points),
            ("GET", r"/api/results/(\w+)/labels\.bin", self.get_labels),
            ("GET", r"/api/results/(\w+)/images\.bin", self.get_images),
            ("GET", r"/api/results/(\w+)/track/(\d+)", self.get_track),
            ("GET", r"/api/results/(\w+)/exports", self.get_exports),
            ("GET", r"/api/results/(\w+)/download/([^/]+)", self.get_download),
            ("POST", r"/api/results/(\w+)/query", self.post_query),
            ("POST", r"/api/results/(\w+)/ask", self.post_ask),
            ("POST", r"/api/uploads", self.post_upload_batch),
            ("POST", r"/api/jobs", self.post_job),
            ("GET", r"/api/jobs/(\w+)", self.get_job),
        ]

    def get_config(self, query, body) -> Reply:
        from iggt.tasks.backends import DEFAULT_BACKEND

        limits = self.config.limits
        return Reply.json(
            {
                "example": self.config.example_scene is not None,
                "backend": self.config.backend or DEFAULT_BACKEND,
                "endpoint": bool(self.config.endpoint),
                "limits": {
                    "max_file_bytes": limits.max_file_bytes,
                    "max_files": limits.max_files,
                    "max_total_bytes": limits.max_total_bytes,
                },
            }
        )

    def get_results(self, query, body) -> Reply:
        return Reply.json(self.library.listing())

    def get_scene(self, result_id, query, body) -> Reply:
        return Reply.json({**self._display(result_id).meta, "id": result_id})

    def get_points(self, result_id, query, body) -> Reply:
        return Reply(200, self._display(result_id).points, "application/octet-stream")

    def _display(self, result_id: str):
        return self.library.display(result_id)

    def get_labels(self, result_id, query, body) -> Reply:
        return Reply(200, labels_buffer(self.library.result(result_id)), "application/octet-stream")

    def get_images(self, result_id, query, body) -> Reply:
        return Reply(200, images_buffer(self.library.result(result_id)), "application/octet-stream")

    def get_track(self, result_id, instance_id, query, body) -> Reply:
        from iggt.tasks.tracking import track_instance

        track = track_instance(self.library.result(result_id), int(instance_id))
        return Reply.json(track.to_json())

    def get_exports(self, result_id, query, body) -> Reply:
        return Reply.json(exports(self.library.result(result_id)))

    def get_download(self, result_id, name, query, body) -> Reply:
        filename, data = export_payload(self.library.result(result_id), unquote(name))
        kind = "application/zip" if filename.endswith(".zip") else "application/octet-stream"
        return Reply(200, data, kind, filename)

    def post_query(self, result_id, query, body) -> Reply:
        """As :func:`iggt.tasks.open_vocab.query`, with the instance embeddings kept for the next query."""
        from iggt.tasks.open_vocab import OpenVocabConfig, instance_embeddings, rank_instances

        text = _json_field(body, "text")
        result, backend = self.library.result(result_id), self.backend()
        with self._backend_lock:  # one caller of the backend at a time
            if result_id not in self._embeddings:
                self._embeddings[result_id] = instance_embeddings(result, backend, OpenVocabConfig())
            text_embedding = backend.encode_texts([text])[0]
        ranking = rank_instances(self._embeddings[result_id], result.instances.ids, text_embedding)
        return Reply.json({"text": text, "ranking": [{"id": i, "score": round(s, 4)} for i, s in ranking]})

    def post_ask(self, result_id, query, body) -> Reply:
        from iggt.tasks.open_vocab_output import saved_labels
        from iggt.tasks.qa import ask_paper, ground_by_text

        question = _json_field(body, "question")
        result = self.library.result(result_id)
        if self.config.endpoint:
            from iggt.tasks.chat_client import ChatClient

            config = self.config
            client = ChatClient(config.endpoint, config.chat_model, os.environ.get(config.api_key_env) or None)
            answer = ask_paper(client, result, question, saved_labels(result))
        else:
            answer = ground_by_text(result, self.backend(), question)
        return Reply.json(
            {"question": question, "mode": answer.mode, "ids": answer.instance_ids, "notes": answer.notes}
        )

    def post_upload_batch(self, query, body) -> Reply:
        return Reply.json({"batch": self.uploads.new_batch().batch_id})

    def post_job(self, query, body) -> Reply:
        source = _json_field(body, "source")
        if source == "example":
            if self.config.example_scene is None:
                raise InputError("this server has no example scene")
            job = self.jobs.start([str(self.config.example_scene)], "example")
        elif source == "upload":
            batch = self.uploads.get(_json_field(body, "batch"))
            job = self.jobs.start(batch.inputs(), "upload")
        else:
            raise InputError(f"unknown source {source!r}; use 'example' or 'upload'")
        return Reply.json(job.to_json())

    def get_job(self, job_id, query, body) -> Reply:
        return Reply.json(self.jobs.get(job_id).to_json())

    def backend(self):
        """The image-text backend (the shipped iggt-text unless told otherwise), loaded once."""
        from iggt.tasks.backends import DEFAULT_BACKEND, load_backend

        with self._backend_lock:
            if self._backend is None:
                name = self.config.backend or DEFAULT_BACKEND
                self._backend = load_backend(name, self.config.backend_path, device="cpu")
            return self._backend


def _json_field(body: bytes, name: str) -> str:
    """One string field of a small JSON object body; InputError naming what is wrong."""
    if len(body) > MAX_JSON_BYTES:
        raise InputError(f"the request is {len(body)} bytes; at most {MAX_JSON_BYTES} are accepted")
    try:
        value = json.loads(body or b"{}").get(name)
    except (ValueError, AttributeError):
        raise InputError("the request body is not a JSON object") from None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"the request needs a non-empty text field {name!r}")
    return value
