"""RTMPose ONNX backend, tested with a tiny SimCC model exported here from torch.

No RTMPose weights are available offline, so the test exports a small module
with RTMPose's I/O (``input [B, 3, 256, 192]`` -> ``simcc_x [B, 17, 384]``,
``simcc_y [B, 17, 512]``) whose SimCC peaks sit at the brightest pixel of the
*red* channel of the crop (channel 0 after the BGR -> RGB conversion). A red
blob drawn at a known frame position must come back at that position through
crop, normalisation, SimCC decode and the inverse crop.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fiftyone_posetrack.pose import make_pose_estimator
from fiftyone_posetrack.pose.onnx_rtmpose import RTMPoseONNX, decode_simcc

torch = pytest.importorskip("torch")


class _PeakSimCC(torch.nn.Module):
    """SimCC logits = the red channel's column / row maxima, two bins per pixel."""

    def forward(self, x):
        red = x[:, 0]
        sx = red.amax(dim=1).repeat_interleave(2, dim=1)[:, None, :].expand(-1, 17, -1)
        sy = red.amax(dim=2).repeat_interleave(2, dim=1)[:, None, :].expand(-1, 17, -1)
        offset = torch.zeros(1, 17, 1)
        offset[0, 16, 0] = -10.0  # joint 16 always scores < 0 -> NaN
        return sx + offset, sy + offset


@pytest.fixture(scope="module")
def tiny_rtmpose(tmp_path_factory):
    path = tmp_path_factory.mktemp("rtmpose") / "tiny_rtmpose.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _PeakSimCC(), torch.zeros(1, 3, 256, 192), str(path), input_names=["input"],
            output_names=["simcc_x", "simcc_y"], opset_version=17, dynamo=False,
            dynamic_axes={"input": {0: "batch"}, "simcc_x": {0: "batch"}, "simcc_y": {0: "batch"}},
        )  # fmt: skip
    return path


def _blob_frame(points, shape=(360, 480), channel=2):
    """A black BGR frame with Gaussian blobs (peak 255 at integer pixels) in one channel."""
    frame = np.zeros(shape + (3,), np.float64)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    for x, y in points:
        frame[..., channel] = np.maximum(
            frame[..., channel], 255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 8.0)
        )
    return np.round(frame).astype(np.uint8)


def test_decode_simcc():
    simcc_x = np.full((2, 3, 20), -1.0)
    simcc_y = np.full((2, 3, 30), -1.0)
    simcc_x[0, 0, 7], simcc_y[0, 0, 12] = 0.9, 0.6
    simcc_x[1, 2, 19], simcc_y[1, 2, 0] = 0.4, 0.8
    kps, scores = decode_simcc(simcc_x, simcc_y, split_ratio=2.0)
    np.testing.assert_allclose(kps[0, 0], [3.5, 6.0])
    np.testing.assert_allclose(kps[1, 2], [9.5, 0.0])
    np.testing.assert_allclose(scores[[0, 1], [0, 2]], [0.6, 0.4])  # mmpose: the smaller maximum
    assert np.isnan(kps[0, 1]).all() and scores[0, 1] == -1.0
    _, mean_scores = decode_simcc(simcc_x, simcc_y, 2.0, score_reduce="mean")
    np.testing.assert_allclose(mean_scores[0, 0], 0.75)


def test_rtmpose_onnx_recovers_known_points(tiny_rtmpose):
    pose = make_pose_estimator(f"rtmpose-onnx:{tiny_rtmpose}", device="cpu")
    assert isinstance(pose, RTMPoseONNX)
    assert pose.input_size == (192, 256) and pose.split_ratio == 2.0 and pose.to_rgb
    frame = _blob_frame([(143, 97)])
    boxes = np.array(
        [[100.0, 40.0, 180.0, 230.0], [120.0, 60.0, 300.0, 200.0], [10.0, 10.0, 460.0, 350.0]]
    )
    kps, scores = pose.estimate(frame, boxes)
    assert kps.shape == (3, 17, 2) and scores.shape == (3, 17)
    # one crop pixel is window / 192 frame pixels: the argmax is within half of one
    windows = np.array(
        [237.5 * 0.75, 225.0, 562.5]
    )  # crop widths in frame px after padding + aspect fix
    err = np.abs(kps[:, :16] - [143, 97]).max(axis=(1, 2))
    assert (err <= 0.5 * windows / 192 + 0.5).all(), err
    assert (
        scores[:, :16] > 0.5
    ).all()  # red peak: (255 - 123.675) / 58.395 = 2.25 at most, black: -2.1
    assert np.isnan(kps[:, 16]).all() and (scores[:, 16] < 0).all()


def test_rtmpose_onnx_converts_bgr_to_rgb(tiny_rtmpose):
    pose = RTMPoseONNX(tiny_rtmpose, device="cpu")
    blue = _blob_frame([(143, 97)], channel=0)  # blue in BGR: invisible in the red channel
    kps, scores = pose.estimate(blue, np.array([[100.0, 40.0, 180.0, 230.0]]))
    assert (scores < 0).all() and np.isnan(kps).all()


def test_rtmpose_estimate_batch_equals_per_frame(tiny_rtmpose):
    pose = RTMPoseONNX(tiny_rtmpose, device="cpu", batch_size=4)
    frames = [_blob_frame([(60 + 40 * i, 80 + 20 * i)]) for i in range(3)]
    boxes = [
        np.array([[20.0, 30.0, 120.0, 200.0], [40.0, 50.0, 200.0, 300.0]]),
        np.zeros((0, 4)),
        np.array(
            [[100.0, 60.0, 220.0, 260.0], [0.0, 0.0, 480.0, 360.0], [130.0, 100.0, 250.0, 220.0]]
        ),
    ]
    batched = pose.estimate_batch(frames, boxes)
    assert [len(k) for k, _ in batched] == [2, 0, 3]
    for frame, b, (kps, scores) in zip(frames, boxes, batched):
        ref_kps, ref_scores = pose.estimate(frame, b)
        np.testing.assert_allclose(kps, ref_kps)
        np.testing.assert_allclose(scores, ref_scores)
    np.testing.assert_allclose(batched[2][0][:, 0], [[140, 120]] * 3, atol=2.5)


def test_rtmpose_rejects_bad_boxes(tiny_rtmpose):
    from fiftyone_posetrack.types import BadInputError

    pose = RTMPoseONNX(tiny_rtmpose, device="cpu")
    with pytest.raises(BadInputError, match=r"\(N, 4\)"):
        pose.estimate(np.zeros((50, 50, 3), np.uint8), np.zeros((2, 3)))
    with pytest.raises(BadInputError, match="2 frames but 1 box arrays"):
        pose.estimate_batch([np.zeros((50, 50, 3), np.uint8)] * 2, [np.zeros((0, 4))])


def test_rtmpose_rejects_a_detector_graph(shared_dir):
    from fiftyone_posetrack.types import BadInputError

    with pytest.raises(BadInputError, match="simcc_x"):
        RTMPoseONNX(shared_dir / "models" / "yolox-nano" / "yolox_nano.onnx", device="cpu")
