"""``posetrack postprocess``: link, filter, interpolate and smooth finished tracks.

::

    posetrack postprocess res.txt res_post.txt --interpolate 20 --gsi --link
    posetrack postprocess --dataset NAME --in-field pred_detections --out-field pred_post --interpolate 20

On a MOT result file it writes a new file; on a dataset it writes a new frame
field (the input field only with ``--overwrite-input``). The same options
exist on ``posetrack track-mot``.
"""

from __future__ import annotations

from fiftyone_posetrack.types import BadInputError

#: CLI flag -> PostprocessConfig field
_FLAGS = {
    "interpolate": "interpolate",
    "gsi": "gsi",
    "gsi_tau": "gsi_tau",
    "min_length": "min_length",
    "min_score": "min_score",
    "link": "link",
    "link_max_gap": "link_max_gap",
    "link_max_distance": "link_max_distance",
}


def add_postprocess_args(parser) -> None:
    """The post-processing options (defaults None = not given)."""
    g = parser.add_argument_group("track post-processing")
    g.add_argument("--interpolate", type=int, metavar="N", help="fill gaps of up to N frames inside a track linearly")
    g.add_argument("--gsi", action="store_const", const=True, help="Gaussian-smoothed interpolation (StrongSORT)")
    g.add_argument("--no-gsi", dest="gsi", action="store_const", const=False, help="no GSI")
    g.add_argument("--gsi-tau", type=float, metavar="FRAMES", help="GSI smoothness (default 10)")
    g.add_argument("--min-length", type=int, metavar="N", help="remove tracks with fewer than N boxes")
    g.add_argument("--min-score", type=float, metavar="S", help="remove tracks whose mean score is below S")
    g.add_argument("--link", action="store_const", const=True, help="join tracklets of one person leaving and re-entering")
    g.add_argument("--no-link", dest="link", action="store_const", const=False, help="no linking")
    g.add_argument("--link-max-gap", type=int, metavar="FRAMES", help="largest gap a link bridges (default 60)")
    g.add_argument("--link-max-distance", type=float, metavar="HEIGHTS",
                   help="largest motion-prediction distance of a link, in box heights (default 0.5)")  # fmt: skip


def postprocess_options(args, base: dict | None = None) -> dict:
    """``base`` updated with the options given on the command line (validated)."""
    from fiftyone_posetrack.tracking.postprocess import PostprocessConfig

    out = dict(base or {})
    for flag, key in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            out[key] = value
    PostprocessConfig(**out)
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "postprocess",
        help="link, filter, interpolate and smooth tracks (MOT file or dataset field)",
        description=(
            "Post-processes finished tracks: tracklet linking, removal of short / low-score tracks, "
            "linear interpolation of gaps and Gaussian-smoothed interpolation (GSI). Give IN.txt OUT.txt "
            "(MOT results) or --dataset with --in-field / --out-field (a new frame field)."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="IN.txt OUT.txt", help="MOT result file and the file to write")
    p.add_argument("--num-frames", type=int, help="with files: the video's length (boxes after it are an error)")
    p.add_argument("--dataset", help="a FiftyOne video dataset")
    p.add_argument("--in-field", default="pred_detections", help="tracked Detections frame field (default: %(default)s)")
    p.add_argument("--out-field", help="frame field to write (default: IN_FIELD_post)")
    p.add_argument("--overwrite", action="store_true", help="recompute videos already done")
    p.add_argument("--overwrite-input", action="store_true", help="allow --out-field to be --in-field")
    add_postprocess_args(p)
    p.set_defaults(func=_postprocess)


def _postprocess(args) -> int:
    options = postprocess_options(args)
    if not options:
        raise BadInputError("nothing to do: give at least one of --interpolate, --gsi, --min-length, --min-score, --link")
    if args.dataset:
        if args.inputs:
            raise BadInputError("give either IN.txt OUT.txt or --dataset, not both")
        import fiftyone as fo

        from fiftyone_posetrack.fo.postprocess import postprocess_tracks_field

        if args.dataset not in fo.list_datasets():
            raise BadInputError(f"dataset {args.dataset!r} not found")
        out_field = args.out_field or f"{args.in_field}_post"
        from fiftyone_posetrack.cli.run import dataset_kept

        with dataset_kept(args.dataset):
            summary = postprocess_tracks_field(
                fo.load_dataset(args.dataset), args.in_field, out_field, options,
                overwrite=args.overwrite, overwrite_input=args.overwrite_input, raise_on_error=True,
            )  # fmt: skip
        print(f"{summary} -> {args.dataset}.frames.{out_field}")
        return 0
    if len(args.inputs) != 2:
        raise BadInputError("give IN.txt OUT.txt (MOT result files), or --dataset")
    from fiftyone_posetrack.formats.mot import read_mot, write_mot
    from fiftyone_posetrack.tracking.postprocess import postprocess_tracks

    from fiftyone_posetrack.atomic import check_output_path

    src, dst = args.inputs
    check_output_path(dst, "OUT.txt")  # before the work; the file is written whole or not at all
    res = read_mot(src)
    out, interp = postprocess_tracks(res, options, num_frames=args.num_frames, return_mask=True)
    write_mot(dst, out)
    print(f"{len(res)} boxes -> {len(out)} boxes ({int(interp.sum())} interpolated), "
          f"{len(set(out[:, 1].astype(int).tolist()))} tracks -> {dst}")  # fmt: skip
    return 0
