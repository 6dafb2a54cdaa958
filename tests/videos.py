"""Real test videos made with ffmpeg (no shared data needed)."""

from __future__ import annotations

import pathlib
import subprocess

import cv2
import numpy as np


def make_video(path: pathlib.Path, frames: int = 40, size=(160, 96), fps: int = 10, codec="libx264") -> pathlib.Path:
    """Encodes ``frames`` frames whose top-left pixel block encodes the frame number.

    Frame ``n`` (1-based) has a uniform background of grey level ``(10 * n) % 250``
    so a test can tell frames apart after lossy compression.
    """
    w, h = size
    cmd = [
        "ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-c:v", codec, "-pix_fmt", "yuv420p",
        "-g", "12", str(path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for n in range(1, frames + 1):
        frame = np.full((h, w, 3), (10 * n) % 250, dtype=np.uint8)
        cv2.putText(frame, str(n), (5, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


def frame_level(frame: np.ndarray) -> int:
    """Recovers the frame number's grey level written by :func:`make_video`."""
    return int(round(float(frame[-10:, -10:].mean())))
