"""The option groups several subcommands share, each defined once with its args -> value mapping.

Each ``add_*`` function adds its options to a parser or an argument group (the caller chooses
the help section); the function beside it turns the parsed options into what the library takes.
A subcommand that spells an option the same way as another gets it from here, so its name,
default, help and checks cannot drift apart. Nothing here imports torch: ``iggt reconstruct
--help`` stays fast, and the conversions import what they need when they run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from iggt.errors import InputError
from iggt.model.hub import DEFAULT_MODEL

if TYPE_CHECKING:
    import torch

    from iggt.instances.config import InstanceConfig
    from iggt.model.fast_mode import FastMode

Container = argparse.ArgumentParser | argparse._ArgumentGroup
DEVICES = "auto, cpu, cuda or cuda:N"  # the vocabulary of iggt.device.parse_device
FIT_MODES = ("crop", "pad")  # iggt.inference.preprocess
GRANULARITIES = ("coarse", "medium", "fine")  # iggt.instances.config.GRANULARITIES
DEFAULT_OVERLAP = 4  # iggt.inference.windows.DEFAULT_OVERLAP


def add_model_options(container: Container) -> None:
    """``--model``: used as given by :func:`iggt.model.hub.load_model` (nothing to convert)."""
    container.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="NAME_OR_PATH", help="shipped name, weights file/folder, or hub id"
    )


def add_device_option(container: Container, *, default: str | None = "auto", role: str = "") -> None:
    """``--device``; ``role`` says what runs there, and a None default leaves the choice to a config."""
    prefix = f"{role}: " if role else ""
    shown = "the config's" if default is None else default
    container.add_argument("--device", default=default, help=f"{prefix}{DEVICES} (default: {shown})")


@dataclass(frozen=True)
class ComputeOptions:
    """Where and in which precision the network runs, resolved for this machine."""

    device: torch.device
    dtype: torch.dtype
    """The trunk's compute dtype (:func:`iggt.device.resolve_dtype`)."""
    head_dtype: torch.dtype
    """The heads' compute dtype (:func:`iggt.device.resolve_head_dtype`)."""
    chunk_size: int | None
    """Frames per dense-head pass; None keeps the model's value."""


def add_compute_options(container: Container) -> None:
    """``--device``, ``--dtype``, ``--head-dtype`` and ``--chunk``; :func:`compute_options` reads them."""
    add_device_option(container)
    container.add_argument("--dtype", default="auto", help="trunk precision: auto, float32, bfloat16, float16")
    container.add_argument(
        "--head-dtype",
        default="auto",
        help="precision of the dense and instance heads (auto: float16 on CUDA, float32 on the CPU)",
    )
    container.add_argument(
        "--chunk", type=int, metavar="N", help="frames per dense-head pass; lower it if memory runs out"
    )


def compute_options(args: argparse.Namespace) -> ComputeOptions:
    """The compute options resolved and checked: one InputError line for a device this machine
    lacks, a dtype it cannot run, or a chunk below one frame."""
    from iggt.device import resolve_device, resolve_dtype, resolve_head_dtype
    from iggt.inference.runner import check_chunk_size

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    head_dtype = resolve_head_dtype(args.head_dtype, device)
    chunk_size = None if args.chunk is None else check_chunk_size(args.chunk)
    return ComputeOptions(device=device, dtype=dtype, head_dtype=head_dtype, chunk_size=chunk_size)


def add_fast_mode_option(container: Container) -> None:
    """``--fast-mode``: :func:`fast_mode_option` reads it (a bad name is one ConfigError line naming the choices)."""
    from iggt.model.fast_mode import FAST_MODES  # no torch: a dataclass and its presets

    container.add_argument(
        "--fast-mode",
        default="exact",
        metavar="NAME",
        help=f"approximate the trunk's global attention for long inputs: {', '.join(FAST_MODES)} "
        "(default: exact; see docs/performance.md for what each costs in accuracy)",
    )


def fast_mode_option(args: argparse.Namespace) -> FastMode:
    from iggt.model.fast_mode import get_fast_mode

    return get_fast_mode(args.fast_mode)


def add_fit_option(container: Container) -> None:
    """``--mode``: how each view is fitted to the network's resolution (a checked choice, used as given)."""
    container.add_argument(
        "--mode", choices=FIT_MODES, default="crop", help="fit to the network: crop the height or pad to square"
    )


@dataclass(frozen=True)
class FrameOptions:
    """Which views of the input are read (checked where they are read, :func:`iggt.io.images.load_images`)."""

    max_frames: int | None
    """At most this many views, evenly spaced; None keeps all."""
    fps: float | None
    """Video: about this many frames per second of video."""
    frames: int | None
    """Video: this many frames, evenly spaced (exclusive with ``fps``)."""


def add_frame_options(container: Container) -> None:
    """``--max-frames`` and ``--fps`` | ``--frames``; :func:`frame_options` reads them."""
    container.add_argument("--max-frames", type=int, metavar="N", help="use at most N views, evenly spaced")
    sampling = container.add_mutually_exclusive_group()
    sampling.add_argument("--fps", type=float, metavar="F", help="video: keep about F frames per second (default 1)")
    sampling.add_argument("--frames", type=int, metavar="N", help="video: keep N frames evenly spaced")


def frame_options(args: argparse.Namespace) -> FrameOptions:
    return FrameOptions(max_frames=args.max_frames, fps=args.fps, frames=args.frames)


@dataclass(frozen=True)
class WindowOptions:
    """Long captures in windows (checked by :func:`iggt.inference.windows.check_window`)."""

    window: int | None
    """At most this many frames per network pass; None: one pass, or windows chosen from the free memory."""
    overlap: int
    """Frames consecutive windows share, on which they are aligned and their instances linked."""
    store: Path | None = None
    """An empty or new folder for a windowed run's result (memory-mapped files); None: in memory."""


def add_window_options(container: Container) -> None:
    """``--window`` and ``--overlap``; :func:`window_options` reads them."""
    container.add_argument(
        "--window",
        type=int,
        metavar="K",
        help="long captures: run K frames at a time, aligned into one result (default: chosen from the free "
        "memory when the input does not fit in one pass)",
    )
    container.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="M",
        help=f"frames consecutive windows share (default {DEFAULT_OVERLAP}, at least 2)",
    )
    container.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="long captures: keep the network's input and the windows' result in this empty or new folder "
        "(memory-mapped .npy files) instead of memory, so memory does not grow with the capture",
    )


def window_options(args: argparse.Namespace) -> WindowOptions:
    """The window options, checked: one InputError line for an overlap below the minimum or a
    window not larger than its overlap."""
    if args.window is not None:
        from iggt.inference.windows import check_window

        check_window(args.window, args.overlap)
    return WindowOptions(window=args.window, overlap=args.overlap, store=getattr(args, "store", None))


def add_instance_options(container: Container, *, min_size: bool = True) -> None:
    """``--granularity`` and, with ``min_size``, ``--min-instance-size``; :func:`instance_config` reads them."""
    container.add_argument(
        "--granularity",
        choices=GRANULARITIES,
        default="medium",
        help="coarse: whole objects, fine: parts (default: medium)",
    )
    if min_size:
        container.add_argument(
            "--min-instance-size",
            type=float,
            metavar="SIZE",
            help="smallest instance: pixels if >= 1, else a fraction of all pixels",
        )


def instance_config(args: argparse.Namespace, device: torch.device) -> InstanceConfig:
    """The granularity preset with the options given; instances are clustered on ``device``, where
    the network ran, so ``--device cpu`` keeps every stage off the GPU."""
    from iggt.instances.config import InstanceConfig

    overrides = {"device": str(device)}
    size = getattr(args, "min_instance_size", None)  # absent where the subcommand has no such option
    if size is not None:
        if size <= 0:
            raise InputError(
                f"--min-instance-size must be positive (pixels if >= 1, else a fraction of all pixels), got {size:g}"
            )
        overrides["min_instance_size"] = size
    return InstanceConfig.for_granularity(args.granularity, **overrides)
