"""``posetrack track-mot`` and ``posetrack tune``: trackers on MOTChallenge files.

::

    posetrack track-mot det.txt out.txt                      # the ocsort preset (OC-SORT + GSI)
    posetrack track-mot det.txt out.txt --tracker ocsort --interpolate 20
    posetrack track-mot det.txt out.txt --tracker deepsort --param max_age=60
    posetrack track-mot det.txt out.txt --frames img1/ --smooth 0.5 --bridge 3
    posetrack tune gt.txt det.txt --grid max_age=10,30,60 --grid n_init=1,3
    posetrack tune --pair gt1.txt det1.txt --pair gt2.txt det2.txt --tracker bytetrack \
        --grid track_thresh=0.5,0.6 --grid post.interpolate=0,20 --metric hota --save-preset my.json
    posetrack track-mot det.txt out.txt --tracker-preset my.json
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
            "optionally optical-flow box smoothing; without it tracking is motion only. Without "
            "--tracker, the 'ocsort' tracker preset is used (OC-SORT + tracklet linking + interpolation + GSI, "
            "chosen across the shared benchmarks by its worst loss; docs/tracking.md); post-processing options "
            "override the preset's."
        ),
    )
    track.add_argument("det", metavar="DET.txt", help="MOT detection file (frames up to seqLength of a "
                       "seqinfo.ini next to it or one folder up, else formats.mot.MAX_FRAME)")
    track.add_argument("out", metavar="OUT.txt", help="result file to write")
    _common(track)
    track.add_argument("--tracker-preset", metavar="NAME_OR_JSON",
                       help="a built-in tracker preset (mot17, ocsort) or a preset JSON file "
                            "(from `posetrack tune --save-preset`)")  # fmt: skip
    track.add_argument("--no-postprocess", action="store_true", help="ignore the preset's post-processing")
    from fiftyone_posetrack.cli.postprocess import add_postprocess_args

    add_postprocess_args(track)
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
    tune.add_argument("gt", nargs="?", metavar="GT.txt", help="MOT ground-truth file")
    tune.add_argument("det", nargs="?", metavar="DET.txt", help="MOT detection file")
    _common(tune)
    tune.add_argument("--pair", nargs=2, action="append", default=[], metavar=("GT.txt", "DET.txt"),
                      help="a sequence (repeatable): one parameter set is chosen for all of them")  # fmt: skip
    tune.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="values to try for one parameter (repeatable); post.OPTION=... searches "
                           "a post-processing option")  # fmt: skip
    tune.add_argument("--metric", choices=("idf1", "hota", "mota"), default="idf1",
                      help="what to maximise over all sequences together (default: %(default)s)")  # fmt: skip
    tune.add_argument("--postprocess", action="append", default=[], metavar="KEY=VALUE",
                      help="a fixed post-processing option, e.g. interpolate=20 (repeatable)")  # fmt: skip
    tune.add_argument("--save-preset", metavar="FILE.json",
                      help="write the best combination as a tracker preset (use with --tracker-preset)")  # fmt: skip
    tune.add_argument("--frames", metavar="IMG_DIR_OR_VIDEO", help="frames, for appearance features")
    tune.add_argument("--embedder", default="mobilenet", help="ReID embedder with --frames")
    tune.add_argument("--weights", help="checkpoint of a torch ReID embedder")
    tune.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    tune.set_defaults(func=_tune)


def _common(parser) -> None:
    """``--tracker`` and ``--param KEY=VALUE`` (the pipeline's own flags; track-mot without
    ``--tracker`` uses the ocsort tracker preset, tune uses bytetrack)."""
    from fiftyone_posetrack.pipeline.options import OPTIONS, add_arguments

    add_arguments(parser, {k: OPTIONS[k] for k in _TRACKER_OPTIONS})


def _tracker(args, default: str | None) -> tuple[str | None, dict]:
    """The tracker name given (``default`` when none) and the ``--param`` values (unchecked)."""
    from fiftyone_posetrack.pipeline.options import OPTIONS, values_from_args

    values = values_from_args(args, {k: OPTIONS[k] for k in _TRACKER_OPTIONS})
    return values.get("tracker", default), dict(values.get("tracker_params", {}))




def _embedder(args):
    if not args.frames or str(args.embedder).lower() == "none":
        return None
    from fiftyone_posetrack.reid import make_embedder

    kwargs = {"device": args.device}
    if args.weights:
        kwargs["weights"] = args.weights
    return make_embedder(args.embedder, **kwargs)


def _track_mot(args) -> int:
    from fiftyone_posetrack.formats.mot import MAX_FRAME, read_mot, sequence_length_of, write_mot
    from fiftyone_posetrack.cli.postprocess import postprocess_options
    from fiftyone_posetrack.tracking import make_tracker
    from fiftyone_posetrack.tracking.postprocess import postprocess_tracks
    from fiftyone_posetrack.tracking.presets import DEFAULT_TRACKER_PRESET, load_tracker_preset
    from fiftyone_posetrack.tracking.run import track_mot_array

    from fiftyone_posetrack.atomic import check_output_path

    check_output_path(args.out, "OUT.txt")  # before the work; the file is written whole or not at all
    name, params = _tracker(args, None)
    if name and args.tracker_preset:
        raise BadInputError("give --tracker or --tracker-preset, not both")
    if name:
        preset = {"tracker": name, "params": {}, "postprocess": {}}
    else:
        preset = load_tracker_preset(args.tracker_preset or DEFAULT_TRACKER_PRESET)
    post = postprocess_options(args, {} if args.no_postprocess else preset["postprocess"])
    tracker = make_tracker(preset["tracker"], **dict(preset["params"], **params))
    smoother = None
    if args.smooth is not None:
        if not args.frames:
            raise BadInputError("--smooth needs --frames (optical flow runs on the images)")
        from fiftyone_posetrack.tracking.box_smoothing import FlowBoxSmoother

        smoother = FlowBoxSmoother(alpha=args.smooth, max_gap=args.bridge)
    dets = read_mot(args.det, max_frame=sequence_length_of(args.det) or MAX_FRAME)
    if args.frames and not os.path.exists(args.frames):
        raise FileNotFoundError(f"--frames not found: {args.frames}")
    res = track_mot_array(dets, tracker, frames=args.frames, embedder=_embedder(args),
                          smoother=smoother, progress=True)  # fmt: skip
    if post:
        res = postprocess_tracks(res, post)
    write_mot(args.out, res)
    n_ids = len(set(res[:, 1].astype(int).tolist())) if len(res) else 0
    print(f"{len(res)} boxes, {n_ids} tracks -> {args.out}")
    return 0


def _tune(args) -> int:
    from fiftyone_posetrack.formats.mot import read_mot
    from fiftyone_posetrack.tracking.tune import format_table, grid_search, grid_search_sequences, parse_grid

    grid = parse_grid(args.grid)
    if not grid:
        raise BadInputError("give at least one --grid KEY=V1,V2,...")
    pairs = list(args.pair)
    if args.gt or args.det:
        if not (args.gt and args.det):
            raise BadInputError("give GT.txt and DET.txt, or --pair GT.txt DET.txt (repeatable)")
        pairs.insert(0, (args.gt, args.det))
    if not pairs:
        raise BadInputError("give GT.txt DET.txt, or --pair GT.txt DET.txt (repeatable)")
    tracker, base_params = _tracker(args, "bytetrack")
    if args.save_preset:
        from fiftyone_posetrack.atomic import check_output_path

        check_output_path(args.save_preset, "--save-preset")  # before the search
    from fiftyone_posetrack.pipeline.options import key_values

    post = key_values(args.postprocess, "--postprocess")
    if args.frames:  # appearance: one sequence, the original grid search
        if len(pairs) > 1 or post or args.save_preset or args.metric != "idf1":
            raise BadInputError("--frames (appearance) tunes one sequence by IDF1 without post-processing or presets")
        rows = grid_search(read_mot(pairs[0][0]), read_mot(pairs[0][1]), tracker, grid,
                           base_params=base_params, frames=args.frames,
                           embedder=_embedder(args))  # fmt: skip
        print(format_table(rows))
        return 0
    from fiftyone_posetrack.eval.mot import sequence_name

    sequences = {}
    for gt_path, det_path in pairs:
        name = sequence_name(gt_path)
        while name in sequences:
            name += "#"
        sequences[name] = (read_mot(gt_path), read_mot(det_path))
    rows = grid_search_sequences(sequences, tracker, grid, base_params=base_params,
                                 postprocess=post, metric=args.metric)  # fmt: skip
    print(format_table(rows, metrics=("hota", "idf1", "mota", "idsw", "fp", "fn")))
    if args.save_preset:
        from fiftyone_posetrack.tracking.presets import save_tracker_preset

        best = rows[0]
        metrics = {k: best[k] for k in ("hota", "idf1", "mota", "idsw")}
        save_tracker_preset(args.save_preset, tracker, best["tracker_params"], best["postprocess"],
                            metrics=metrics, sequences=list(sequences))  # fmt: skip
        print(f"best ({args.metric}) saved as a tracker preset -> {args.save_preset}")
    return 0
