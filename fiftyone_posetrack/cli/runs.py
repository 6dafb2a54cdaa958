"""``posetrack runs``: the run records of a dataset (which run wrote which labels, and how)."""

from __future__ import annotations


def register(subparsers) -> None:
    runs = subparsers.add_parser(
        "runs",
        help="list the pose-tracking runs recorded on a dataset, or show one",
        description=(
            "Lists the runs that wrote labels to a dataset (key, job, fields, start time, video "
            "status counts, models), or shows one run's record as JSON: every option, each model "
            "file's path and sha256, package versions, per-video status and timings, who ran it."
        ),
    )
    runs.add_argument("dataset", help="the FiftyOne dataset")
    runs.add_argument("key", nargs="?", help="a run key (posetrack_run_N): show its full record")
    runs.set_defaults(func=_runs)


def _runs(args) -> int:
    from fiftyone_posetrack.fo.runs import format_run, format_runs, get_run, list_runs

    if args.key:
        print(format_run(get_run(args.dataset, args.key)))
    else:
        print(format_runs([get_run(args.dataset, key) for key in list_runs(args.dataset)]))
    return 0
