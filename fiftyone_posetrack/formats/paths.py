"""Names from input files made safe as paths, and the one rule that names a video.

Input files name things that become paths: a MOT ``seqinfo.ini``'s ``name=``
and ``imDir=``, a PoseTrack video's ``vid_id`` / ``video_name`` and its
images' ``file_name``, a COCO image's ``file_name``. Such a name must never
reach outside the folder it is meant for (``name=../../../somewhere/evil``).

- :func:`safe_name` turns a name into one file-name component (separators and
  control characters become ``_``; ``""``, ``"."`` and ``".."`` are refused);
  it is applied to every name that becomes a written file or folder;
- :func:`inside` joins a relative path from a file onto its base folder and
  refuses the result unless it stays inside (absolute paths, ``..`` and
  symlinks that lead out are refused): for paths that are read;
- :func:`video_name` is how exports and evaluations name a video;
- :func:`check_input_path` refuses, with a clear message, an input path that
  cannot name the file or folder expected (a NUL byte, a folder where a file
  is expected).
"""

from __future__ import annotations

import os
import re

from fiftyone_posetrack.types import BadInputError

__all__ = ["safe_name", "inside", "video_name", "unique_names", "check_input_path"]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
#: the longest file-name component most file systems allow (bytes); room is left for an extension
_MAX_BYTES = 200


def safe_name(name, what: str = "name") -> str:
    """``name`` as a single, harmless file-name component.

    Path separators (``/``, ``\\``) and control characters become ``_``, so
    does a leading ``.`` (no hidden files: ``"../.."`` gives ``"_._.."``);
    leading and trailing whitespace is dropped. The result never contains a
    separator, so joined onto a folder it names an entry of that folder.

    Args:
        name: the name as an input file gives it
        what: where it came from, for the error message

    Raises:
        BadInputError: for a name that is empty, ``"."`` or ``".."`` (after
            the replacements) or longer than 200 bytes
    """
    text = _UNSAFE.sub("_", str(name)).strip()
    if text in ("", ".", ".."):
        raise BadInputError(f"{what}: {name!r} cannot name a file or folder")
    if text.startswith("."):  # "../.." -> ".._.." would be a hidden file
        text = "_" + text[1:]
    if len(text.encode("utf-8")) > _MAX_BYTES:
        raise BadInputError(f"{what}: {str(name)[:60]!r}... is longer than {_MAX_BYTES} bytes")
    return text


def inside(base: str | os.PathLike, relative: str, what: str = "path") -> str:
    """``base/relative``, refused unless it stays inside ``base``.

    Symlinks are resolved before the comparison, so a link inside ``base``
    that points out of it is refused too.

    Returns:
        the joined path (not resolved)

    Raises:
        BadInputError: naming ``what``, the path and ``base``
    """
    base = os.fspath(base)
    rel = str(relative)
    joined = os.path.join(base, rel)
    root = os.path.realpath(base)
    real = os.path.realpath(joined)
    if os.path.isabs(rel) or os.path.commonpath([root, real]) != root:
        raise BadInputError(f"{what}: {rel!r} leads outside {base}; paths in input files must stay inside it")
    return joined


def video_name(filepath: str, sequence: str | None = None) -> str:
    """A video's name in exported files and evaluation reports.

    The benchmark name (a sample's ``sequence`` field) when set; else the file
    name without extension, except for files named ``video.*``
    (``posetrack synth``'s layout), which take their folder's name; always
    made safe by :func:`safe_name`.
    """
    if sequence:
        return safe_name(sequence, "sequence")
    stem = os.path.splitext(os.path.basename(filepath))[0]
    if stem == "video":
        stem = os.path.basename(os.path.dirname(os.path.abspath(filepath))) or stem
    return safe_name(stem or "video", "video file name")


def unique_names(names: list[str], reserved: tuple[str, ...] = ("OVERALL",)) -> list[str]:
    """``names`` with repeated (or ``reserved``) ones suffixed ``#2``, ``#3``, ..."""
    out, seen = [], set()
    for base in names:
        name, k = base, 1
        while name in seen or name in reserved:
            k += 1
            name = f"{base}#{k}"
        seen.add(name)
        out.append(name)
    return out


def check_input_path(path: str | os.PathLike, what: str, kind: str = "file") -> str:
    """``path`` as a string, refused unless it names an existing file (``kind="file"``) or folder (``"dir"``).

    Args:
        path: the path given (a string, bytes or path-like)
        what: what it should be, for the message (e.g. ``"MOT file"``)
        kind: ``"file"``, ``"dir"`` or ``"any"``

    Raises:
        BadInputError: for a path holding a NUL byte (no file system can name
            it; Python's own error would be ``embedded null byte``), or that is
            a folder where a file is expected (or the reverse)
        FileNotFoundError: for a path that does not exist
    """
    text = os.fsdecode(os.fspath(path))
    if "\x00" in text:
        raise BadInputError(f"{what}: {text!r} contains a NUL byte (\\x00), which no file or folder name can hold")
    if not os.path.exists(text):
        raise FileNotFoundError(f"{what} not found (no such {'directory' if kind == 'dir' else 'file'}): {text}")
    if kind == "file" and os.path.isdir(text):
        raise BadInputError(f"{what}: {text} is a folder, expected a file")
    if kind == "dir" and not os.path.isdir(text):
        raise BadInputError(f"{what}: {text} is a file, expected a folder")
    return text
