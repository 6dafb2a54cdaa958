"""``posetrack run``: the whole pipeline over videos or a dataset (``posetrack demo``: :mod:`.demo`)."""

from __future__ import annotations

import argparse
import contextlib
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


_CLI_JOB_OPTIONS = ("flush_frames", "stale_after", "engine", "workers", "ray_address")


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """``--flush-frames``, ``--stale-after``, ``--engine``, ``--workers`` and ``--ray-address``
    (:data:`~fiftyone_posetrack.pipeline.options.JOB_OPTIONS`)."""
    from fiftyone_posetrack.pipeline.options import JOB_OPTIONS, add_arguments

    add_arguments(parser, {k: JOB_OPTIONS[k] for k in _CLI_JOB_OPTIONS})


def job_options_from_args(args) -> dict:
    """``{"flush_frames": ..., "stale_after": ..., "engine": ..., ...}``: the flags given, else the defaults."""
    from fiftyone_posetrack.pipeline.options import JOB_OPTIONS, values_from_args

    options = {k: JOB_OPTIONS[k] for k in _CLI_JOB_OPTIONS}
    return {k: o.default for k, o in options.items()} | values_from_args(args, options)


@contextlib.contextmanager
def dataset_kept(name: str):
    """Turns any failure of a command on dataset ``name`` into a :class:`BadInputError` saying so when
    the dataset was deleted meanwhile (by another process, the App): FiftyOne then fails on whatever
    it writes next (``ValueError: Failed to update document``, a missing collection, ...)."""
    try:
        yield
    except Exception as e:
        import fiftyone as fo

        try:
            gone = not fo.dataset_exists(name)
        except Exception:  # noqa: BLE001 - the database itself is gone: the original error says so
            gone = False
        if gone:
            raise BadInputError(
                f"dataset {name!r} was deleted while the command was working on it ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200] if str(e) else ''}); its labels are gone with it: "
                "import the videos again and rerun"
            ) from None
        raise


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run",
        help="run detection, tracking and pose estimation on videos or a dataset",
        description="Runs the whole pose-tracking pipeline and writes frame labels to a FiftyOne dataset.",
    )
    run.add_argument("videos", nargs="*", help="video files or folders (added to --dataset)")
    run.add_argument("--dataset", help="the FiftyOne dataset (created if needed; required without videos)")
    add_config_arguments(run)
    add_job_arguments(run)
    run.set_defaults(func=_run)


def _run(args) -> int:
    import fiftyone as fo

    from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset
    from fiftyone_posetrack.fo.run import run

    from fiftyone_posetrack.fo.engine_ray import check_engine

    config = config_from_args(args)
    job = job_options_from_args(args)
    check_engine(job["engine"], job["workers"], job["ray_address"])  # before a dataset is made or videos added
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
    with dataset_kept(name):
        summary = run(view, config, **job)
    claimed = summary.claimed
    by = ", ".join(f"{n} by run {key}" for key, n in sorted(_count(claimed.values()).items()))
    print(
        f"dataset {dataset.name!r}: {len(summary.processed)} video(s) processed, "
        f"{len(summary.skipped) - len(claimed)} already done, "
        + (f"{len(claimed)} claimed by other runs ({by}; rerun when they are done or stale), " if claimed else "")
        + f"{summary.frames} frames"
        + (f" (run record {summary.run_key!r}: posetrack runs {dataset.name} {summary.run_key})" if summary.run_key else "")
    )
    _print_timings(summary.timings, summary.frames)
    return 0


def _count(values) -> dict:
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def _print_timings(timings: dict, frames: int) -> None:
    total = sum(timings.values())
    if not total:
        return
    print(f"{'stage':<16}{'seconds':>9}{'share':>8}")
    for stage, sec in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"{stage:<16}{sec:9.2f}{100 * sec / total:7.1f}%")
    print(f"{'total':<16}{total:9.2f}   ({frames / total:.1f} frames/s)")
