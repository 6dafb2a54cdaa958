"""``posetrack eval-mot`` and ``posetrack eval-kpts``: metrics of result files, as JSON.

Undefined values (NaN, infinities) print as ``null``. With ``--output FILE``
the JSON is also written to FILE (whole or not at all), before it is printed:
a closed standard output (``| head -c1``, ``>&-``) then loses nothing, and
the command exits 141 to say that printing failed.
"""

from __future__ import annotations

import json
import math
import os

from fiftyone_posetrack.types import BadInputError


def register(subparsers) -> None:
    mot = subparsers.add_parser(
        "eval-mot",
        help="CLEAR-MOT, IDF1 and HOTA of MOTChallenge result files",
        description=(
            "Evaluates MOTChallenge text files (py-motmetrics, TrackEval HOTA) and prints "
            "JSON keyed by sequence (the gt file's folder, SEQ for SEQ/gt/gt.txt) and OVERALL."
        ),
    )
    mot.add_argument(
        "--pair", nargs=2, action="append", required=True, metavar=("GT", "RES"),
        help="a ground-truth file and the tracker's result file (repeatable)",
    )  # fmt: skip
    mot.add_argument("--iou", type=float, default=0.5, help="match IoU threshold (default: %(default)s)")
    _output_arg(mot)
    mot.set_defaults(func=_eval_mot)

    kpts = subparsers.add_parser(
        "eval-kpts",
        help="keypoint AP (COCO / CrowdPose OKS) or PoseTrack AP and MOTA",
        description=(
            "coco / crowdpose: GT is a COCO keypoints file, DT a results list "
            "[{image_id, category_id, keypoints, score}]. posetrack: GT and DT are "
            "PoseTrack18 JSON files or folders of them (matched by video)."
        ),
    )
    kpts.add_argument("gt", metavar="GT")
    kpts.add_argument("dt", metavar="DT")
    kpts.add_argument("--kind", choices=("coco", "crowdpose", "posetrack"), default="coco")
    kpts.add_argument(
        "--skip-last-frame", action="store_true",
        help="posetrack: leave each video's last frame out of MOTA, as poseval does",
    )  # fmt: skip
    kpts.add_argument(
        "--mota-joint-threshold", type=float, default=None, metavar="SCORE",
        help="posetrack: MOTA counts only the predicted joints scoring at least this (AP ranks every joint); "
        "default: every joint of the files, as poseval (the dataset evaluation's default is 0.4, docs/pose.md)",
    )  # fmt: skip
    _output_arg(kpts)
    kpts.set_defaults(func=_eval_kpts)


def _output_arg(parser) -> None:
    parser.add_argument(
        "--output", "-o", metavar="FILE.json",
        help="also write the JSON to this file (written before printing; replaced whole or not at all)",
    )  # fmt: skip


def _clean(value):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print(result, output: str | None = None) -> int:
    """Writes the JSON to ``output`` (when given) and then prints it."""
    text = json.dumps(_clean(result), indent=2)
    if output:
        from fiftyone_posetrack.atomic import atomic_write

        with atomic_write(output, what="--output") as f:
            f.write(text + "\n")
    print(text)
    return 0


def _check_output(path: str | None) -> None:
    """Refuses an unusable ``--output`` before the (possibly long) evaluation."""
    if path:
        from fiftyone_posetrack.atomic import check_output_path

        check_output_path(path, "--output")


def _eval_mot(args) -> int:
    from fiftyone_posetrack.eval.mot import evaluate_mot_files

    if not 0.0 < args.iou <= 1.0:
        raise BadInputError(f"--iou: expected a value in (0, 1], got {args.iou}")
    _check_output(args.output)
    return _print(evaluate_mot_files([tuple(p) for p in args.pair], iou_threshold=args.iou), args.output)


def _load_json(path: str, what: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: not a JSON file ({e})") from None


def _eval_kpts(args) -> int:
    _check_output(args.output)
    if args.kind == "posetrack":
        from fiftyone_posetrack.eval.posetrack import evaluate_posetrack_files

        result = evaluate_posetrack_files(args.gt, args.dt, skip_last_frame=args.skip_last_frame,
                                          mota_joint_threshold=args.mota_joint_threshold)  # fmt: skip
        return _print(result, args.output)
    from fiftyone_posetrack.eval.keypoints import keypoint_ap

    gt = _load_json(args.gt, "ground-truth")
    dt = _load_json(args.dt, "results")
    if isinstance(dt, dict) and "annotations" in dt:
        dt = dt["annotations"]  # a COCO-style file of predictions
    return _print(keypoint_ap(gt, dt, kind=args.kind), args.output)
