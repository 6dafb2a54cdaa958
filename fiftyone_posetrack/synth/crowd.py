"""Rendering a crowd scene to a video with exact MOT and PoseTrack ground truth."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
from tqdm import tqdm

from fiftyone_posetrack.atomic import Staged
from fiftyone_posetrack.formats.mot import write_mot
from fiftyone_posetrack.formats.posetrack import PoseTrackFrame, PoseTrackVideo, write_posetrack_json
from fiftyone_posetrack.skeleton import COCO_EDGES, COCO_KEYPOINTS, NUM_KEYPOINTS
from fiftyone_posetrack.synth.people import body_points
from fiftyone_posetrack.synth.render import FrameTruth, PersonStyle, compose_frame, joints_inside
from fiftyone_posetrack.synth.scene import Scene, random_scene
from fiftyone_posetrack.synth.writer import H264Writer, write_seqinfo
from fiftyone_posetrack.types import BadInputError

VIDEO_NAME = "video.mp4"
GT_NAME = os.path.join("gt", "gt.txt")
POSETRACK_NAME = "posetrack.json"
SEQINFO_NAME = "seqinfo.ini"
IMAGE_DIR = "img1"
#: track ids live in a uint16 label map
MAX_PEOPLE = 65535


@dataclass
class RenderedFrame:
    """One rendered frame.

    Attributes:
        index: 0-based frame index
        image: ``(H, W, 3)`` uint8 BGR
        labels: ``(H, W)`` uint16 track id of the person seen at each pixel
            (0 = background)
        truth: the frame's :class:`~fiftyone_posetrack.synth.render.FrameTruth`
    """

    index: int
    image: np.ndarray
    labels: np.ndarray
    truth: FrameTruth


@dataclass
class SynthResult:
    """Paths and ground truth of a rendered sequence.

    Per-frame arrays are indexed ``[frame, track_id - 1]`` and hold NaN (or 0
    flags) where the person is not in the frame.

    Attributes:
        out_dir, video_path, gt_path, posetrack_path, seqinfo_path: outputs
        image_dir: the JPEG frames' folder, or None when not written
        frames, people, width, height, fps: the sequence's shape
        mot: ``(N, 9)`` the MOT ground truth rows as written
            (``frame, id, x, y, w, h, 1, 1, visibility``; frames 1-based)
        boxes: ``(F, P, 4)`` ``[x1, y1, x2, y2]`` pixels
        visibility: ``(F, P)`` visible fraction of each person's pixels
        keypoints: ``(F, P, 17, 2)`` COCO joints in pixels (also occluded and
            outside-frame joints)
        keypoint_flags: ``(F, P, 17)`` 0 = outside the frame or occluded by a
            nearer person, 2 = visible
        render_seconds: time spent drawing frames and their ground truth
        total_seconds: wall time of the whole call, encoding included
    """

    out_dir: str
    video_path: str
    gt_path: str
    posetrack_path: str
    seqinfo_path: str
    image_dir: str | None
    frames: int
    people: int
    width: int
    height: int
    fps: float
    mot: np.ndarray
    boxes: np.ndarray
    visibility: np.ndarray
    keypoints: np.ndarray
    keypoint_flags: np.ndarray
    render_seconds: float
    total_seconds: float

    @property
    def render_fps(self) -> float:
        """Frames drawn per second (without encoding)."""
        return self.frames / max(self.render_seconds, 1e-9)

    @property
    def present(self) -> np.ndarray:
        """``(F, P)`` bool: whether each person is at least partly in each frame."""
        return np.isfinite(self.visibility)


def check_params(people: int, frames: int, width: int, height: int, fps: float) -> None:
    """Raises :class:`BadInputError` naming the first unusable parameter."""
    limits = (("people", people, 1, MAX_PEOPLE), ("frames", frames, 1, None),
              ("width", width, 64, None), ("height", height, 64, None))  # fmt: skip
    for name, value, low, high in limits:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise BadInputError(f"{name} must be an integer, got {value!r}")
        if value < low:
            raise BadInputError(f"{name} must be >= {low}, got {value}")
        if high is not None and value > high:
            raise BadInputError(f"{name} must be <= {high}, got {value}")
    for name, value in (("width", width), ("height", height)):
        if value % 2:
            raise BadInputError(
                f"{name} must be even (H.264 yuv420p video needs even frame sizes), got {value}"
            )
    number = isinstance(fps, (int, float, np.number)) and not isinstance(fps, bool)
    if not number or not np.isfinite(fps) or fps <= 0:
        raise BadInputError(f"fps must be a number > 0, got {fps!r}")


def render_frame(scene: Scene, styles: list[PersonStyle], frame: int) -> RenderedFrame:
    """Renders frame ``frame`` (0-based) of ``scene`` with its ground truth."""
    cam = scene.camera
    st = scene.states(frame)
    n = len(st.index)
    if n:
        world = body_points(st.ground, st.yaw, st.phase, st.height_m, st.hip_amp, st.arm_amp)
        points = cam.project(world)
        floor = np.stack([st.ground[:, 0], np.zeros(n), st.ground[:, 1]], axis=1)
        feet = cam.project(floor)
        height_px = cam.focal * st.height_m / st.ground[:, 1]
        # cull people whose padded figure cannot reach the frame
        pad = (0.1 * height_px + 4)[:, None]
        lo, hi = points.min(axis=1) - pad, points.max(axis=1) + pad
        near = (hi[:, 0] >= 0) & (lo[:, 0] < cam.width) & (hi[:, 1] >= 0) & (lo[:, 1] < cam.height)
    else:
        points, feet, height_px = np.zeros((0, 1, 2)), np.zeros((0, 2)), np.zeros(0)
        near = np.zeros(0, dtype=bool)
    keep = np.flatnonzero(near)
    image, labels, truth = compose_frame(
        scene.background,
        st.index[keep] + 1,
        points[keep],
        feet[keep],
        height_px[keep],
        st.yaw[keep] if n else np.zeros(0),
        [styles[i] for i in st.index[keep]],
    )
    return RenderedFrame(frame, image, labels, truth)


def iter_frames(scene: Scene) -> Iterator[RenderedFrame]:
    """Yields every :class:`RenderedFrame` of ``scene`` in order."""
    styles = [PersonStyle.from_appearance(w.appearance) for w in scene.walkers]
    for t in range(scene.frames):
        yield render_frame(scene, styles, t)


def render_crowd(
    out_dir: str | os.PathLike,
    people: int = 12,
    frames: int = 150,
    width: int = 640,
    height: int = 360,
    seed: int = 0,
    fps: float = 25.0,
    *,
    overwrite: bool = False,
    save_images: bool = False,
    progress: bool = False,
) -> SynthResult:
    """Renders a random crowd of walking people with exact ground truth.

    Writes into ``out_dir``: ``video.mp4`` (H.264, yuv420p), ``gt/gt.txt``
    (MOT16+ ground truth), ``posetrack.json`` (PoseTrack18, COCO-17 joints,
    every frame labelled), ``seqinfo.ini`` and, with ``save_images``, the
    frames as ``img1/000001.jpg, ...``. The same arguments always give the
    same ground truth files and the same frames.

    Args:
        out_dir: output folder; created if needed
        people: number of walkers (track ids ``1..people``)
        frames: number of frames
        width, height: frame size in pixels (even, >= 64)
        seed: random seed of the scene
        fps: frames per second
        overwrite: allow a non-empty ``out_dir`` (the outputs are replaced)
        save_images: also write JPEG frames under ``img1/``
        progress: show a progress bar

    Raises:
        BadInputError: on unusable parameters or a non-empty ``out_dir``
            without ``overwrite``
        FileNotFoundError: if no ffmpeg is available
    """
    check_params(people, frames, width, height, fps)
    stale = prepare_out_dir(out_dir, overwrite)
    scene = random_scene(int(people), int(frames), int(width), int(height), int(seed), float(fps))
    result = render_scene(scene, out_dir, save_images=save_images, progress=progress)
    written = {os.path.join(result.image_dir, f"{i + 1:06d}.jpg") for i in range(result.frames)} if save_images else set()
    for path in stale:  # the previous frames, once the new outputs are in place
        if path not in written:
            os.remove(path)
    return result


def prepare_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> list[str]:
    """Checks ``out_dir``: refuses a non-empty one unless ``overwrite``.

    Nothing is removed here: the outputs are replaced as they are written, all
    together (a failed render leaves the previous ones as they were).

    Returns:
        with ``overwrite``, the frame images of a previous render
        (``img1/NNNNNN.jpg``), to remove once the new outputs are in place
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BadInputError(f"output folder {out_dir} exists and is not a folder")
    stale = []
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise BadInputError(
                f"output folder {out_dir} exists and is not empty; "
                "choose another folder or pass --overwrite (overwrite=True)"
            )
        images = os.path.join(out_dir, IMAGE_DIR)  # literal names: out_dir may hold "[" (no glob)
        for name in os.listdir(images) if os.path.isdir(images) else []:
            if len(name) == 10 and name[:6].isdigit() and name.endswith(".jpg"):
                stale.append(os.path.join(images, name))
    return stale


def render_scene(
    scene: Scene,
    out_dir: str | os.PathLike,
    *,
    save_images: bool = False,
    progress: bool = False,
) -> SynthResult:
    """Renders ``scene`` into ``out_dir`` (see :func:`render_crowd` for the files)."""
    with Staged() as stage:  # every file is moved into place at the end, or none
        return _render(scene, os.fspath(out_dir), stage, save_images, progress)


def _render(scene: Scene, out_dir: str, stage: Staged, save_images: bool, progress: bool) -> SynthResult:
    started = time.perf_counter()
    cam, num_frames, num_people = scene.camera, scene.frames, len(scene.walkers)
    boxes = np.full((num_frames, num_people, 4), np.nan)
    visibility = np.full((num_frames, num_people), np.nan)
    keypoints = np.full((num_frames, num_people, NUM_KEYPOINTS, 2), np.nan)
    flags = np.zeros((num_frames, num_people, NUM_KEYPOINTS), dtype=np.int64)
    head_boxes = np.full((num_frames, num_people, 4), np.nan)

    video_path = os.path.join(out_dir, VIDEO_NAME)
    image_dir = os.path.join(out_dir, IMAGE_DIR) if save_images else None
    render_seconds = 0.0
    frames_iter = iter_frames(scene)
    with H264Writer(stage.path(video_path, "video"), cam.width, cam.height, scene.fps) as writer:
        for _ in tqdm(range(num_frames), desc="synth", unit="frame", disable=not progress):
            tick = time.perf_counter()
            rendered = next(frames_iter)
            render_seconds += time.perf_counter() - tick
            writer.write(rendered.image)
            if image_dir:
                image = os.path.join(image_dir, f"{rendered.index + 1:06d}.jpg")
                if not cv2.imwrite(stage.path(image, "frame image"), rendered.image):
                    raise OSError(f"cannot write the frame image {image}")
            tr, t = rendered.truth, rendered.index
            col = tr.track_ids - 1
            boxes[t, col] = tr.boxes
            visibility[t, col] = tr.visibility
            keypoints[t, col] = tr.keypoints
            flags[t, col] = tr.flags
            head_boxes[t, col] = tr.head_boxes

    mot = _mot_rows(boxes, visibility)
    gt_path = os.path.join(out_dir, GT_NAME)
    write_mot(stage.path(gt_path, "ground truth"), mot, gt=True)
    name = os.path.basename(os.path.abspath(out_dir))
    seqinfo_path = os.path.join(out_dir, SEQINFO_NAME)
    write_seqinfo(stage.path(seqinfo_path), name, num_frames, scene.fps, cam.width, cam.height, IMAGE_DIR, ".jpg")
    posetrack_path = os.path.join(out_dir, POSETRACK_NAME)
    video = posetrack_video(name, cam.width, cam.height, boxes, keypoints, flags, head_boxes)
    write_posetrack_json(stage.path(posetrack_path, "PoseTrack ground truth"), video)
    return SynthResult(
        out_dir=out_dir,
        video_path=video_path,
        gt_path=gt_path,
        posetrack_path=posetrack_path,
        seqinfo_path=seqinfo_path,
        image_dir=image_dir,
        frames=num_frames,
        people=num_people,
        width=cam.width,
        height=cam.height,
        fps=scene.fps,
        mot=mot,
        boxes=boxes,
        visibility=visibility,
        keypoints=keypoints,
        keypoint_flags=flags,
        render_seconds=render_seconds,
        total_seconds=time.perf_counter() - started,
    )


def _mot_rows(boxes: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    frame_idx, person = np.nonzero(np.isfinite(visibility))
    b = boxes[frame_idx, person]
    rows = np.empty((len(frame_idx), 9))
    rows[:, 0] = frame_idx + 1
    rows[:, 1] = person + 1
    rows[:, 2:4] = b[:, :2]
    rows[:, 4:6] = b[:, 2:] - b[:, :2]
    rows[:, 6] = 1.0
    rows[:, 7] = 1.0
    rows[:, 8] = np.round(visibility[frame_idx, person], 4)
    return rows


def posetrack_video(
    name: str,
    width: int,
    height: int,
    boxes: np.ndarray,
    keypoints: np.ndarray,
    flags: np.ndarray,
    head_boxes: np.ndarray,
) -> PoseTrackVideo:
    """The PoseTrack18 view of the ground truth: every frame labelled.

    Joints outside the frame are written COCO-style as ``(0, 0, 0)``; occluded
    joints keep their coordinates with flag 0.
    """
    frames = []
    num_frames = boxes.shape[0]
    for t in range(num_frames):
        col = np.flatnonzero(np.isfinite(boxes[t, :, 0]))
        kps = keypoints[t, col].copy()
        outside = ~joints_inside(kps, width, height)
        kps[outside] = 0.0
        frames.append(
            PoseTrackFrame(
                frame_index=t,
                file_name=f"{IMAGE_DIR}/{t + 1:06d}.jpg",
                is_labeled=True,
                track_ids=col + 1,
                boxes=boxes[t, col],
                keypoints=kps,
                visibility=np.where(outside, 0, flags[t, col]),
                scores=None,
                ignore_regions=[],
                head_boxes=head_boxes[t, col],
            )
        )
    return PoseTrackVideo(
        name=name,
        width=int(width),
        height=int(height),
        frames=frames,
        keypoint_names=COCO_KEYPOINTS,
        skeleton=list(COCO_EDGES),
        vid_id="000000",
        nframes=num_frames,
    )
