"""Writing a synthetic sequence: H.264 video via ffmpeg, MOT ground truth, seqinfo.ini.

OpenCV's own writers cannot produce H.264 on many systems (and ``mp4v`` does not
play in browsers), so frames are streamed as raw BGR bytes to an ``ffmpeg``
process that encodes ``libx264`` / ``yuv420p`` -- one frame at a time, never
the whole video in memory. Every file appears whole or not at all
(:mod:`fiftyone_posetrack.atomic`): ffmpeg writes a temporary file that is
renamed onto the target only when it finished without error.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np

from fiftyone_posetrack.atomic import Staged, atomic_write
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import find_ffmpeg


class EncodingError(OSError, RuntimeError):
    """ffmpeg failed or stopped while writing a video (a full disk, a bad option); nothing was written.

    An ``OSError`` (the CLI reports it as a file it could not write) and, as before, a ``RuntimeError``.
    """


class H264Writer:
    """Streams BGR frames into an H.264 (``yuv420p``) mp4 through ffmpeg.

    Use as a context manager::

        with H264Writer("video.mp4", 640, 360, fps=25) as writer:
            for frame in frames:
                writer.write(frame)

    Args:
        path: the output ``.mp4``; written under a temporary name in its
            folder and renamed into place by :meth:`close` (an existing file
            is replaced only then; a failure leaves it as it was)
        width, height: frame size in pixels; both must be even (yuv420p)
        fps: frames per second
        crf: x264 constant rate factor (lower = better quality)
        preset: x264 speed preset
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: float,
        crf: int = 18,
        preset: str = "veryfast",
    ):
        if width % 2 or height % 2 or width < 2 or height < 2:
            raise BadInputError(
                f"H.264 yuv420p video needs an even width and height, got {width}x{height}"
            )
        if not fps > 0:
            raise BadInputError(f"fps must be > 0, got {fps}")
        self.path = os.fspath(path)
        self.width, self.height = int(width), int(height)
        self.frames = 0
        self._stage = Staged()
        self._tmp = self._stage.path(self.path, "video file")
        cmd = [
            find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{self.width}x{self.height}",
            "-framerate", f"{float(fps):g}", "-i", "pipe:0",
            "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", preset,
            "-crf", str(int(crf)), "-movflags", "+faststart", self._tmp,
        ]  # fmt: skip
        self._stderr_path = self._tmp + ".ffmpeg.log"
        try:
            self._stderr = open(self._stderr_path, "wb")
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._stderr)
        except BaseException:
            self._stage.discard()
            if os.path.exists(self._stderr_path):
                os.remove(self._stderr_path)
            raise

    def write(self, frame: np.ndarray) -> None:
        """Appends one ``(height, width, 3)`` uint8 BGR frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise BadInputError(
                f"frame must be ({self.height}, {self.width}, 3) uint8, "
                f"got {frame.shape} {frame.dtype}"
            )
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            self._finish()
            self._stage.discard()
            raise EncodingError(f"ffmpeg stopped while writing {self.path}: {self._log()}") from None
        self.frames += 1

    def close(self) -> None:
        """Finishes the file and moves it into place.

        Raises:
            EncodingError: (an ``OSError``) if ffmpeg failed, e.g. on a full
                disk; the temporary file is removed and the target untouched
        """
        code = self._finish()
        if code != 0:
            self._stage.discard()
            raise EncodingError(f"ffmpeg failed (exit {code}) writing {self.path}: {self._log()}")
        os.remove(self._stderr_path)
        self._stage.commit()

    def _finish(self) -> int:
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        code = self._proc.wait()
        self._stderr.close()
        return code

    def _log(self) -> str:
        """ffmpeg's error output (the log file is removed)."""
        try:
            with open(self._stderr_path, encoding="utf-8", errors="replace") as f:
                text = f.read().strip()[-2000:] or "(no message)"
            os.remove(self._stderr_path)
            return text
        except OSError:
            return "(no log)"

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._proc.kill()
            self._finish()
            self._stage.discard()
            if os.path.exists(self._stderr_path):
                os.remove(self._stderr_path)


def write_seqinfo(
    path: str | os.PathLike,
    name: str,
    frames: int,
    fps: float,
    width: int,
    height: int,
    im_dir: str = "img1",
    im_ext: str = ".jpg",
) -> None:
    """Writes a MOTChallenge ``seqinfo.ini``."""
    rate = int(round(fps)) if float(fps).is_integer() else f"{float(fps):g}"
    text = (
        "[Sequence]\n"
        f"name={name}\n"
        f"imDir={im_dir}\n"
        f"frameRate={rate}\n"
        f"seqLength={int(frames)}\n"
        f"imWidth={int(width)}\n"
        f"imHeight={int(height)}\n"
        f"imExt={im_ext}\n"
    )
    with atomic_write(path, what="seqinfo.ini") as f:
        f.write(text)
