"""Streaming video I/O with OpenCV.

Frames are numbered from **1**, as in FiftyOne (``sample.frames[1]``) and the
MOTChallenge files. Frames are BGR ``uint8`` arrays of shape ``(H, W, 3)``.

:class:`VideoReader` decodes sequentially and holds at most one batch of frames
in memory, so memory stays constant in the length of the video; it also
supports frame ranges and random access, and checks the number of decoded
frames and their size against what the caller expects (e.g. the dataset's
metadata)::

    with VideoReader("video.mp4", expected_frames=1394, expected_size=(768, 432)) as reader:
        for numbers, frames in reader.batches(8):
            ...

**Orientation.** A video with rotation metadata (a phone video whose display
matrix says "rotate by 90 degrees") is decoded *as displayed*: OpenCV's
automatic orientation (``CAP_PROP_ORIENTATION_AUTO``) is switched on
explicitly, so frames come upright and ``width`` / ``height`` are the displayed
size, the size browsers (the FiftyOne App) show and the size every label of
this package is normalised with. :attr:`VideoInfo.rotation` keeps the
metadata's angle.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from fiftyone_posetrack.types import BadInputError

logger = logging.getLogger(__name__)

__all__ = [
    "FrameCountMismatchError",
    "FrameSizeMismatchError",
    "VideoInfo",
    "VideoReader",
    "probe_video",
    "find_ffmpeg",
    "is_h264",
    "reencode_h264",
]


class FrameCountMismatchError(BadInputError):
    """The decoded number of frames differs from the expected number."""


class FrameSizeMismatchError(BadInputError):
    """The decoded frame size differs from the expected (metadata's) size."""


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reports about a video file.

    Attributes:
        path: the file
        width, height: the displayed frame size in pixels (rotation applied:
            the size of the frames :class:`VideoReader` yields)
        fps: frames per second (0 when the container does not say)
        frame_count: number of frames; from the container header unless the
            video was probed with ``exact=True`` (then counted by decoding)
        codec: the four-character codec code, e.g. ``"h264"`` or ``"mp4v"``
        rotation: the rotation in degrees (0, 90, 180, 270) of the file's
            display matrix / ``rotate`` tag, as OpenCV reports it
            (``CAP_PROP_ORIENTATION_META``); decoding applies it
    """

    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    codec: str
    rotation: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds (0 when fps is unknown)."""
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"video not found: {path}")
    if not os.path.isfile(path):
        raise BadInputError(f"not a video file: {path}")
    if os.path.getsize(path) == 0:
        raise BadInputError(f"video file is empty (0 bytes): {path}")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise BadInputError(f"cannot open video (unreadable or corrupt file): {path}")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # frames as displayed (the default; stated, not assumed)
    return cap


def _rotation(cap: cv2.VideoCapture) -> int:
    """The rotation in degrees (0, 90, 180, 270) of the file's metadata, as OpenCV reports it."""
    return int(round(float(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0.0))) % 360


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ").lower()


def probe_video(path: str | os.PathLike, exact: bool = False) -> VideoInfo:
    """Reads a video's size, frame rate, frame count and codec without ffprobe.

    Args:
        path: the video file
        exact: count frames by decoding them (slow: a full pass over the video)
            rather than trusting the container's header

    Raises:
        FileNotFoundError: if the file does not exist
        BadInputError: if the file cannot be decoded or holds no frame
    """
    cap = _open(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        codec = _fourcc(cap)
        rotation = _rotation(cap)
        if exact or count <= 0:
            count = 0
            while cap.grab():
                count += 1
    finally:
        cap.release()
    if width <= 0 or height <= 0 or count <= 0:
        raise BadInputError(f"video has no decodable frame: {os.fspath(path)}")
    return VideoInfo(os.fspath(path), width, height, fps, count, codec, rotation)


class VideoReader:
    """Streams the frames of a video, in order, with constant memory.

    Args:
        path: the video file
        start: the first frame number to read (1-based, inclusive)
        stop: the last frame number to read (inclusive); ``None`` reads to the end
        expected_frames: the number of frames the video should have (e.g. from
            the dataset's metadata). When a full read (``stop=None``) decodes a
            different number, :class:`FrameCountMismatchError` is raised at the
            end of the stream, naming both counts. ``None`` skips the check.
        expected_size: ``(width, height)`` in pixels the frames should have
            (the size the labels are normalised with, e.g. the metadata's).
            Checked when the reader opens and on every decoded frame;
            :class:`FrameSizeMismatchError` names both sizes. ``None`` skips it.

    Raises:
        FileNotFoundError: if the file does not exist
        BadInputError: if the file cannot be decoded, or the range is invalid
        FrameSizeMismatchError: if the video's size is not ``expected_size``
    """

    def __init__(
        self,
        path: str | os.PathLike,
        start: int = 1,
        stop: int | None = None,
        expected_frames: int | None = None,
        expected_size: tuple[int, int] | None = None,
    ):
        if start < 1:
            raise BadInputError(f"start frame must be >= 1 (frames are 1-based), got {start}")
        if stop is not None and stop < start:
            raise BadInputError(f"stop frame {stop} is before start frame {start}")
        self.path = os.fspath(path)
        self.start = int(start)
        self.stop = None if stop is None else int(stop)
        self.expected_frames = expected_frames
        self._cap = _open(self.path)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.header_frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.rotation = _rotation(self._cap)
        self.expected_size = None if expected_size is None else (int(expected_size[0]), int(expected_size[1]))
        if self.expected_size is not None:
            self._check_size(self.width, self.height)

    def _check_size(self, width: int, height: int) -> None:
        if (width, height) == self.expected_size:
            return
        w, h = self.expected_size
        rotated = (height, width) == (w, h)
        hint = (
            f" (the same size turned by 90 degrees: the file's rotation metadata, {self.rotation} degrees, "
            "is applied on decoding but not in the metadata)"
            if rotated
            else ""
        )
        self.close()
        raise FrameSizeMismatchError(
            f"{self.path}: frames decode as {width}x{height} but the labels are normalised with "
            f"{w}x{h}{hint}; recompute the metadata "
            "(fiftyone_posetrack.fo.dataset.ensure_metadata(samples, overwrite=True))"
        )

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __len__(self) -> int:
        """The number of frames the range holds, by the container's header."""
        last = self.header_frame_count if self.stop is None else min(self.stop, self.header_frame_count)
        return max(0, last - self.start + 1)

    def _seek(self, frame_number: int) -> None:
        if self._cap is None:
            raise BadInputError(f"reader of {self.path} is closed")
        if int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) != frame_number - 1:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, frame_number - 1)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields ``(frame_number, frame)`` over the range."""
        self._seek(self.start)
        number = self.start
        while self.stop is None or number <= self.stop:
            ok, frame = self._cap.read()
            if not ok:
                break
            if self.expected_size is not None and frame.shape[1::-1] != self.expected_size:
                self._check_size(frame.shape[1], frame.shape[0])
            yield number, frame
            number += 1
        decoded = number - 1
        if self.stop is not None and decoded < self.stop:
            raise FrameCountMismatchError(
                f"{self.path}: asked for frames up to {self.stop} but the video "
                f"ends after frame {decoded}"
            )
        if self.stop is None:
            self._check_count(decoded)

    def _check_count(self, decoded: int) -> None:
        if decoded == 0:
            raise BadInputError(f"video has no decodable frame: {self.path}")
        if self.expected_frames is not None and decoded != self.expected_frames:
            raise FrameCountMismatchError(
                f"{self.path}: decoded {decoded} frames but the metadata says "
                f"{self.expected_frames}; recompute the metadata "
                "(fiftyone_posetrack.fo.dataset.ensure_metadata(samples, overwrite=True)) or re-encode the video"
            )

    def batches(self, batch_size: int) -> Iterator[tuple[list[int], list[np.ndarray]]]:
        """Yields ``(frame_numbers, frames)`` lists of at most ``batch_size`` frames."""
        if batch_size < 1:
            raise BadInputError(f"batch_size must be >= 1, got {batch_size}")
        numbers: list[int] = []
        frames: list[np.ndarray] = []
        for number, frame in self:
            numbers.append(number)
            frames.append(frame)
            if len(frames) == batch_size:
                yield numbers, frames
                numbers, frames = [], []
        if frames:
            yield numbers, frames

    def read(self, frame_number: int) -> np.ndarray:
        """Random access: returns the frame with the given 1-based number."""
        if frame_number < 1:
            raise BadInputError(f"frame numbers are 1-based, got {frame_number}")
        self._seek(frame_number)
        ok, frame = self._cap.read()
        if not ok:
            raise BadInputError(f"{self.path}: frame {frame_number} cannot be decoded (past the end?)")
        return frame


def find_ffmpeg() -> str:
    """Returns the path of an ``ffmpeg`` executable.

    The system's ``ffmpeg`` is preferred; ``imageio-ffmpeg``'s bundled binary is the
    fallback.

    Raises:
        FileNotFoundError: if none is found, saying how to install one
    """
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    raise FileNotFoundError(
        "ffmpeg is needed to encode H.264 video but was not found: install it "
        "(e.g. `sudo apt-get install -y ffmpeg`, `brew install ffmpeg`) or `pip install imageio-ffmpeg`"
    )


def is_h264(path: str | os.PathLike) -> bool:
    """Whether the video's codec is H.264 (playable by the FiftyOne App in browsers)."""
    cap = _open(path)
    try:
        return _fourcc(cap) in ("avc1", "h264", "x264")
    finally:
        cap.release()


def reencode_h264(
    src: str | os.PathLike, dst: str | os.PathLike, crf: int = 20, overwrite: bool = False
) -> str:
    """Re-encodes a video to H.264 / yuv420p MP4 so that browsers (the App) can play it.

    Args:
        src: the input video
        dst: the output ``.mp4``
        crf: x264 quality (lower is better; 18-23 is visually lossless to good)
        overwrite: replace ``dst`` if it exists

    Returns:
        the output path

    Raises:
        FileNotFoundError: if ``src`` does not exist
        BadInputError: if ``dst`` exists and not ``overwrite``, or ffmpeg fails
    """
    src, dst = os.fspath(src), os.fspath(dst)
    info = probe_video(src)
    if os.path.exists(dst) and not overwrite:
        raise BadInputError(f"output exists (pass overwrite=True to replace it): {dst}")
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    tmp = dst + ".part.mp4"
    cmd = [
        find_ffmpeg(), "-y", "-loglevel", "error", "-i", src,
        "-map", "0:v:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
        "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-movflags", "+faststart", tmp,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise BadInputError(f"ffmpeg failed to re-encode {src}: {proc.stderr.strip()[-500:]}")
    os.replace(tmp, dst)
    logger.info("re-encoded %s (%s, %d frames) to H.264 at %s", src, info.codec, info.frame_count, dst)
    return dst
