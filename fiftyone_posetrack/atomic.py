"""Output files that appear whole or not at all.

Every file this package writes (exports, MOT results, presets, synthetic
videos and their ground truth) goes through this module: the bytes are
written to a temporary file in the target's own folder (so the final rename
never crosses file systems), flushed and ``fsync``-ed, then moved onto the
target with :func:`os.replace`, which is atomic on POSIX and Windows. On any
failure -- an exception, a full disk (``ENOSPC``), a file-size limit
(``EFBIG``), ``KeyboardInterrupt`` -- the temporary file and the folders
created for it are removed, and an existing target is left byte-identical.

- :func:`atomic_write` opens one file for writing (a context manager);
- :class:`Staged` collects several files (a video and its ground truth, one
  export file per video) and moves them into place together when every one
  is written: none is replaced unless all were written;
- :func:`check_output_path` refuses paths that cannot name an output file
  (empty, a NUL byte, an existing folder) with a :class:`BadInputError`
  naming the path, and a folder this process cannot write with a
  :class:`PermissionError`: before any work is done.

Temporary files are named ``.<name>.<random>.part<ext>`` (hidden, and with
the target's extension, so that tools choosing a format by extension, such as
ffmpeg, write the right one).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets

from fiftyone_posetrack.types import BadInputError

__all__ = ["atomic_write", "check_output_path", "Staged"]


def check_output_path(path, what: str = "output file") -> str:
    """``path`` as a ``str``, refused when it cannot name an output file.

    Raises:
        BadInputError: for a non-path, an empty path, a NUL byte, an
            existing folder or a file where a folder would be, naming the path
        PermissionError: when the folder (or the one the missing folders
            would be made in) is not writable
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise BadInputError(f"{what}: expected a file path, got {path!r}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise BadInputError(f"{what}: the path is empty")
    if "\x00" in path:
        raise BadInputError(f"{what}: the path {path!r} contains a NUL byte")
    if os.path.isdir(path):
        raise BadInputError(f"{what}: {path} is a folder; give a file path")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)  # the folder the missing ones would be made in
    if not os.path.isdir(folder):
        raise BadInputError(f"{what}: {path} cannot be made: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"Permission denied (cannot write in {folder})", path)
    return path


def _missing_folders(folder: str) -> list[str]:
    """The ancestors of ``folder`` (itself included) that do not exist, deepest first."""
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def _remove_empty(folders: list[str]) -> None:
    for folder in folders:  # deepest first
        try:
            os.rmdir(folder)
        except OSError:
            break  # not empty (someone else wrote there) or gone: leave it


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str) -> None:
    """Makes a rename in ``folder`` durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Staged:
    """Several output files, moved into place together once all are written.

    ::

        with Staged() as stage:
            write_mot(stage.path("out/gt/gt.txt"), rows)
            write_seqinfo(stage.path("out/seqinfo.ini"), ...)
        # both files are in place here; after an exception, neither was touched

    :meth:`path` returns the temporary path to write instead of the target;
    the folders it needs are created (and removed again on failure when they
    stay empty). On leaving the block without an exception every temporary
    file is ``fsync``-ed and renamed onto its target; with one, all are
    removed. A temporary file its writer never created is an error (the
    target would silently stay as it was).
    """

    def __init__(self):
        self._files: list[tuple[str, str]] = []  # (tmp, target)
        self._created: list[str] = []

    def path(self, target, what: str = "output file") -> str:
        """A temporary path in ``target``'s folder to write ``target``'s bytes to."""
        target = check_output_path(target, what)
        if any(t == os.path.abspath(target) for _, t in self._files):
            raise BadInputError(f"{what}: {target} is written twice")
        folder = os.path.dirname(os.path.abspath(target))
        missing = _missing_folders(folder)
        os.makedirs(folder, exist_ok=True)
        self._created = missing + self._created
        base, ext = os.path.splitext(os.path.basename(target))
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.part{ext}")
        self._files.append((tmp, os.path.abspath(target)))
        return tmp

    def commit(self) -> None:
        """fsyncs every temporary file and renames it onto its target."""
        for tmp, target in self._files:
            if not os.path.isfile(tmp):
                raise OSError(f"{target} was not written (its temporary file {tmp} is missing)")
            _fsync_path(tmp)
            _apply_mode(tmp, target)
        for tmp, target in self._files:
            os.replace(tmp, target)
        for folder in dict.fromkeys(os.path.dirname(t) for _, t in self._files):
            _fsync_folder(folder)
        self._files, self._created = [], []

    def discard(self) -> None:
        """Removes every temporary file (and the folders made for them that stay empty)."""
        for tmp, _ in self._files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        _remove_empty(self._created)
        self._files, self._created = [], []

    def __enter__(self) -> "Staged":
        return self

    def _name_target(self, error: OSError) -> None:
        """Makes an OSError of a temporary file (or of an unnamed write) name the target instead."""
        name = error.filename
        for tmp, target in self._files:
            stem = "." + os.path.splitext(os.path.basename(tmp))[0]
            if name == tmp or (isinstance(name, str) and os.path.basename(name).startswith(stem)):
                error.filename = target
                return
        if name is None and len(self._files) == 1:
            error.filename = self._files[0][1]

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            if isinstance(exc, OSError):
                self._name_target(exc)
            self.discard()
            return
        try:
            self.commit()
        except BaseException as e:
            if isinstance(e, OSError):
                self._name_target(e)
            self.discard()
            raise


def _apply_mode(tmp: str, target: str) -> None:
    """Gives ``tmp`` the permissions of the file it replaces, else ``0o666`` less the umask."""
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", encoding: str | None = "utf-8", what: str = "output file"):
    """Opens ``path`` for writing such that it appears whole or not at all.

    ::

        with atomic_write("out/result.json") as f:
            json.dump(result, f)

    Args:
        path: the target file; its folder is created when missing
        mode: ``"w"`` (text) or ``"wb"`` (bytes)
        encoding: the text encoding (ignored for ``"wb"``)
        what: what the file is, for error messages

    Raises:
        BadInputError: for a path that cannot name a file (see
            :func:`check_output_path`)
        OSError: when the folder cannot be made or written (permission
            denied, disk full, ...); the target is then as it was
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    with Staged() as stage:
        tmp = stage.path(path, what)
        kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": None}
        with open(tmp, "x" + mode[1:], **kwargs) as f:
            yield f
            f.flush()
