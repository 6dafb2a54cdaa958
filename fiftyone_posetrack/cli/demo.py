"""``posetrack demo``: a synthetic crowd with exact ground truth, the whole pipeline, the metrics explained.

The demo runs the ``cpu`` preset (the pipeline's defaults), the best
configuration available offline on a CPU (the models of ``POSETRACK_MODELS_DIR`` /
the cache): RTMDet-nano on 640 px tiles, ByteTrack with the real OSNet x0.25
MSMT17 ReID model on ambiguous boxes, MoveNet with test-time flip, no pose
smoothing (docs/pose.md); options given on
the command line override it. Pose metrics are computed as the field does:
PoseTrack AP ranks every predicted joint by its score, MOTA counts the joints
scoring at least ``--joint-threshold`` (as challenge submissions threshold
their files); both are printed.
"""

from __future__ import annotations

import os
import time

from fiftyone_posetrack.cli.run import _print_timings, add_config_arguments, config_from_args
from fiftyone_posetrack.eval.posetrack import MOTA_JOINT_THRESHOLD

#: the demo's preset (``posetrack presets``)
DEMO_PRESET = "cpu"
#: PoseTrack MOTA counts the predicted joints scoring at least this (AP ranks them all): the evaluation's
#: default, chosen on real annotated people (``bench/bench_pose_threshold.py``, docs/pose.md)
DEMO_JOINT_THRESHOLD = MOTA_JOINT_THRESHOLD


def register(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="end-to-end demo on a synthetic crowd (or a video of yours)",
        description=(
            "The end-to-end demo: renders a synthetic crowd video with exact ground truth (or "
            "uses --video), runs the pipeline into a FiftyOne dataset, prints the time per "
            "stage and, with ground truth, the tracking and pose metrics with what each means."
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
    demo.add_argument(
        "--joint-threshold", type=float, default=DEMO_JOINT_THRESHOLD,
        help="PoseTrack MOTA counts the predicted joints scoring at least this, as challenge submissions do; "
        "AP ranks every joint (default: %(default)s)",
    )  # fmt: skip
    demo.add_argument("--app", action="store_true", help="open the FiftyOne App on the result")
    demo.add_argument("--port", type=int, default=5151, help="App port (with --app)")
    add_config_arguments(demo)
    demo.set_defaults(func=_demo, preset=DEMO_PRESET)


def _demo_reid(config, args):
    """The preset's real ReID model, or MobileNetV2 (said so) when it cannot be had here and
    the user did not ask for it."""
    from fiftyone_posetrack.models import MODELS, ModelUnavailableError, model_path

    if hasattr(args, "reid") or config.reid not in MODELS:
        return config
    try:
        model_path(config.reid, config.models_dir)
    except ModelUnavailableError as e:
        print(f"ReID: {e}\nReID: using the offline MobileNetV2 features instead")
        return config.replace(reid="mobilenet")
    return config


def _demo(args) -> int:
    import fiftyone as fo

    from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset, load_synth
    from fiftyone_posetrack.fo.run import run

    config = _demo_reid(config_from_args(args), args)
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
    print(
        f"preset {config.preset}: detector {config.detector}, pose {config.pose}, "
        f"tracker {config.tracker}, ReID {config.reid}"
    )
    summary = run(dataset, config)
    _print_timings(summary.timings, summary.frames)
    if dataset.has_frame_field("gt_detections"):
        _print_evaluation(dataset, config, args.joint_threshold)
    print(f"dataset {dataset.name!r} ready ({time.perf_counter() - start:.1f} s)")
    if args.app:
        session = fo.launch_app(dataset, port=args.port, address="127.0.0.1")
        print(f"App at http://127.0.0.1:{args.port} - press Ctrl+C to stop")
        session.wait()
    return 0


def _print_evaluation(dataset, config, joint_threshold: float) -> None:
    """Evaluates the demo's labels as stored runs (``demo_tracking``, ``demo_poses``:
    the App can filter to the errors) and prints each number with what it means."""
    from fiftyone_posetrack.fo.evaluation import evaluate_poses, evaluate_tracking

    m = evaluate_tracking(dataset, config.detections_field, "gt_detections", eval_key="demo_tracking").metrics()
    rows = [
        ("tracking (boxes, IoU >= 0.5)", None, ""),
        ("MOTA", f"{m['mota']:.3f}", "1 - (missed + false + identity switches) / ground-truth boxes"),
        ("IDF1", f"{m['idf1']:.3f}", "share of boxes given the right identity over the whole video"),
        ("HOTA", f"{m['hota']:.3f}", "geometric mean of detection and association accuracy, over IoU thresholds"),
        ("MOTP", f"{m['motp']:.3f}", "mean 1 - IoU of matched boxes (lower is tighter)"),
        ("FP / FN / IDSW", f"{m['fp']} / {m['fn']} / {m['idsw']}", "false boxes / missed boxes / identity switches"),
    ]
    if dataset.has_frame_field("gt_keypoints"):
        p = evaluate_poses(
            dataset, config.keypoints_field, "gt_keypoints", eval_key="demo_poses", kind="posetrack",
            pred_box_field=config.detections_field, posetrack_joint_threshold=joint_threshold,
        ).metrics()  # fmt: skip
        rows += [
            ("poses, COCO (all joints)", None, ""),
            ("OKS AP", f"{p['ap']:.3f}", "COCO keypoint AP averaged over OKS 0.50:0.95"),
            ("AP50", f"{p['ap50']:.3f}", "COCO keypoint AP at OKS 0.5 (a loose match)"),
            ("AR", f"{p['ar']:.3f}", "COCO keypoint recall averaged over OKS 0.50:0.95"),
            ("poses, PoseTrack (PCKh 0.5: a joint matches within half the head size)", None, ""),
            ("AP", f"{p['pt_ap']:.1f}", "percent, all joints: per-joint AP, every predicted joint ranked by its score"),
            (f"MOTA @{joint_threshold:g}", f"{p['pt_mota']:.1f}", f"percent, joints scoring >= {joint_threshold:g}: "
             "per-joint 1 - (missed + false + ID switches) / joints; can be negative: each false joint costs "
             "as much as a missed one"),  # fmt: skip
            ("MOTP", f"{p['pt_motp']:.1f}", "percent: mean closeness of matched joints"),
            ("precision / recall", f"{p['pt_precision']:.1f} / {p['pt_recall']:.1f}",
             "percent: joints kept that are right / ground-truth joints found"),  # fmt: skip
        ]
    for name, value, meaning in rows:
        print(f"\n{name}" if value is None else f"  {name:<16}{value:>14}   {meaning}")
    print("\nevaluation runs 'demo_tracking' and 'demo_poses' are stored on the dataset")
