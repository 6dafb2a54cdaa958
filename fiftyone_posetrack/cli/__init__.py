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
141   standard output could not be written (closed, or a closed pipe such as
      ``| head -c1``: 128 + SIGPIPE, the code a shell reports for a process
      stopped by a closed pipe); files the command writes (``--output``) are
      written all the same
====  ==========================================================================

Files that cannot be read or written (a folder where a file goes, permission
denied, a full disk, a NUL byte in a path) are bad input (2): the message
names the file and the reason. Output files are written whole or not at all
(:mod:`fiftyone_posetrack.atomic`), so a failed command leaves no partial file.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
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


#: the exit status when standard output could not be written (128 + SIGPIPE)
STDOUT_FAILED = 141


class _ClosedStdout:
    """``sys.stdout`` when the process started with file descriptor 1 closed (``posetrack ... >&-``).

    Python then sets ``sys.stdout`` to None and ``print`` silently drops
    everything: a command would exit 0 with its results lost. Writing here
    raises instead, so the command reports it and exits :data:`STDOUT_FAILED`.
    """

    def write(self, text):
        raise OSError(errno.EBADF, "standard output is closed")

    def flush(self):
        pass


def _guard_stdout() -> None:
    if sys.stdout is not None:
        return
    try:  # hold descriptor 1, so that no file or socket opened later becomes "stdout" by chance
        fd = os.open(os.devnull, os.O_WRONLY)
        if fd != 1:
            os.close(fd)
    except OSError:
        pass
    sys.stdout = _ClosedStdout()


def _stdout_failed(error: OSError) -> int:
    """Reports a failed write to standard output (a closed pipe, a closed descriptor)."""
    try:  # later writes (the interpreter's flush at exit) go nowhere rather than failing again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    reason = "a closed pipe" if isinstance(error, BrokenPipeError) else error.strerror or str(error)
    print(
        f"posetrack: error: could not write the results to standard output ({reason}); "
        "files the command writes (e.g. --output) were written; rerun with the output "
        "redirected to a file, or give --output FILE",
        file=sys.stderr,
    )
    return STDOUT_FAILED


def _stdout_pipe_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (``POLLERR`` on descriptor 1)."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _is_stdout_error(error: BaseException) -> bool:
    if isinstance(error, BrokenPipeError):  # ours, not a pipe to a child process or a socket
        return _stdout_pipe_closed()
    return isinstance(error, OSError) and error.errno == errno.EBADF and "standard output" in str(error)


def _file_error(error: OSError) -> str:
    """The message of an OSError on a file: the file, the reason and what to do."""
    name = error.filename if error.filename is not None else ""
    what = os.strerror(error.errno) if error.errno else str(error)
    if error.strerror:
        what = error.strerror
    hint = {
        errno.ENOSPC: "the disk is full; nothing was written: free some space and rerun",
        errno.EFBIG: "the file would exceed the size limit; nothing was written",
        errno.EDQUOT: "the disk quota is exceeded; nothing was written",
        errno.EACCES: "choose a path you can write, or change its permissions",
        errno.EPERM: "choose a path you can write, or change its permissions",
        errno.EISDIR: "give a file path, not a folder",
        errno.EROFS: "the file system is read-only; choose another path",
    }.get(error.errno)
    text = f"{name}: {what}" if name else (what if error.errno else str(error))
    if error.filename2:
        text += f" (-> {error.filename2})"
    return f"{text}; {hint}" if hint else text


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _guard_stdout()
    try:
        try:
            result = args.func(args)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit (exit 120, a traceback)
    except OSError as e:
        if _is_stdout_error(e):
            return _stdout_failed(e)
        if isinstance(e, ConnectionError) or _database_error(e) is not None:
            return _other_error(e)
        print(f"posetrack: error: {_file_error(e)}", file=sys.stderr)
        return 2
    except ValueError as e:
        if "embedded null byte" in str(e) or "embedded null character" in str(e):
            print(f"posetrack: error: a path contains a NUL byte ({e}); give a path without one", file=sys.stderr)
            return 2
        return _other_error(e)
    except BaseException as e:
        return _other_error(e)
    return int(result or 0)


def _other_error(error: BaseException) -> int:
    try:
        raise error
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
