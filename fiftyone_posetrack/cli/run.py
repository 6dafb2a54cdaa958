"""``posetrack run``: the whole pipeline over videos or a dataset (``posetrack demo``: :mod:`.demo`)."""

from __future__ import annotations

import argparse
import json
import os
import time

from fiftyone_posetrack.types import BadInputError


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the :class:`PipelineConfig` flags (defaults from the dataclass)."""
    from fiftyone_posetrack.pipeline.config import PipelineConfig

    d = PipelineConfig.__dataclass_fields__
    g = parser.add_argument_group("pipeline")
    g.add_argument("--detector", default=d["detector"].default, help="model name or spec (default: %(default)s)")
    g.add_argument("--detector2", default=None, help="second detector, fused by weighted box fusion")
    g.add_argument("--pose", default=d["pose"].default, help="model name or spec (default: %(default)s)")
    g.add_argument("--pose2", default=None, help="second mmpose model: heatmaps averaged")
    g.add_argument("--tracker", default=d["tracker"].default, help="deepsort | bytetrack | sort")
    g.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="tracker parameter, e.g. max_age=30"
    )
    g.add_argument(
        "--reid", default=d["reid"].default,
        help="ReID embedder: 'mobilenet', a named model (posetrack models), a .onnx path, 'none': motion only",
    )  # fmt: skip
    g.add_argument(
        "--reid-flip", action=argparse.BooleanOptionalAction, default=d["reid_flip"].default,
        help="average each crop's features with its mirror's (default: %(default)s)",
    )  # fmt: skip
    g.add_argument(
        "--reid-scales", type=_float_list, default=d["reid_scales"].default, metavar="S[,S...]",
        help="ReID input scales whose features are averaged, e.g. 1.0,0.875 (default: 1.0)",
    )  # fmt: skip
    g.add_argument("--det-score-threshold", type=float, default=d["det_score_threshold"].default)
    g.add_argument("--no-box-smoothing", action="store_true", help="no optical-flow box smoothing")
    g.add_argument("--box-alpha", type=float, default=d["box_alpha"].default)
    g.add_argument("--pose-smoothing", default=d["pose_smoothing"].default, help="flow | one-euro | none")
    g.add_argument("--pose-alpha", type=float, default=d["pose_alpha"].default)
    g.add_argument("--flow", dest="flow_method", default=d["flow_method"].default, help="lk | dis")
    g.add_argument("--batch-size", type=int, default=d["batch_size"].default)
    g.add_argument("--device", default=d["device"].default, help="auto | cpu | cuda | cuda:N")
    g.add_argument(
        "--models-dir",
        default=None,
        help="local folder of named models (<dir>/<name>/<file>); default: $POSETRACK_MODELS_DIR",
    )
    g.add_argument("--detections-field", default=d["detections_field"].default)
    g.add_argument("--keypoints-field", default=d["keypoints_field"].default)
    g.add_argument("--overwrite", action="store_true", help="recompute videos already done")


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _parse_params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInputError(f"--param: expected KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def config_from_args(args):
    from fiftyone_posetrack.pipeline.config import PipelineConfig

    reid = None if str(args.reid).lower() in ("none", "") else args.reid
    return PipelineConfig(
        detector=args.detector,
        detector2=args.detector2,
        pose=args.pose,
        pose2=args.pose2,
        tracker=args.tracker,
        tracker_params=_parse_params(args.param),
        reid=reid,
        reid_flip=args.reid_flip,
        reid_scales=tuple(args.reid_scales),
        det_score_threshold=args.det_score_threshold,
        box_smoothing=not args.no_box_smoothing,
        box_alpha=args.box_alpha,
        pose_smoothing=args.pose_smoothing,
        pose_alpha=args.pose_alpha,
        flow_method=args.flow_method,
        batch_size=args.batch_size,
        device=args.device,
        models_dir=args.models_dir,
        detections_field=args.detections_field,
        keypoints_field=args.keypoints_field,
        overwrite=args.overwrite,
    )


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run",
        help="run detection, tracking and pose estimation on videos or a dataset",
        description="Runs the whole pose-tracking pipeline and writes frame labels to a FiftyOne dataset.",
    )
    run.add_argument("videos", nargs="*", help="video files or folders (added to --dataset)")
    run.add_argument("--dataset", help="the FiftyOne dataset (created if needed; required without videos)")
    run.add_argument(
        "--flush-frames", type=int, default=500, metavar="N",
        help="frames of labels written per database write, also the claim's heartbeat period (default: %(default)s)",
    )  # fmt: skip
    run.add_argument(
        "--stale-after", type=float, default=600.0, metavar="SECONDS",
        help="take over videos another run claimed and stopped updating for this long (default: %(default)s)",
    )  # fmt: skip
    add_config_arguments(run)
    run.set_defaults(func=_run)


def _run(args) -> int:
    import fiftyone as fo

    from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset
    from fiftyone_posetrack.fo.run import run

    config = config_from_args(args)
    if args.flush_frames < 1:
        raise BadInputError(f"--flush-frames: expected an integer >= 1, got {args.flush_frames}")
    if not args.stale_after > 0:
        raise BadInputError(f"--stale-after: expected a number of seconds > 0, got {args.stale_after}")
    if not args.dataset and not args.videos:
        raise BadInputError("give video files/folders, or --dataset NAME, or both")
    name = args.dataset or "posetrack"
    if args.videos:
        dataset = get_or_create_dataset(name)
        ids = add_videos(dataset, args.videos)
        view = dataset.select(ids)
    else:
        if not fo.dataset_exists(name):
            raise BadInputError(f"no dataset named {name!r}; existing: {fo.list_datasets()}")
        view = dataset = fo.load_dataset(name)
    summary = run(view, config, flush_frames=args.flush_frames, stale_after=args.stale_after)
    print(
        f"dataset {dataset.name!r}: {len(summary.processed)} video(s) processed, "
        f"{len(summary.skipped)} already done, {summary.frames} frames"
    )
    _print_timings(summary.timings, summary.frames)
    return 0


def _print_timings(timings: dict, frames: int) -> None:
    total = sum(timings.values())
    if not total:
        return
    print(f"{'stage':<16}{'seconds':>9}{'share':>8}")
    for stage, sec in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"{stage:<16}{sec:9.2f}{100 * sec / total:7.1f}%")
    print(f"{'total':<16}{total:9.2f}   ({frames / total:.1f} frames/s)")
