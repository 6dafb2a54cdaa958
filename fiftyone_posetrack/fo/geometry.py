"""The frame size labels are normalised with, and checks that the video file still has it.

FiftyOne stores boxes and points relative to the frame (``[x, y, w, h]`` and
``(x, y)`` in ``[0, 1]``); this package divides pixels by
``sample.metadata.frame_width`` / ``frame_height``. Those two numbers must
therefore be the size of the frames that were (or will be) decoded, which is
the *displayed* size: :class:`fiftyone_posetrack.video.VideoReader` applies a
file's rotation metadata (a phone video stored 1920x1080 with "rotate 90"
decodes as 1080x1920), and browsers, hence the FiftyOne App, show it rotated
the same way. FiftyOne's own ``compute_metadata`` reports the stored size for
files whose rotation is in a display matrix (ffmpeg >= 5), so
:func:`video_metadata` computes the metadata itself and
:func:`fiftyone_posetrack.fo.dataset.ensure_metadata` corrects FiftyOne's.

Metadata written here carries two extra attributes:

- ``metadata.rotation``: the file's rotation in degrees (OpenCV's
  ``CAP_PROP_ORIENTATION_META``), already applied to ``frame_width`` /
  ``frame_height``;
- ``metadata.fingerprint``: ``{"size_bytes", "mtime", "sha256"}`` of the file
  when the metadata was computed (``sha256`` of its first and last
  :data:`HASH_BYTES` bytes: the container header and the first frames).

:func:`check_video_file` compares a sample's file with its metadata before a
video is processed and refuses, naming what changed and how to fix it, when
the file's decoded frame size or frame count differs from the metadata (the
file was replaced or edited since). A file whose bytes changed but whose
frame size and count did not (re-encoded, remuxed) is processed with a
warning naming the change: the labels' normalisation is still right, and
decoding checks every frame.

:func:`video_metadata` (hence every video added by
:func:`~fiftyone_posetrack.fo.dataset.add_videos` and every metadata
:func:`~fiftyone_posetrack.fo.dataset.ensure_metadata` computes) refuses files
whose frames cannot be numbered the way FiftyOne numbers them: a still image
under a video name (a JPEG named ``.mp4``), and videos of variable frame rate
or whose header's frame count is not the number of frames they hold (frame
``n`` is shown by the App at time ``(n - 1) / fps``; with a variable rate the
labels would drift from the frames, and the count in the header, which
recomputing the metadata reads again, disagrees with decoding). The message
gives the ffmpeg command that re-encodes the file at a constant frame rate.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass

import fiftyone as fo
import numpy as np

from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import probe_video

logger = logging.getLogger(__name__)

__all__ = [
    "HASH_BYTES",
    "VideoChangedError",
    "VideoGeometry",
    "file_fingerprint",
    "video_metadata",
    "metadata_problems",
    "check_video_file",
    "check_frame_timing",
]

#: bytes hashed at each end of a file for its fingerprint
HASH_BYTES = 1 << 20

_FIX = (
    "recompute the metadata with fiftyone_posetrack.fo.dataset.ensure_metadata(samples, overwrite=True) "
    "(labels computed on the old file were normalised with the old frame size: recompute or re-import them)"
)


class VideoChangedError(BadInputError):
    """A video file no longer matches the metadata its labels are normalised with."""


@dataclass(frozen=True)
class VideoGeometry:
    """A video's frames as decoded: displayed ``width`` x ``height`` pixels, ``frame_count`` frames."""

    width: int
    height: int
    frame_count: int
    rotation: int = 0


def file_fingerprint(path: str | os.PathLike) -> dict:
    """``{"size_bytes", "mtime", "sha256"}`` of a file (``sha256`` of its first and last :data:`HASH_BYTES`)."""
    path = os.fspath(path)
    st = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(HASH_BYTES))
        if st.st_size > 2 * HASH_BYTES:
            fh.seek(-HASH_BYTES, os.SEEK_END)
        digest.update(fh.read(HASH_BYTES))
    return {"size_bytes": int(st.st_size), "mtime": float(st.st_mtime), "sha256": digest.hexdigest()}


def video_metadata(path: str | os.PathLike, base: fo.VideoMetadata | None = None) -> fo.VideoMetadata:
    """The metadata of a video file as this package normalises labels with it.

    Args:
        path: the video file
        base: metadata to complete (e.g. FiftyOne's, for its ``mime_type``);
            its frame size and count are replaced by the decoded ones

    Returns:
        ``fo.VideoMetadata`` with the displayed frame size, ``rotation`` and
        ``fingerprint`` (see the module docs)

    Raises:
        FileNotFoundError, BadInputError: for a missing or undecodable file
    """
    info = probe_video(path)
    _refuse_still_image(path)
    check_frame_timing(path, info.frame_count, info.fps)
    md = fo.VideoMetadata(
        size_bytes=os.path.getsize(path),
        mime_type=(base.mime_type if base is not None and base.mime_type else None) or _mime(path),
        frame_width=info.width,
        frame_height=info.height,
        frame_rate=(base.frame_rate if base is not None and (base.frame_rate or 0) > 0 else None) or info.fps,
        total_frame_count=info.frame_count,
        duration=(base.duration if base is not None and (base.duration or 0) > 0 else None) or info.duration,
        encoding_str=(base.encoding_str if base is not None and base.encoding_str else None) or info.codec,
    )
    md.rotation = int(info.rotation)
    md.fingerprint = file_fingerprint(path)
    return md


#: leading bytes of still-image files that video containers never start with
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
)


def _refuse_still_image(path: str | os.PathLike) -> None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    kind = next((k for magic, k in _IMAGE_MAGIC if head.startswith(magic)), None)
    if kind is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = "a WebP image"
    if kind is not None:
        raise BadInputError(
            f"{os.fspath(path)} is {kind}, not a video (whatever its name says); add a video file, "
            "or encode image sequences with fiftyone_posetrack.fo.io.encode_images"
        )


def _packet_times(path: str) -> list[float] | None:
    """The presentation times (seconds) of the video stream's packets, by ffprobe (demuxing only); None without ffprobe."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    cmd = [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,dts_time",
           "-of", "csv=p=0", path]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    times = []
    for line in out.splitlines():
        fields = [f for f in line.strip().split(",") if f and f != "N/A"]
        if not fields:
            continue
        try:
            times.append(float(fields[0]))
        except ValueError:
            return None
    return times


def _reencode_hint(path: str, fps: float) -> str:
    stem = os.path.splitext(path)[0]
    rate = f"{fps:g}" if fps > 0 else "30"
    return (
        f"re-encode it at a constant frame rate and add that file instead: ffmpeg -i {shlex.quote(path)} "
        f"-vf fps={rate} -c:v libx264 -pix_fmt yuv420p {shlex.quote(stem + '-cfr.mp4')}"
    )


def check_frame_timing(path: str | os.PathLike, frame_count: int, fps: float) -> None:
    """Refuses a video of variable frame rate, or whose header's frame count is not its number of frames.

    The packets' timestamps (ffprobe, demuxing only: fast) must lie on a
    constant-rate grid to within half a frame interval, and their number
    must equal ``frame_count`` (the header's count, what the metadata
    records); without ffprobe the frames are counted by decoding.

    Args:
        path: the video file
        frame_count: the frame count the metadata would record
        fps: the frame rate the metadata would record

    Raises:
        BadInputError: naming the problem and the ffmpeg command that re-encodes the file
    """
    path = os.fspath(path)
    times = _packet_times(path)
    if times is None or len(times) < 2:
        count = probe_video(path, exact=True).frame_count if times is None else len(times)
        times = None
    else:
        count = len(times)
    if times is not None:
        t = np.sort(np.asarray(times))
        step = float(np.median(np.diff(t)))
        if step > 0:
            off = np.abs((t - t[0]) / step - np.arange(len(t)))
            worst = int(np.argmax(off))
            if off[worst] > 0.5:
                raise BadInputError(
                    f"{path}: variable frame rate (frame {worst + 1} is shown at {t[worst] - t[0]:.3f} s, "
                    f"{off[worst]:.1f} frames away from a constant {1 / step:.3g} fps; the header says "
                    f"{frame_count} frames at {fps:g} fps, the file holds {count}): FiftyOne numbers frames "
                    "at a constant rate, so labels would not line up with the frames, and recomputing the "
                    f"metadata does not change that; {_reencode_hint(path, fps or 1 / step)}"
                )
    if count != frame_count:
        raise BadInputError(
            f"{path}: the header says {frame_count} frames but the file holds {count}, so frames cannot be "
            f"numbered reliably (recomputing the metadata reads the same header); {_reencode_hint(path, fps)}"
        )


def _mime(path) -> str:
    import mimetypes

    return mimetypes.guess_type(os.fspath(path))[0] or "video/mp4"


def metadata_problems(path: str | os.PathLike, md: fo.VideoMetadata) -> tuple[list[str], list[str]]:
    """What differs between a video file and its metadata.

    Returns:
        ``(geometry, content)``: the differences of decoded (displayed) frame
        size and frame count, which invalidate labels normalised with the
        metadata; and of the file's size in bytes and fingerprint (when the
        metadata has one); empty lists when nothing differs

    Raises:
        FileNotFoundError, BadInputError: for a missing or undecodable file
    """
    path = os.fspath(path)
    info = probe_video(path)
    problems, content = [], []
    if md.total_frame_count and info.frame_count != int(md.total_frame_count):
        problems.append(f"the file has {info.frame_count} frames but the metadata says {int(md.total_frame_count)}")
    want = (int(md.frame_width or 0), int(md.frame_height or 0))
    if (info.width, info.height) != want:
        turned = (info.height, info.width) == want and info.rotation % 180 == 90
        problems.append(
            f"the frames decode as {info.width}x{info.height} but the metadata says {want[0]}x{want[1]}"
            + (f" (the file's rotation of {info.rotation} degrees is not applied in the metadata)" if turned else "")
        )
    size = os.path.getsize(path)
    if md.size_bytes is not None and int(md.size_bytes) != size:
        content.append(f"the file is {size} bytes but the metadata says {int(md.size_bytes)}")
    stored = getattr(md, "fingerprint", None)
    if stored and stored.get("sha256") and md.size_bytes is not None and int(md.size_bytes) == size:
        now = file_fingerprint(path)
        if now["sha256"] != stored["sha256"]:
            content.append(
                f"the file's content differs from when the metadata was computed (modified "
                f"{_when(stored.get('mtime'))}, now {_when(now['mtime'])})"
            )
    return problems, content


def _when(mtime) -> str:
    from datetime import datetime, timezone

    if mtime is None:
        return "at an unknown time"
    return datetime.fromtimestamp(float(mtime), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_video_file(sample: fo.Sample) -> VideoGeometry:
    """Checks a video sample's file against its metadata before its frames are processed.

    Returns:
        the :class:`VideoGeometry` the labels are normalised with

    Raises:
        BadInputError: when the sample has no metadata
        FileNotFoundError: when the file is gone
        VideoChangedError: when the file no longer matches its metadata,
            naming each difference and the fix
    """
    md = sample.metadata
    if md is None or not md.frame_width or not md.frame_height or not md.total_frame_count:
        raise BadInputError(
            f"{sample.filepath}: no video metadata; run dataset.compute_metadata() or "
            "fiftyone_posetrack.fo.dataset.ensure_metadata(samples) first"
        )
    if not os.path.isfile(sample.filepath):
        raise FileNotFoundError(f"video not found: {sample.filepath} (sample {sample.id})")
    geometry, content = metadata_problems(sample.filepath, md)
    if geometry:
        raise VideoChangedError(
            f"{sample.filepath}: " + "; ".join(geometry + content)
            + f" (sample {sample.id}: the file changed since its metadata was computed); {_FIX}"
        )
    if content:  # same frames size and count: labels stay valid; decoding checks every frame
        logger.warning(
            "%s: %s; its frame size and count are unchanged, so it is processed (metadata of sample %s "
            "kept; recompute it with ensure_metadata(samples, overwrite=True))",
            sample.filepath, "; ".join(content), sample.id,
        )
    return VideoGeometry(
        int(md.frame_width), int(md.frame_height), int(md.total_frame_count), int(getattr(md, "rotation", 0) or 0)
    )
