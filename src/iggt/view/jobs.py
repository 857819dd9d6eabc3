"""Reconstructions started from the page, each in its own thread and output folder.

A job calls :func:`iggt.inference.reconstruct.reconstruct` and ``Reconstruction.save``, the API
behind ``iggt reconstruct``. Jobs run one at a time (each uses every core); a second tab's job waits
as "queued". The network is loaded on the first job and kept: it is the slow part of a short run.
Each job has its own ID and folder, so two tabs never see each other's results.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from iggt.errors import IGGTError, InputError, first_line

JOB_ID_LENGTH = 16


@dataclass
class JobSettings:
    """How every job of this server runs (the compute options of ``iggt reconstruct``)."""

    model: str
    device: str = "auto"
    dtype: str = "auto"
    max_frames: int | None = None


@dataclass
class Job:
    """One reconstruction: ``state`` is queued, running, done or failed; ``stage`` says what runs now."""

    job_id: str
    inputs: list[str]
    out_dir: Path
    state: str = "queued"
    stage: str = "waiting for the previous run"
    error: str | None = None
    result_id: str | None = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None

    def to_json(self) -> dict:
        end = self.finished or time.monotonic()
        return {
            "job": self.job_id,
            "state": self.state,
            "stage": self.stage,
            "elapsed_s": round(end - (self.started or self.created), 1),
            "error": self.error,
            "result": self.result_id,
        }


class JobRunner:
    """Starts jobs and keeps their status; ``on_done(folder) -> result ID`` registers each result."""

    def __init__(self, settings: JobSettings, results_root: Path, on_done) -> None:
        self.settings, self.results_root, self.on_done = settings, results_root, on_done
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._compute = threading.Lock()
        self._network = None

    def start(self, inputs: list[str], name: str) -> Job:
        job_id = secrets.token_hex(JOB_ID_LENGTH // 2)
        job = Job(job_id, inputs, self.results_root / f"{name}_{job_id[:6]}")
        with self._lock:
            self._jobs[job_id] = job
        threading.Thread(target=self._run, args=(job,), name=f"iggt-job-{job_id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise InputError(f"no run {job_id!r} on this server; start it again")
        return job

    def _run(self, job: Job) -> None:
        with self._compute:
            job.state, job.started = "running", time.monotonic()
            try:
                self._reconstruct(job)
                job.stage = "opening the result"
                job.result_id = self.on_done(job.out_dir)
                job.state, job.stage = "done", "done"
            except IGGTError as exc:
                job.state, job.error = "failed", str(exc)
            except Exception as exc:  # a broken upload must not end the server: the page shows the message
                job.state, job.error = "failed", f"{type(exc).__name__}: {first_line(exc)}"
            finally:
                job.finished = time.monotonic()

    def _reconstruct(self, job: Job) -> None:
        from iggt.inference.reconstruct import reconstruct

        settings = self.settings
        if self._network is None:
            job.stage = "loading the model"
            from iggt.model.hub import load_model

            self._network = load_model(settings.model)
        job.stage = "reading the images and running the network"
        reconstruction = reconstruct(
            job.inputs if len(job.inputs) > 1 else job.inputs[0],
            self._network,
            device=settings.device,
            dtype=settings.dtype,
            max_frames=settings.max_frames,
            progress=False,
        )
        reconstruction.model_name = settings.model
        job.stage = "writing the exports"
        reconstruction.save(job.out_dir)
