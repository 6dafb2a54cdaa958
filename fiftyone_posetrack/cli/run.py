"""``posetrack run`` and ``posetrack demo``: the whole pipeline over videos or a dataset."""

from __future__ import annotations

import argparse
import os
import time

from fiftyone_posetrack.types import BadInputError


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per pipeline option (:data:`fiftyone_posetrack.pipeline.options.OPTIONS`)."""
    from fiftyone_posetrack.pipeline.options import add_arguments

    add_arguments(parser)


def config_from_args(args):
    """The :class:`PipelineConfig` of the flags given (a ``--preset``'s values apply to the others)."""
    from fiftyone_posetrack.pipeline.config import PipelineConfig
    from fiftyone_posetrack.pipeline.options import values_from_args

    return PipelineConfig(**values_from_args(args))


_CLI_JOB_OPTIONS = ("flush_frames", "stale_after")


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """``--flush-frames`` and ``--stale-after`` (:data:`~fiftyone_posetrack.pipeline.options.JOB_OPTIONS`)."""
    from fiftyone_posetrack.pipeline.options import JOB_OPTIONS, add_arguments

    add_arguments(parser, {k: JOB_OPTIONS[k] for k in _CLI_JOB_OPTIONS})


def job_options_from_args(args) -> dict:
    """``{"flush_frames": ..., "stale_after": ...}``: the flags given, else the defaults."""
    from fiftyone_posetrack.pipeline.options import JOB_OPTIONS, values_from_args

    options = {k: JOB_OPTIONS[k] for k in _CLI_JOB_OPTIONS}
    return {k: o.default for k, o in options.items()} | values_from_args(args, options)


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run",
        help="run detection, tracking and pose estimation on videos or a dataset",
        description="Runs the whole pose-tracking pipeline and writes frame labels to a FiftyOne dataset.",
    )
    run.add_argument("videos", nargs="*", help="video files or folders (added to --dataset)")
    run.add_argument("--dataset", help="the FiftyOne dataset (created if needed; required without videos)")
    add_job_arguments(run)
    add_config_arguments(run)
    run.set_defaults(func=_run)

    demo = subparsers.add_parser(
        "demo",
        help="make a synthetic crowd (or take --video), track poses, evaluate, print a table",
        description=(
            "The end-to-end demo: renders a synthetic crowd video with exact ground truth (or "
            "takes --video), runs the pipeline into a FiftyOne dataset, evaluates tracking and "
            "poses when there is ground truth, and prints a short table."
        ),
    )
    demo.add_argument("--video", help="use this video instead of a synthetic crowd (no evaluation)")
    demo.add_argument("--dataset", default="posetrack-demo", help="dataset name (replaced)")
    demo.add_argument("--out", default=None, help="where the synthetic video goes (default: cache)")
    demo.add_argument("--people", type=int, default=8)
    demo.add_argument("--frames", type=int, default=60)
    demo.add_argument("--width", type=int, default=640)
    demo.add_argument("--height", type=int, default=360)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--app", action="store_true", help="open the FiftyOne App on the result")
    demo.add_argument("--port", type=int, default=5151, help="App port (with --app)")
    add_config_arguments(demo)
    demo.set_defaults(func=_demo)


def _run(args) -> int:
    import fiftyone as fo

    from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset
    from fiftyone_posetrack.fo.run import run

    config = config_from_args(args)
    job = job_options_from_args(args)
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
    summary = run(view, config, **job)
    print(
        f"dataset {dataset.name!r}: {len(summary.processed)} video(s) processed, "
        f"{len(summary.skipped)} already done, {summary.frames} frames"
        + (f" (run record {summary.run_key!r}: posetrack runs {dataset.name} {summary.run_key})" if summary.run_key else "")
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


def _demo(args) -> int:
    import fiftyone as fo

    from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset, load_synth
    from fiftyone_posetrack.fo.run import run

    config = config_from_args(args)
    start = time.perf_counter()
    if fo.dataset_exists(args.dataset):
        fo.delete_dataset(args.dataset)
    if args.video:
        dataset = get_or_create_dataset(args.dataset)
        add_videos(dataset, [args.video])
        print(f"video: {args.video}")
    else:
        from fiftyone_posetrack.models import cache_dir
        from fiftyone_posetrack.synth import render_crowd

        out = args.out or os.path.join(cache_dir().parent, "demo", f"crowd-{args.people}p-{args.frames}f-s{args.seed}")
        result = render_crowd(
            out, people=args.people, frames=args.frames, width=args.width,
            height=args.height, seed=args.seed, overwrite=True,
        )  # fmt: skip
        dataset = load_synth(out, args.dataset)
        print(f"synthetic crowd: {result.people} people, {result.frames} frames -> {result.video_path}")
    summary = run(dataset, config)
    _print_timings(summary.timings, summary.frames)
    if dataset.has_frame_field("gt_detections"):
        _print_evaluation(dataset, config)
    print(f"dataset {dataset.name!r} ready ({time.perf_counter() - start:.1f} s)")
    if args.app:
        session = fo.launch_app(dataset, port=args.port, address="127.0.0.1")
        print(f"App at http://127.0.0.1:{args.port} - press Ctrl+C to stop")
        session.wait()
    return 0


def _print_evaluation(dataset, config) -> None:
    """Evaluates the demo's labels as stored runs (``demo_tracking``,
    ``demo_poses``: the App can filter to the errors) and prints the metrics."""
    from fiftyone_posetrack.fo.evaluation import evaluate_poses, evaluate_tracking

    m = evaluate_tracking(dataset, config.detections_field, "gt_detections", eval_key="demo_tracking").metrics()
    print(
        f"tracking: MOTA {m['mota']:.3f}  IDF1 {m['idf1']:.3f}  HOTA {m['hota']:.3f}  "
        f"MOTP {m['motp']:.3f}  FP {m['fp']}  FN {m['fn']}  IDSW {m['idsw']}"
    )
    if not dataset.has_frame_field("gt_keypoints"):
        return
    p = evaluate_poses(
        dataset, config.keypoints_field, "gt_keypoints", eval_key="demo_poses", kind="posetrack",
        pred_box_field=config.detections_field,
    ).metrics()  # fmt: skip
    print(
        f"poses:    OKS AP {p['ap']:.3f}  AP50 {p['ap50']:.3f}  AR {p['ar']:.3f}  |  PoseTrack "
        f"AP {p['pt_ap']:.1f}  MOTA {p['pt_mota']:.1f}  MOTP {p['pt_motp']:.1f} (percent)"
    )
    print("evaluation runs 'demo_tracking' and 'demo_poses' are stored on the dataset")
