"""The ``posetrack`` command line.

Each module of this package adds its subcommands through a
``register(subparsers)`` function; handlers import heavy dependencies lazily so
that ``posetrack --help`` stays fast. A handler signals bad input by raising
:class:`fiftyone_posetrack.types.BadInputError` (or ``FileNotFoundError``):
it is printed as ``posetrack: error: ...`` with exit status 2, never as a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from fiftyone_posetrack.types import BadInputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posetrack",
        description="Multi-person pose tracking for FiftyOne video datasets.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # __main__ and private helpers
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (BadInputError, FileNotFoundError, NotADirectoryError) as e:
        print(f"posetrack: error: {e}", file=sys.stderr)
        _skip_database_cleanup_if_lost(e)
        return 2
    except KeyboardInterrupt:
        print("posetrack: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _skip_database_cleanup_if_lost(error: Exception) -> None:
    """After a lost database, drops FiftyOne's exit-time cleanup (it would wait 30 s for the database)."""
    jobs = sys.modules.get("fiftyone_posetrack.fo.jobs")
    if jobs is None or not isinstance(error, jobs.DatabaseUnavailableError):
        return
    import atexit

    from fiftyone.core.odm import database

    cleanup = getattr(database, "_delete_non_persistent_datasets_if_allowed", None)
    if cleanup is not None:
        atexit.unregister(cleanup)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
