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
"""

from __future__ import annotations

import os

import numpy as np

from fiftyone_posetrack.types import BadInputError

#: column indices of a MOT array
FRAME, ID, X, Y, W, H, CONF, CLASS, VIS = range(9)


def read_mot(path: str | os.PathLike, min_columns: int = 6) -> np.ndarray:
    """Reads a MOT text file into an ``(N, 9)`` float64 array sorted by frame.

    Args:
        path: the ``.txt`` file (comma or whitespace separated)
        min_columns: the fewest columns a line may have

    Returns:
        ``(N, 9)`` array ``frame, id, x, y, w, h, conf, class, visibility``

    Raises:
        FileNotFoundError: if ``path`` does not exist
        BadInputError: on unparseable lines, NaN values, negative sizes or
            frames < 1, naming the file and line
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MOT file not found: {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.replace(",", " ").split()
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise BadInputError(f"{path}:{lineno}: not a MOT line: {line[:80]!r}") from None
            if len(values) < min_columns:
                raise BadInputError(
                    f"{path}:{lineno}: expected at least {min_columns} columns "
                    f"(frame, id, x, y, w, h, ...), got {len(values)}"
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
    if not rows:
        return np.zeros((0, 9))
    data = np.asarray(rows, dtype=np.float64)
    _validate(data, path)
    order = np.argsort(data[:, FRAME], kind="stable")
    return data[order]


def _validate(data: np.ndarray, path: str) -> None:
    core = data[:, :6]
    bad = ~np.isfinite(core).all(axis=1)
    if bad.any():
        raise BadInputError(f"{path}: line(s) {_lines(bad)} contain NaN or inf")
    bad = (data[:, W] < 0) | (data[:, H] < 0)
    if bad.any():
        raise BadInputError(f"{path}: line(s) {_lines(bad)} have a negative width or height")
    bad = data[:, FRAME] < 1
    if bad.any():
        raise BadInputError(f"{path}: line(s) {_lines(bad)} have frame < 1 (MOT frames are 1-based)")


def _lines(mask: np.ndarray) -> str:
    idx = (np.flatnonzero(mask) + 1)[:5].tolist()
    more = "" if mask.sum() <= 5 else f" and {int(mask.sum()) - 5} more"
    return ", ".join(map(str, idx)) + more


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
