"""MOTChallenge text files.

One line per box::

    frame, id, bb_left, bb_top, bb_width, bb_height, conf, x, y, z     (MOT15 / det / results)
    frame, id, bb_left, bb_top, bb_width, bb_height, conf, class, visibility   (MOT16+ gt)

In MOT15 files (10 columns) columns 8-10 are world coordinates (usually -1,
but not always: TUD-Stadtmitte's ground truth has real values); lines with 10
or more columns therefore load as class = -1 and visibility = -1, which every
consumer reads as "unknown".

Frames are 1-based; boxes are ``[x, y, w, h]`` in pixels. The reader returns one
float64 array with the columns above (missing trailing columns filled with -1,
class and visibility with 1), so both dialects load the same way.

The reader coerces nothing: a file is refused, naming ``file:line`` and the
value, when it is not UTF-8 (or holds non-ASCII characters), when a value is
not a plain decimal number (``1_0``, ``0x1``, ``"0.9"``, ``high``), NaN or
inf, when a frame, id or class is not an integer (``1.5``), a frame is below 1
or above ``max_frame`` (default :data:`MAX_FRAME`), an id's magnitude exceeds
:data:`MAX_ID`, a box has a negative size, a visibility is outside ``[0, 1]``
(``-1`` = unknown), or an id (>= 0) appears twice in one frame.
"""

from __future__ import annotations

import configparser
import os

import numpy as np

from fiftyone_posetrack.types import BadInputError

#: column indices of a MOT array
FRAME, ID, X, Y, W, H, CONF, CLASS, VIS = range(9)

#: the highest frame number :func:`read_mot` accepts unless told otherwise: about 9 hours at 30 fps,
#: far beyond any benchmark sequence (MOT17's longest has 1050 frames, DanceTrack's 2400). Frames
#: are iterated by the trackers and evaluators, so a stray ``100000000`` must not make them loop for hours
MAX_FRAME = 1_000_000
#: the largest track id magnitude: every integer up to it is exact in the float64 array (and in
#: MongoDB's int64), so distinct ids in a file stay distinct
MAX_ID = 2**53 - 1

_NAMES = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "conf", "class", "visibility")
def read_seqinfo(path: str | os.PathLike) -> dict[str, str]:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``, keys lower-cased.

    Raises:
        BadInputError: when the file does not parse or has no ``[Sequence]`` section
    """
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: not a seqinfo.ini file ({e})") from None
    if not parser.has_section("Sequence"):
        raise BadInputError(f"{path}: no [Sequence] section")
    return {k.lower(): v.strip() for k, v in parser.items("Sequence")}


def sequence_length_of(det_path: str | os.PathLike) -> int | None:
    """``seqLength`` of the sequence a MOT file belongs to, or None when unknown.

    Looks for ``seqinfo.ini`` next to the file and one folder up (MOTChallenge's
    ``SEQ/det/det.txt`` and ``SEQ/gt/gt.txt`` next to ``SEQ/seqinfo.ini``).
    """
    folder = os.path.dirname(os.path.abspath(det_path))
    for candidate in (folder, os.path.dirname(folder)):
        info_path = os.path.join(candidate, "seqinfo.ini")
        if os.path.isfile(info_path):
            value = read_seqinfo(info_path).get("seqlength")
            if value is None:
                return None
            try:
                return int(value)
            except ValueError:
                raise BadInputError(f"{info_path}: seqlength must be a number, got {value!r}") from None
    return None


def read_mot(
    path: str | os.PathLike,
    min_columns: int = 6,
    max_frame: int | None = MAX_FRAME,
    unique_ids: bool = True,
) -> np.ndarray:
    """Reads a MOT text file into an ``(N, 9)`` float64 array sorted by frame.

    Args:
        path: the ``.txt`` file (comma or whitespace separated, UTF-8 / ASCII)
        min_columns: the fewest columns a line may have
        max_frame: the highest frame number accepted (e.g. the video's frame
            count or ``seqinfo.ini``'s ``seqLength``); None: no bound
        unique_ids: refuse an id (>= 0) repeated within a frame (ground truth
            and tracker results); ids < 0 (``-1``: untracked detections) may repeat

    Returns:
        ``(N, 9)`` array ``frame, id, x, y, w, h, conf, class, visibility``

    Raises:
        FileNotFoundError: if ``path`` does not exist
        BadInputError: for a path that is not a file (a folder, a NUL byte) and
            for every refusal of the module docstring, naming ``file:line`` and the value
    """
    from fiftyone_posetrack.formats.paths import check_input_path

    path = check_input_path(path, "MOT file", kind="file")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BadInputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            "MOT files hold plain ASCII numbers"
        ) from None
    rows, lines, texts = [], [], []
    for lineno, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        values = _parse_line(line, path, lineno)
        if len(values) < min_columns:
            raise BadInputError(
                f"{path}:{lineno}: expected at least {min_columns} columns "
                f"(frame, id, x, y, w, h, ...), got {len(values)}: {line[:80]!r}"
            )
        row = values[:9] + [-1.0] * (9 - min(len(values), 9))
        if len(values) >= 10:  # MOT15: x, y, z world coordinates, not class / visibility
            row[CLASS] = row[VIS] = -1.0
        if len(values) < 8:
            row[CLASS] = 1.0
        if len(values) < 9:
            row[VIS] = 1.0
        if len(values) < 7:
            row[CONF] = 1.0
        rows.append(row)
        lines.append(lineno)
        texts.append(line)
    if not rows:
        return np.zeros((0, 9))
    data = np.asarray(rows, dtype=np.float64)
    _validate(data, np.asarray(lines), texts, path, max_frame, unique_ids)
    order = np.argsort(data[:, FRAME], kind="stable")
    return data[order]


def _parse_line(line: str, path: str, lineno: int) -> list[float]:
    """The numbers of one line; plain decimal numbers only (``float()`` alone would take ``1_0``, ``١``)."""
    parts = line.replace(",", " ").split()
    if line.isascii() and "_" not in line:
        try:
            return [float(p) for p in parts]
        except ValueError:
            pass
    for p in parts:
        try:
            ok = p.isascii() and "_" not in p and float(p) is not None
        except ValueError:
            ok = False
        if not ok:
            raise BadInputError(
                f"{path}:{lineno}: not a MOT line: {p[:40]!r} is not a plain decimal number (MOT lines "
                f"hold numbers such as 1, 0.5, -1, 1e3): {line[:80]!r}"
            )
    return [float(p) for p in parts]  # only non-ASCII whitespace between plain numbers


def _validate(data, lines, texts, path, max_frame, unique_ids) -> None:
    def refuse(mask, what):
        i = int(np.flatnonzero(mask)[0])
        more = int(mask.sum()) - 1
        also = f" (and {more} more line(s))" if more else ""
        raise BadInputError(f"{path}:{lines[i]}: {what(data[i])}: {texts[i][:80]!r}{also}")

    finite = np.isfinite(data)
    if not finite.all():
        col = lambda r: _NAMES[int(np.flatnonzero(~np.isfinite(r))[0])]  # noqa: E731
        refuse(~finite.all(axis=1), lambda r: f"{col(r)} is NaN or inf")
    for c in (FRAME, ID, CLASS):
        bad = data[:, c] != np.round(data[:, c])
        if bad.any():
            refuse(bad, lambda r, c=c: f"{_NAMES[c]} {r[c]:g} is not an integer")
    bad = data[:, FRAME] < 1
    if bad.any():
        refuse(bad, lambda r: f"frame {r[FRAME]:g} is < 1 (MOT frames are 1-based)")
    if max_frame is not None:
        bad = data[:, FRAME] > max_frame
        if bad.any():
            refuse(bad, lambda r: f"frame {r[FRAME]:.0f} is beyond the last frame allowed, {max_frame} "
                   "(the video's or seqinfo.ini's length, else formats.mot.MAX_FRAME)")
    bad = np.abs(data[:, ID]) > MAX_ID
    if bad.any():
        refuse(bad, lambda r: f"id {r[ID]:g} is beyond the largest track id, 2**53 - 1")
    bad = (data[:, W] < 0) | (data[:, H] < 0)
    if bad.any():
        refuse(bad, lambda r: f"negative width or height ({r[W]:g} x {r[H]:g})")
    vis = data[:, VIS]
    bad = ((vis < 0) & (vis != -1)) | (vis > 1)
    if bad.any():
        refuse(bad, lambda r: f"visibility {r[VIS]:g} is outside [0, 1] (-1: unknown)")
    if unique_ids:
        tracked = np.flatnonzero(data[:, ID] >= 0)
        pairs = data[tracked][:, [FRAME, ID]]
        order = np.lexsort((pairs[:, 1], pairs[:, 0]))
        same = (np.diff(pairs[order], axis=0) == 0).all(axis=1)
        if same.any():
            dup = np.zeros(len(data), dtype=bool)
            dup[tracked[order[1:][same]]] = True
            refuse(dup, lambda r: f"id {r[ID]:.0f} appears twice in frame {r[FRAME]:.0f}")


def write_mot(path: str | os.PathLike, data: np.ndarray, gt: bool = False) -> None:
    """Writes an ``(N, >=6)`` MOT array, sorted by frame then id.

    Args:
        path: the output ``.txt`` file; its folder is created. The file is
            written under a temporary name and renamed into place
            (:func:`fiftyone_posetrack.atomic.atomic_write`)
        data: rows ``frame, id, x, y, w, h[, conf, class, visibility]``
        gt: write the MOT16+ ground-truth dialect (``conf, class, visibility``)
            rather than the results dialect (``conf, -1, -1, -1``)
    """
    data = np.asarray(data, dtype=np.float64).reshape(-1, data.shape[1] if np.ndim(data) == 2 else 9)
    full = np.full((len(data), 9), -1.0)
    full[:, : min(data.shape[1], 9)] = data[:, :9]
    if data.shape[1] < 7:
        full[:, CONF] = 1.0
    if gt and data.shape[1] < 9:
        full[:, CLASS] = 1.0 if data.shape[1] < 8 else full[:, CLASS]
        full[:, VIS] = 1.0
    order = np.lexsort((full[:, ID], full[:, FRAME]))
    full = full[order]
    from fiftyone_posetrack.atomic import atomic_write

    with atomic_write(path, what="MOT file") as f:  # whole or not at all (a full disk leaves no partial file)
        for r in full:
            head = f"{int(r[FRAME])},{int(r[ID])},{r[X]:.10g},{r[Y]:.10g},{r[W]:.10g},{r[H]:.10g}"
            if gt:
                f.write(f"{head},{r[CONF]:g},{int(r[CLASS])},{r[VIS]:.4g}\n")
            else:
                f.write(f"{head},{r[CONF]:.4g},-1,-1,-1\n")


def split_frames(data: np.ndarray) -> dict[int, np.ndarray]:
    """Groups a MOT array by frame: ``{frame: rows}`` (frames with no rows absent)."""
    if len(data) == 0:
        return {}
    frames = data[:, FRAME].astype(np.int64)
    order = np.argsort(frames, kind="stable")
    frames, data = frames[order], data[order]
    cuts = np.flatnonzero(np.diff(frames)) + 1
    return {int(chunk[0, FRAME]): chunk for chunk in np.split(data, cuts)}
