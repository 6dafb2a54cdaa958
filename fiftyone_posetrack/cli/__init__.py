"""The ``posetrack`` command line.

Each module of this package adds its subcommands through a
``register(subparsers)`` function; handlers import heavy dependencies lazily so
that ``posetrack --help`` stays fast. A handler signals a problem by raising a
:class:`fiftyone_posetrack.types.PosetrackError`; it is printed as
``posetrack: error: ...``, never as a traceback, with the exit status of its
class:

====  ==========================================================================
2     bad input (:class:`~fiftyone_posetrack.types.BadInputError`, a missing file)
3     the database is unavailable (:class:`~fiftyone_posetrack.types.DatabaseUnavailableError`)
4     a model is unavailable (:class:`~fiftyone_posetrack.types.ModelUnavailableError`)
5     an optional dependency is missing (:class:`~fiftyone_posetrack.types.MissingDependencyError`)
130   interrupted (Ctrl-C); 143: terminated (SIGTERM) during a job, its claim released
====  ==========================================================================
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from fiftyone_posetrack.types import DatabaseUnavailableError, PosetrackError


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
    except (PosetrackError, FileNotFoundError, NotADirectoryError, ConnectionError) as e:
        e = _database_error(e) or e
        if isinstance(e, ConnectionError):  # another connection (not the database's): not ours to name
            raise
        print(f"posetrack: error: {e}", file=sys.stderr)
        _skip_database_cleanup_if_lost(e)
        return getattr(e, "exit_code", 2)
    except Exception as e:
        db = _database_error(e)
        if db is None:
            raise
        print(f"posetrack: error: {db}", file=sys.stderr)
        _skip_database_cleanup_if_lost(db)
        return db.exit_code
    except KeyboardInterrupt as e:
        if type(e).__name__ == "Terminated":  # SIGTERM during a job (fiftyone_posetrack.fo.jobs.Terminated)
            print("posetrack: terminated (SIGTERM); the video being processed was released", file=sys.stderr)
            return 143
        print("posetrack: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _database_error(error: Exception) -> DatabaseUnavailableError | None:
    """FiftyOne's "Could not connect to `mongod`" and pymongo's connection failures, as a
    :class:`DatabaseUnavailableError` naming the database (None for other errors)."""
    errors = sys.modules.get("pymongo.errors")
    pymongo_failure = errors is not None and (
        isinstance(error, errors.ConnectionFailure) or isinstance(error.__cause__, errors.ConnectionFailure)
    )
    if isinstance(error, DatabaseUnavailableError) or not (pymongo_failure or "mongod" in str(error)):
        return None
    from fiftyone_posetrack.fo.jobs import database_name

    first_line = str(error).split(", Timeout:")[0].split("\n")[0][:300]
    return DatabaseUnavailableError(
        f"could not reach {database_name()} ({type(error).__name__}: {first_line}); start it or check "
        "FIFTYONE_DATABASE_URI, then rerun"
    )


def _skip_database_cleanup_if_lost(error: Exception) -> None:
    """After a lost database, drops FiftyOne's exit-time cleanup (it would wait 30 s for the database)."""
    if not isinstance(error, DatabaseUnavailableError):
        return
    import atexit

    from fiftyone.core.odm import database

    cleanup = getattr(database, "_delete_non_persistent_datasets_if_allowed", None)
    if cleanup is not None:
        atexit.unregister(cleanup)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
