"""``posetrack track-mot`` and ``posetrack tune``: trackers on MOTChallenge files.

::

    posetrack track-mot det.txt out.txt --tracker deepsort --param max_age=60
    posetrack track-mot det.txt out.txt --frames img1/ --smooth 0.5 --bridge 3
    posetrack tune gt.txt det.txt --grid max_age=10,30,60 --grid n_init=1,3
"""

from __future__ import annotations

import os

from fiftyone_posetrack.types import BadInputError

#: the pipeline options these commands take (declared in fiftyone_posetrack.pipeline.options)
_TRACKER_OPTIONS = ("tracker", "tracker_params")


def register(subparsers) -> None:
    track = subparsers.add_parser(
        "track-mot",
        help="track a MOTChallenge detection file (ids ignored) into a result file",
        description=(
            "Tracks the boxes of a MOT detection file frame by frame and writes MOT results "
            "(frame,id,x,y,w,h,score,-1,-1,-1). With --frames (a video or an image folder, "
            "frame 1 = first image) appearance features from the embedder are used, and "
            "optionally optical-flow box smoothing; without it tracking is motion only."
        ),
    )
    track.add_argument("det", metavar="DET.txt", help="MOT detection file")
    track.add_argument("out", metavar="OUT.txt", help="result file to write")
    _common(track)
    track.add_argument("--frames", metavar="IMG_DIR_OR_VIDEO", help="the frames of the detections")
    track.add_argument(
        "--embedder", default="mobilenet",
        help="ReID embedder with --frames: mobilenet (default, offline), osnet_x1_0, "
             "osnet_x0_25, resnet50 (need --weights) or a .onnx file; 'none' for motion only",
    )  # fmt: skip
    track.add_argument("--weights", help="checkpoint of a torch ReID embedder")
    track.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    track.add_argument(
        "--smooth", type=float, metavar="ALPHA",
        help="with --frames: blend each box as ALPHA*detected + (1-ALPHA)*flow-propagated",
    )  # fmt: skip
    track.add_argument("--bridge", type=int, default=0, metavar="N",
                       help="with --smooth: bridge detection gaps of up to N frames")  # fmt: skip
    track.set_defaults(func=_track_mot)

    tune = subparsers.add_parser(
        "tune",
        help="grid-search tracker parameters against ground truth",
        description=(
            "Tracks DET.txt with every combination of the --grid values and prints a table "
            "sorted by IDF1, then MOTA (motion only unless --frames is given)."
        ),
    )
    tune.add_argument("gt", metavar="GT.txt", help="MOT ground-truth file")
    tune.add_argument("det", metavar="DET.txt", help="MOT detection file")
    _common(tune)
    tune.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="values to try for one parameter (repeatable)")  # fmt: skip
    tune.add_argument("--frames", metavar="IMG_DIR_OR_VIDEO", help="frames, for appearance features")
    tune.add_argument("--embedder", default="mobilenet", help="ReID embedder with --frames")
    tune.add_argument("--weights", help="checkpoint of a torch ReID embedder")
    tune.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    tune.set_defaults(func=_tune)


def _common(parser) -> None:
    """``--tracker`` and ``--param KEY=VALUE`` (the pipeline's own flags)."""
    from fiftyone_posetrack.pipeline.options import OPTIONS, add_arguments

    add_arguments(parser, {k: OPTIONS[k] for k in _TRACKER_OPTIONS})


def _tracker(args) -> tuple[str, dict]:
    """The tracker name and parameters given (default: the pipeline's default tracker)."""
    from fiftyone_posetrack.pipeline.options import OPTIONS, values_from_args
    from fiftyone_posetrack.tracking.base import check_tracker_params

    values = values_from_args(args, {k: OPTIONS[k] for k in _TRACKER_OPTIONS})
    name = values.get("tracker", OPTIONS["tracker"].default)
    return name, check_tracker_params(name, values.get("tracker_params", {}), "--param")


def _embedder(args):
    if not args.frames or str(args.embedder).lower() == "none":
        return None
    from fiftyone_posetrack.reid import make_embedder

    kwargs = {"device": args.device}
    if args.weights:
        kwargs["weights"] = args.weights
    return make_embedder(args.embedder, **kwargs)


def _track_mot(args) -> int:
    from fiftyone_posetrack.formats.mot import read_mot, write_mot
    from fiftyone_posetrack.tracking import make_tracker
    from fiftyone_posetrack.tracking.run import track_mot_array

    name, params = _tracker(args)
    tracker = make_tracker(name, **params)
    smoother = None
    if args.smooth is not None:
        if not args.frames:
            raise BadInputError("--smooth needs --frames (optical flow runs on the images)")
        from fiftyone_posetrack.tracking.box_smoothing import FlowBoxSmoother

        smoother = FlowBoxSmoother(alpha=args.smooth, max_gap=args.bridge)
    dets = read_mot(args.det)
    if args.frames and not os.path.exists(args.frames):
        raise FileNotFoundError(f"--frames not found: {args.frames}")
    res = track_mot_array(dets, tracker, frames=args.frames, embedder=_embedder(args),
                          smoother=smoother, progress=True)  # fmt: skip
    write_mot(args.out, res)
    n_ids = len(set(res[:, 1].astype(int).tolist())) if len(res) else 0
    print(f"{len(res)} boxes, {n_ids} tracks -> {args.out}")
    return 0


def _tune(args) -> int:
    from fiftyone_posetrack.formats.mot import read_mot
    from fiftyone_posetrack.tracking.tune import format_table, grid_search, parse_grid

    grid = parse_grid(args.grid)
    if not grid:
        raise BadInputError("give at least one --grid KEY=V1,V2,...")
    name, params = _tracker(args)
    rows = grid_search(read_mot(args.gt), read_mot(args.det), name, grid,
                       base_params=params, frames=args.frames,
                       embedder=_embedder(args))  # fmt: skip
    print(format_table(rows))
    return 0
