"""`iggt eval`: run a model over a folder of scenes and write per-scene CSV, summary JSON and a table."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from iggt.cli.options import (
    ComputeOptions,
    add_compute_options,
    add_fast_mode_option,
    add_fit_option,
    add_instance_options,
    add_model_options,
    compute_options,
    fast_mode_option,
    instance_config,
)
from iggt.errors import InputError
from iggt.io.output_dir import claim_output_dir, writing_into

DATA_FORMATS = ("auto", "scene", "scannet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="folder of scenes (scene format or ScanNet)")
    parser.add_argument("--out", type=Path, required=True, help="report folder (created if missing)")
    parser.add_argument(
        "--tasks",
        default="depth,points,cameras,instances",
        help="comma-separated metric groups of depth, points, cameras, instances, semantic (default: all but semantic)",
    )
    parser.add_argument(
        "--baseline",
        choices=("xyzrgb", "none"),
        default="xyzrgb",
        help="extra instance row: cluster predicted positions + colours (default) or none",
    )
    parser.add_argument("--format", choices=DATA_FORMATS, default="auto", help="layout of --data (default: auto)")
    parser.add_argument("--max-scenes", type=int, help="evaluate only the first N scenes (sorted by name)")
    parser.add_argument("--views", type=int, help="views per scene, evenly spaced (default: all frames)")
    compute = parser.add_argument_group("model and compute")
    add_model_options(compute)
    add_compute_options(compute)
    add_fast_mode_option(compute)
    compute.add_argument("--img-size", type=int, help="network width (crop) or side (pad); default: the model's")
    add_fit_option(compute)
    protocol = parser.add_argument_group("protocol")
    protocol.add_argument("--depth-alignment", choices=("median", "scale_shift", "none"), default="median")
    protocol.add_argument("--point-alignment", choices=("sim3", "se3", "scale", "none"), default="sim3")
    protocol.add_argument("--absent-views", choices=("skip", "penalise"), default="skip")
    protocol.add_argument("--max-points", type=int, default=200_000, help="points per scene for Chamfer")
    add_instance_options(protocol, min_size=False)
    semantic = parser.add_argument_group("semantic task (open vocabulary)")
    semantic.add_argument(
        "--vl-backend",
        action="append",
        metavar="NAME[:PATH]",
        help="image-text backend labelling the model's instances, one row each; repeatable "
        "(default: iggt-text, the shipped model); an oracle row is always added",
    )
    semantic.add_argument("--vl-device", default="cpu", help="where the image-text backends run (default cpu)")
    semantic.add_argument(
        "--scannet-labels",
        type=Path,
        metavar="TSV",
        help="ScanNet-format data: ScanNet's scannetv2-labels.combined.tsv mapping label IDs to NYU40 classes "
        "(default: that file at the root of --data, if there)",
    )
    semantic.add_argument(
        "--class-names",
        type=Path,
        metavar="FILE",
        help="ScanNet-format data: the label maps' class names, one '<id> <name>' per line",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    compute = compute_options(args)
    if fast_mode_option(args).fp8_attention:  # a bad name, or fp8 where it cannot run, costs no data scan
        from iggt.model.layers.fp8_attention import check_fp8_runs

        check_fp8_runs(compute.device)
    if not args.data.is_dir():
        raise InputError(f"--data {args.data} is not a folder; pass a folder of scenes")
    # Checked and locked before the model is loaded, so a long run never fails at the end on --out.
    with claim_output_dir(args.out, replaces_folder=False):
        return _evaluate(args, compute)


def _evaluate(args: argparse.Namespace, compute: ComputeOptions) -> int:
    from iggt.eval.benchmark import BenchmarkConfig, run_benchmark
    from iggt.eval.report import write_reports
    from iggt.eval.run_info import run_metadata
    from iggt.inference.runner import run_model, store_weights_for_inference
    from iggt.model.hub import load_model

    config = BenchmarkConfig(
        tasks=tuple(task.strip() for task in args.tasks.split(",") if task.strip()),
        views=args.views,
        max_scenes=args.max_scenes,
        preprocess_mode=args.mode,
        depth_alignment=args.depth_alignment,
        point_alignment=args.point_alignment,
        max_points=args.max_points,
        absent_views=args.absent_views,
    )
    data_format = _data_format(args.data, args.format)
    classes = _class_table(args, data_format, "semantic" in config.tasks)
    scene_dirs, read_scene = _scene_source(args.data, data_format, args.views, classes)
    if not scene_dirs:
        raise InputError(f"no scenes found in {args.data} (format {data_format}); check --data and --format")
    labellers = _labellers(args.vl_backend, args.vl_device) if "semantic" in config.tasks else {}
    # Arguments (and the image-text backends) are checked above, before a possibly large model is loaded.
    model = load_model(args.model)
    store_weights_for_inference(model, compute.device, compute.dtype)
    config = replace(config, img_size=args.img_size or model.config.img_size, patch_size=model.config.patch_size)
    instance_settings = instance_config(args, compute.device)
    segmenters = _segmenters(args.baseline, instance_settings, model_label=_model_label(args.model))

    def predict(images):
        return run_model(
            model,
            images,
            device=compute.device,
            dtype=compute.dtype,
            chunk_size=compute.chunk_size,
            head_dtype=compute.head_dtype,
            fast_mode=fast_mode_option(args),
        )

    rows = run_benchmark(
        scene_dirs, read_scene, predict, segmenters, config, progress=not args.quiet, labellers=labellers
    )
    metadata = run_metadata(
        model=str(args.model),
        data=args.data,
        data_format=data_format,
        device=compute.device,
        config=config,
        instance_config=instance_settings,
        num_scenes=len({row["scene"] for row in rows}),
    )
    metadata["fast_mode"] = args.fast_mode
    if labellers:
        metadata["vl_backends"] = list(labellers)
    if classes is not None:
        metadata["class_names"] = classes.source
    with writing_into(args.out):
        write_reports(rows, config.tasks, metadata, args.out)
    print((args.out / "results.md").read_text(), end="")
    print(f"reports written to {args.out}")
    return 0


def _model_label(model: str) -> str:
    """The model's row name: a shipped name or hub id as given, a local file or folder by its stem."""
    path = Path(model).expanduser()
    return path.stem if path.exists() else model


def _segmenters(baseline: str, instance_config, model_label: str) -> dict:
    """{row name: Predictions -> (S, H, W) labels}: the model's instances, then the baseline."""
    from iggt.instances import cluster_positions_colours, extract_instances

    segmenters = {model_label: lambda predictions: extract_instances(predictions, instance_config).labels}
    if baseline == "xyzrgb":
        segmenters["xyzrgb baseline"] = lambda predictions: (
            cluster_positions_colours(predictions, instance_config).labels
        )
    return segmenters


def _labellers(specs: list[str] | None, device: str) -> dict:
    """{row name: labeller}: one per ``--vl-backend NAME[:PATH]`` (default the shipped one), then the oracle."""
    from iggt.eval.semantic import oracle_labeller
    from iggt.tasks.backends import DEFAULT_BACKEND, load_backend
    from iggt.tasks.instance_classes import backend_labeller

    labellers = {}
    for spec in specs or [DEFAULT_BACKEND]:
        name, _, path = spec.partition(":")
        labellers[spec] = backend_labeller(load_backend(name, path or None, device=device))
    labellers["oracle classes"] = oracle_labeller
    return labellers


def _data_format(data: Path, data_format: str) -> str:
    """``data_format``, or for "auto" "scannet" when ``data`` or a subfolder has color/ and pose/, else "scene"."""
    from iggt.eval.scannet_reader import is_scannet_scene

    if data_format != "auto":
        return data_format
    scannet = is_scannet_scene(data) or any(is_scannet_scene(p) for p in data.iterdir() if p.is_dir())
    return "scannet" if scannet else "scene"


def _class_table(args: argparse.Namespace, data_format: str, semantic: bool):
    """The ClassTable naming ScanNet-format label maps (None where there is none or it is not needed)."""
    from iggt.eval.scannet_labels import SCANNET_LABEL_TABLE, read_class_names, read_scannet_label_table

    given = [option for option in ("scannet_labels", "class_names") if getattr(args, option) is not None]
    if len(given) == 2:
        raise InputError("pass --scannet-labels or --class-names, not both")
    if given and data_format != "scannet":
        raise InputError(
            f"--{given[0].replace('_', '-')} names the classes of ScanNet-format data; "
            "scene-format scenes carry their own"
        )
    if args.class_names is not None:
        return read_class_names(args.class_names)
    if args.scannet_labels is not None:
        return read_scannet_label_table(args.scannet_labels)
    if data_format != "scannet" or not semantic:
        return None
    if (args.data / SCANNET_LABEL_TABLE).is_file():
        return read_scannet_label_table(args.data / SCANNET_LABEL_TABLE)
    raise InputError(
        f"the semantic task needs class names, and ScanNet-format data has none: put {SCANNET_LABEL_TABLE} "
        f"in {args.data} or pass --scannet-labels TSV or --class-names FILE"
    )


def _scene_source(data: Path, data_format: str, views: int | None, classes):
    """(scene folders, reader) for ``data`` in ``data_format`` ("scannet" or "scene")."""
    from iggt.eval.ground_truth import select_views
    from iggt.eval.scannet_reader import list_scannet_scenes, read_scannet_scene

    if data_format == "scannet":
        # Reading only the evaluated frames keeps full ScanNet sequences (thousands of frames) cheap.
        return list_scannet_scenes(data), lambda folder: read_scannet_scene(folder, views=views, classes=classes)
    from iggt.io.scene_format import list_scenes, read_manifest, read_scene

    def read_views(folder: Path):
        frames = read_manifest(folder).frames
        return read_scene(folder, frames=[frames[i] for i in select_views(len(frames), views)])

    return list_scenes(data), read_views
