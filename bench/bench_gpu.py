"""GPU throughput of the pipeline's models and of the whole pipeline, against mmpose's demo loop.

    python bench/bench_gpu.py --out OUT_DIR [--device cuda] [--budget-s 420]
    python bench/bench_gpu.py --smoke --device cpu --out /tmp/x   # every part, 1-2 iterations, tiny inputs

(The smoke run swaps in light models of the same classes and code paths: RTMDet-tiny, a
MobileNetV2 heatmap model, RTMPose-t, OSNet x0.25; see ``SMOKE_MODELS``.)

Run on a lent GPU machine by ``bench/gpu_check.sh`` (which installs what that
machine lacks); no FiftyOne, no database, no download: every OpenMMLab model is
built with random weights from a config shipped in the mmdet / mmpose wheels
(timings do not depend on the weights' values; the detector's output does, see
below). Parts, in this order (each writes its rows to the JSON as it ends, so a
run cut short still leaves what it measured):

1. ``pipeline``: :meth:`PoseTrackingPipeline.process` over a synthetic crowd
   (:mod:`fiftyone_posetrack.synth`, 1920 x 1080, ~20 people in view) in
   frames/s with the per-stage split (``pipeline.timings``);
   ``baseline``: in the same run, mmpose's top-down demo loop
   (``demo/topdown_demo_with_mmdet.py``: ``inference_detector`` then
   ``inference_topdown`` per frame) with the same model objects. A random-weight
   detector finds random boxes, so both sides run the detector in full and then
   use the rendered ground-truth boxes (the same ~20 people) for tracking and
   pose: the pose cost is that of a real crowd.
2. ``pose``: top-down pose (HRNet-w32, RTMPose-m) persons/s against the crop
   batch size, fp32 and fp16 (``torch.autocast``), end to end
   (:meth:`PoseEstimator.estimate_batch`), and split into the CPU preprocessing
   (mmpose's per-crop test pipeline) and the model step on a ready batch.
3. ``det``: detectors (RTMDet-m, Cascade R-CNN R50-FPN) frames/s against the
   batch size (:meth:`Detector.detect`), and the CPU preprocessing alone.
4. ``reid``: OSNet x1.0 (random weights) crops/s, fp32 / fp16.
5. ``paths``: every CUDA path the package offers, run once, with its outcome.
6. ``ray`` (only when named in ``--parts``): the Ray engine with one worker per
   GPU against an in-process run, through ``bench/bench_ray.py --device cuda``
   (it needs FiftyOne and Ray: skipped, saying so, where they do not import).

``cpu_floor`` (after ``pipeline``): the pipeline with a free detector and a free
pose model: what its CPU stages (tracking, optical-flow smoothing) cost per
frame, i.e. the most frames/s any GPU can give it. ``cpu_prep``: the CPU time
of the detector's and the pose model's preprocessing (the per-crop warps).

Writes ``bench_gpu.json`` and ``bench_gpu.md`` into ``--out``. Timings: each
point runs ``warmup`` calls, then repeats for at least ``--seconds`` (default 1; and 3
calls); the GPU is synchronised around every call.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import platform
import sys
import time
import traceback

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: detectors: name -> (config shipped in the mmdet 3.3.0 wheel, config overrides); the first one
#: drives the pipeline. Pose models (mmpose 1.3.2 wheel, COCO-17, 256 x 192 crops): the first is
#: a heatmap model (HRNet class), the second a SimCC one (RTMPose class); ``pose_pair`` the two
#: heatmap models of the heatmap-averaging path; ``reid_arch`` the ReID network.
MODELS = dict(
    det={"rtmdet-m": ("rtmdet_m_8xb32-300e_coco.py", None), "cascade-rcnn-r50": ("cascade-rcnn_r50_fpn_1x_coco.py", None)},
    pose={"hrnet-w32": "td-hm_hrnet-w32_8xb64-210e_coco-256x192.py", "rtmpose-m": "rtmpose-m_8xb256-420e_coco-256x192.py"},
    pose_pair=("td-hm_hrnet-w32_8xb64-210e_coco-256x192.py", "td-hm_res50_8xb64-210e_coco-256x192.py"),
    reid_arch="osnet_x1_0",
)  # fmt: skip
#: the smoke run's light models of the same classes and code paths (a 2-core CPU runs them in seconds)
SMOKE_MODELS = dict(
    det={"rtmdet-tiny": ("rtmdet_tiny_8xb32-300e_coco.py", None),
         "cascade-rcnn-r50": ("cascade-rcnn_r50_fpn_1x_coco.py", {"model.test_cfg.rpn.max_per_img": 20})},
    pose={"mobilenetv2-heatmap": "td-hm_mobilenetv2_8xb64-210e_coco-256x192.py", "rtmpose-t": "rtmpose-t_8xb256-420e_coco-256x192.py"},
    pose_pair=("td-hm_mobilenetv2_8xb64-210e_coco-256x192.py", "td-hm_mobilenetv2_8xb64-210e_coco-256x192.py"),
    reid_arch="osnet_x0_25",
)  # fmt: skip

#: sizes of a full run and of the CPU smoke run
FULL = dict(
    width=1920, height=1080, people=26, frames=96, baseline_frames=32, det_batches=(1, 2, 4, 8, 16),
    pose_batches=(1, 8, 32, 64, 128), reid_crops=(20, 64), seconds=1.0, warmup=2, min_calls=3, det_input=0,
    budget_s=420.0, models=MODELS,
)  # fmt: skip
SMOKE = dict(
    width=320, height=192, people=4, frames=2, baseline_frames=1, det_batches=(2,),
    pose_batches=(2,), reid_crops=(2,), seconds=0.0, warmup=1, min_calls=1, det_input=128,
    budget_s=float("inf"), models=SMOKE_MODELS,
)  # fmt: skip


def sig(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits (rates span 0.01/s on a CPU to 10^4/s on a GPU)."""
    return float(f"{x:.{digits}g}")


# -- timing ------------------------------------------------------------------------------------


class Bench:
    """Timing, the time budget and the results file of one run."""

    def __init__(self, device: str, sizes: dict, out: pathlib.Path, budget_s: float):
        import torch

        self.torch = torch
        self.device = device
        self.cuda = device.startswith("cuda")
        self.sizes = sizes
        self.out = out
        self.deadline = time.perf_counter() + budget_s
        self.results: dict = {"rows": [], "skipped": [], "errors": []}
        self.models: dict = {}  # built once per run, shared by the parts

    def model(self, key, build):
        """The model built by ``build()`` for ``key``, built on first use."""
        if key not in self.models:
            self.models[key] = build()
        return self.models[key]

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def amp(self, fp16: bool):
        """fp16 autocast on CUDA; on the CPU (smoke runs) the fp32 path (returns the precision run)."""
        if fp16 and self.cuda:
            return self.torch.autocast("cuda", dtype=self.torch.float16), "fp16"
        return contextlib.nullcontext(), "fp32"

    def time(self, fn, units: int) -> dict:
        """Runs ``fn`` (which does ``units`` items of work) and returns its rate."""
        s = self.sizes
        for _ in range(s["warmup"]):
            fn()
        self.sync()
        calls, start = 0, time.perf_counter()
        while calls < s["min_calls"] or time.perf_counter() - start < s["seconds"]:
            fn()
            self.sync()
            calls += 1
        elapsed = time.perf_counter() - start
        return {"calls": calls, "ms_per_call": 1000 * elapsed / calls, "per_s": units * calls / elapsed}

    def row(self, part: str, **fields) -> dict:
        row = {"part": part, **fields}
        self.results["rows"].append(row)
        print(json.dumps(row), flush=True)
        return row

    def skip(self, what: str, why: str) -> None:
        self.results["skipped"].append({"what": what, "why": why})
        print(f"skipped {what}: {why}", flush=True)

    def error(self, what: str, exc: BaseException) -> None:
        self.results["errors"].append({"what": what, "error": f"{type(exc).__name__}: {exc}"})
        print(f"ERROR in {what}:", flush=True)
        traceback.print_exc()

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "bench_gpu.json").write_text(json.dumps(self.results, indent=1, default=str))
        (self.out / "bench_gpu.md").write_text(markdown(self.results))


# -- inputs -------------------------------------------------------------------------------------


def render_crowd_frames(sizes: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Synthetic crowd frames (BGR uint8) and their ground-truth boxes (pixels, x1 y1 x2 y2)."""
    from fiftyone_posetrack.synth import iter_frames, random_scene

    scene = random_scene(sizes["people"], sizes["frames"], sizes["width"], sizes["height"], seed=0)
    frames, boxes = [], []
    for rendered in iter_frames(scene):
        frames.append(rendered.image)
        boxes.append(rendered.truth.boxes.astype(np.float64))
    return frames, boxes


def take_crops(frames, boxes, n: int) -> tuple[list, list]:
    """The first frames whose boxes add up to ``n`` crops (boxes reused when the video has fewer)."""
    out_frames, out_boxes, total, i = [], [], 0, 0
    while total < n:
        b = boxes[i % len(boxes)][: n - total]
        if len(b):
            out_frames.append(frames[i % len(frames)])
            out_boxes.append(b)
            total += len(b)
        i += 1
        if i > 10 * len(frames) and total == 0:
            raise ValueError("the synthetic crowd has no person in view")
    return out_frames, out_boxes


class TruthBoxes:
    """A detector stand-in for the timing runs: the real detector runs in full on every batch, then
    the frames' rendered ground-truth boxes are handed on (a random-weight detector's boxes are noise).

    Frames are matched to their boxes by the order in which ``detect`` sees them.
    """

    def __init__(self, detector, boxes: list[np.ndarray]):
        self.detector, self.boxes, self.cursor = detector, boxes, 0
        self.batch_size = detector.batch_size

    def detect(self, frames):
        from fiftyone_posetrack.types import FrameDetections

        self.detector.detect(frames)
        out = []
        for _ in frames:
            b = self.boxes[self.cursor % len(self.boxes)]
            out.append(FrameDetections(b.copy(), np.full(len(b), 0.9)))
            self.cursor += 1
        return out


class NoDetector:
    """Detects nothing, instantly: with :class:`TruthBoxes`, the pipeline's detector costs nothing."""

    batch_size = 8

    def detect(self, frames):
        return []


class TemplatePoses:
    """A pose estimator that costs nothing: 17 joints at fixed places of each box (a standing
    person's COCO layout), score 0.9. Times the CPU stages around pose (smoothing, tracking)."""

    LAYOUT = np.array([
        [.5, .08], [.55, .06], [.45, .06], [.6, .08], [.4, .08], [.68, .22], [.32, .22], [.75, .38],
        [.25, .38], [.78, .52], [.22, .52], [.62, .55], [.38, .55], [.62, .75], [.38, .75], [.62, .95], [.38, .95],
    ])  # fmt: skip

    def estimate_batch(self, frames, boxes_per_frame):
        out = []
        for boxes in boxes_per_frame:
            b = np.asarray(boxes, np.float64).reshape(-1, 4)
            wh = (b[:, 2:] - b[:, :2])[:, None, :]
            out.append((b[:, None, :2] + self.LAYOUT[None] * wh, np.full((len(b), 17), 0.9)))
        return out


# -- models -------------------------------------------------------------------------------------


def build_detector(b: "Bench", name: str, batch_size: int = 8):
    """An mmdet detector of the run's table, random weights; a smoke run shrinks its input size."""
    det = b.model(("det", name), lambda: _build_detector(b, name))
    det.batch_size = batch_size
    return det


def _build_detector(b: "Bench", name: str):
    from fiftyone_posetrack.detection.mmdet import MMDetDetector

    config, options = b.sizes["models"]["det"][name]
    side = b.sizes["det_input"]  # the package's det_input_size: 0 = the config's own
    det = MMDetDetector(config, None, score_threshold=0.3, device=b.device, cfg_options=options, input_size=side)
    if side:  # the same input size for mmdet's inference_detector (the baseline)
        det.model.cfg.test_dataloader.dataset.pipeline = MMDetDetector.test_pipeline_steps(det.model.cfg, side)
    return det


def package_pose_batch() -> int:
    """The crops per forward pass that the package's pipeline uses (MMPoseEstimator's default)."""
    import inspect

    from fiftyone_posetrack.pose.mmpose import MMPoseEstimator

    return inspect.signature(MMPoseEstimator).parameters["batch_size"].default


def build_pose(b: "Bench", config: str, second: str | None = None):
    """An mmpose estimator (a config name) with random weights, with the package's default batch size."""
    from fiftyone_posetrack.pose.mmpose import MMPoseEstimator

    pose = b.model(("pose", config, second), lambda: MMPoseEstimator(
        config, None, device=b.device, second_model=f"mmpose:{second}" if second else None))  # fmt: skip
    pose.batch_size = package_pose_batch()
    return pose


def build_osnet(b: "Bench", half: bool, batch_size: int = 64):
    """The run's OSNet with random weights (no flip: one forward pass per crop)."""
    from fiftyone_posetrack.reid.torch_reid import TorchEmbedder, build_reid_model

    model = build_reid_model(b.sizes["models"]["reid_arch"])
    return TorchEmbedder(model, model.feature_dim, device=b.device, half=half, input_size=(256, 128), flip=False,
                         batch_size=batch_size, runtime=cpu_runtime(b))  # fmt: skip


def cpu_runtime(b: "Bench") -> str:
    """ReID's CPU route: eager in smoke runs (no ONNX export per embedder); the package's choice otherwise."""
    return "eager" if b.sizes["min_calls"] == 1 else "auto"


# -- parts --------------------------------------------------------------------------------------


def part_pipeline(b: Bench, frames, boxes) -> None:
    """The whole pipeline over the crowd, and the per-frame demo loop with the same models."""
    from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline

    models = b.sizes["models"]
    det_name = next(iter(models["det"]))
    det = build_detector(b, det_name)
    heatmap, simcc = list(models["pose"])
    reid_arch = models["reid_arch"]
    people = float(np.mean([len(x) for x in boxes]))
    h, w = frames[0].shape[:2]
    default_batch = package_pose_batch()
    variants = [
        # (pose model, pose crops per forward pass, reid, fp16)
        (simcc, default_batch, False, False),
        (simcc, 256 if b.cuda else 0, False, False),  # (the smoke run skips it)
        (heatmap, default_batch, False, False),
        (simcc, default_batch, True, False),
        (simcc, default_batch, True, True),
    ]
    poses = {}
    for pose_name, pose_batch, reid, fp16 in variants:
        what = f"pipeline {pose_name} pose_batch={pose_batch} reid={reid} fp16={fp16}"
        if (fp16 and not b.cuda) or not pose_batch:
            continue  # fp16 autocast is CUDA-only
        if b.left() < 30:
            b.skip(what, "time budget")
            continue
        try:
            pose = poses[pose_name] = build_pose(b, models["pose"][pose_name])
            pose.batch_size = pose_batch
            embedder = build_osnet(b, half=fp16) if reid else None
            config = PipelineConfig(  # (the model objects are passed in; the specs name them)
                detector=f"mmdet:{models['det'][det_name][0]}", pose=f"mmpose:{models['pose'][pose_name]}",
                reid=None, device=b.device, batch_size=8,
                tracker="deepsort" if reid else "bytetrack",
            )  # fmt: skip
            pipe = PoseTrackingPipeline(config, detector=TruthBoxes(det, boxes), pose_estimator=pose, embedder=embedder)
            batches = [(list(range(s + 1, s + 9)), frames[s : s + 8]) for s in range(0, len(frames), 8)]
            ctx, precision = b.amp(fp16)
            warm = batches[:1] if b.sizes["warmup"] > 1 else []  # smoke runs: no warm-up pass
            with ctx:
                for _ in pipe.process(warm):  # model warm-up (cudnn autotune, allocator)
                    pass
                pipe.timings.clear()
                pipe.detector.cursor = 0
                b.sync()
                start = time.perf_counter()
                n = sum(1 for _ in pipe.process(batches))
                b.sync()
                elapsed = time.perf_counter() - start
            stages = {k: sig(v / n * 1000) for k, v in sorted(pipe.timings.items())}
            stages["other"] = round((elapsed - sum(pipe.timings.values())) / n * 1000, 3)
            b.row("pipeline", detector=det_name, pose=pose_name, pose_batch=pose_batch,
                  reid=reid_arch if reid else None, precision=precision, frames=n, size=f"{w}x{h}", people_per_frame=sig(people),
                  fps=sig(n / elapsed), ms_per_frame_by_stage=stages)  # fmt: skip
        except Exception as e:
            b.error(what, e)
        b.write()
    for pose_name, pose in poses.items():
        what = f"baseline {pose_name}"
        pose.batch_size = default_batch
        if b.left() < 20:
            b.skip(what, "time budget")
            continue
        try:
            part_baseline(b, det, det_name, pose, pose_name, frames[: b.sizes["baseline_frames"]], boxes)
        except Exception as e:
            b.error(what, e)
        b.write()
    ratios = {}
    for row in b.results["rows"]:
        if row["part"] == "baseline":
            fast = [r for r in b.results["rows"] if r["part"] == "pipeline" and r["pose"] == row["pose"]
                    and r["reid"] is None and r["precision"] == "fp32" and r["pose_batch"] == default_batch]  # fmt: skip
            if fast:
                ratios[row["pose"]] = sig(fast[0]["fps"] / row["fps"])
    b.results["pipeline_vs_baseline"] = ratios
    b.write()


def part_cpu_floor(b: Bench, frames, boxes) -> None:
    """The pipeline's CPU stages alone (tracking, optical-flow box and pose smoothing) at the bench's
    frame size: with free detection and pose, the most frames/s any GPU can give this pipeline."""
    from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline

    h, w = frames[0].shape[:2]
    for tracker in ("bytetrack", "deepsort"):
        config = PipelineConfig(detector="mmdet:none.py", pose="mmpose:none.py", reid=None, device="cpu",
                                batch_size=8, tracker=tracker)  # fmt: skip (free stand-ins are passed in)
        pipe = PoseTrackingPipeline(config, detector=TruthBoxes(NoDetector(), boxes), pose_estimator=TemplatePoses(),
                                    embedder=None)  # fmt: skip
        batches = [(list(range(s + 1, s + 9)), frames[s : s + 8]) for s in range(0, len(frames), 8)]
        start, cpu_start = time.perf_counter(), time.process_time()
        n = sum(1 for _ in pipe.process(batches))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        stages = {k: sig(v / n * 1000) for k, v in sorted(pipe.timings.items()) if k not in ("detection", "pose")}
        stages["other"] = round((elapsed - sum(pipe.timings.values())) / n * 1000, 3)
        b.row("cpu_floor", tracker=tracker, frames=n, size=f"{w}x{h}",
              people_per_frame=round(float(np.mean([len(x) for x in boxes])), 1),
              fps=sig(n / elapsed), cpu_ms_per_frame=sig(cpu / n * 1000),
              ms_per_frame_by_stage=stages)  # fmt: skip
    b.write()


def part_cpu_prep(b: Bench, frames, boxes) -> None:
    """CPU time of the models' preprocessing as the package runs it: mmpose's per-crop test pipeline
    (``MMPoseEstimator._batch``) over all boxes of 8 frames, and mmdet's per-frame test pipeline."""
    from mmengine.dataset import pseudo_collate

    n = min(8, len(frames))
    fr, bx = frames[:n], boxes[:n]
    index = np.repeat(np.arange(n), [len(x) for x in bx])
    flat = np.concatenate(bx)
    models = b.sizes["models"]
    for name, config in models["pose"].items():
        pose = build_pose(b, config)
        pose._batch(fr, index[:2], flat[:2])  # warm-up
        cpu0 = time.process_time()
        for _ in range(3):
            pose._batch(fr, index, flat)
        cpu = (time.process_time() - cpu0) / 3
        b.row("cpu_prep", what=f"pose crops ({name})", frames=n, crops=len(flat),
              cpu_ms_per_crop=sig(cpu / max(len(flat), 1) * 1000), cpu_ms_per_frame=sig(cpu / n * 1000))  # fmt: skip
    det_name = next(iter(models["det"]))
    det = build_detector(b, det_name)
    cpu0 = time.process_time()
    for _ in range(3):
        pseudo_collate([det.pipeline(dict(img=f, img_id=i)) for i, f in enumerate(fr)])
    cpu = (time.process_time() - cpu0) / 3
    b.row("cpu_prep", what=f"detector input ({det_name})", frames=n, crops=0, cpu_ms_per_crop=0.0,
          cpu_ms_per_frame=sig(cpu / n * 1000))  # fmt: skip
    b.write()


def part_baseline(b: Bench, det, det_name: str, pose, pose_name: str, frames, boxes) -> None:
    """mmpose's demo/topdown_demo_with_mmdet.py loop: one detector call and one pose call per frame."""
    from mmdet.apis import inference_detector
    from mmpose.apis import inference_topdown
    from mmpose.structures import merge_data_samples
    from mmpose.utils import adapt_mmdet_pipeline

    det_model, pose_model = det.model, pose.model
    det_model.cfg = adapt_mmdet_pipeline(det_model.cfg)  # as the demo does (mmdet transforms in mmpose's scope)

    def demo_frame(i: int) -> None:
        img = frames[i]
        result = inference_detector(det_model, img)
        pred = result.pred_instances.cpu().numpy()
        keep = (pred.labels == det.person_label) & (pred.scores > 0.3)
        _ = pred.bboxes[keep]  # the demo's person filter (then NMS); the truth boxes are used instead
        merge_data_samples(inference_topdown(pose_model, img, boxes[i]))

    for i in range(min(2, len(frames))):
        demo_frame(i)  # warm-up
    b.sync()
    start = time.perf_counter()
    for i in range(len(frames)):
        demo_frame(i)
    b.sync()
    elapsed = time.perf_counter() - start
    h, w = frames[0].shape[:2]
    people = float(np.mean([len(boxes[i]) for i in range(len(frames))]))
    b.row("baseline", detector=det_name, pose=pose_name, reid=None, precision="fp32", frames=len(frames),
          size=f"{w}x{h}", people_per_frame=sig(people), fps=sig(len(frames) / elapsed),
          loop="inference_detector + inference_topdown per frame")  # fmt: skip


def part_pose(b: Bench, frames, boxes) -> None:
    """Top-down pose throughput against the crop batch size, fp32 and fp16."""
    import torch

    for name, config in b.sizes["models"]["pose"].items():
        if b.left() < 30:
            b.skip(f"pose {name}", "time budget")
            continue
        try:
            pose = build_pose(b, config)
        except Exception as e:
            b.error(f"pose {name}: build", e)
            continue
        for bs in b.sizes["pose_batches"]:
            if b.left() < 15:
                b.skip(f"pose {name} batch {bs}", "time budget")
                continue
            try:
                pose.batch_size = bs
                fr, bx = take_crops(frames, boxes, bs)
                index = np.repeat(np.arange(len(fr)), [len(x) for x in bx])
                flat = np.concatenate(bx)
                pre = b.time(lambda: pose._batch(fr, index, flat), bs)
                batch = pose._batch(fr, index, flat)
                for fp16 in (False, True):
                    ctx, precision = b.amp(fp16)
                    with ctx:
                        e2e = b.time(lambda: pose.estimate_batch(fr, bx), bs)
                        with torch.no_grad():
                            step = b.time(lambda: pose.model.test_step(batch), bs)
                    b.row("pose", model=name, batch=bs, precision=precision, persons_per_s=sig(e2e["per_s"]),
                          preprocess_persons_per_s=sig(pre["per_s"]),
                          model_step_persons_per_s=sig(step["per_s"]))  # fmt: skip
                    if not b.cuda:
                        break  # fp16 is CUDA-only
            except Exception as e:
                b.error(f"pose {name} batch {bs}", e)
        b.write()


def part_det(b: Bench, frames) -> None:
    """Detector throughput against the batch size, and its CPU preprocessing alone."""
    from mmengine.dataset import pseudo_collate

    for name in b.sizes["models"]["det"]:
        if b.left() < 30:
            b.skip(f"det {name}", "time budget")
            continue
        try:
            det = build_detector(b, name)
        except Exception as e:
            b.error(f"det {name}: build", e)
            continue
        for bs in b.sizes["det_batches"]:
            if b.left() < 15:
                b.skip(f"det {name} batch {bs}", "time budget")
                continue
            try:
                det.batch_size = bs
                batch = [frames[i % len(frames)] for i in range(bs)]
                t = b.time(lambda: det.detect(batch), bs)
                pre = b.time(lambda: pseudo_collate([det.pipeline(dict(img=f, img_id=i)) for i, f in enumerate(batch)]), bs)
                h, w = batch[0].shape[:2]
                b.row("det", model=name, batch=bs, size=f"{w}x{h}", precision="fp32", frames_per_s=sig(t["per_s"]),
                      preprocess_frames_per_s=sig(pre["per_s"]))  # fmt: skip
            except Exception as e:
                b.error(f"det {name} batch {bs}", e)
        b.write()


def part_reid(b: Bench, frames, boxes) -> None:
    """OSNet x1.0 crops/s (crops of one frame per call), fp32 and fp16."""
    import torch

    for fp16 in (False, True):
        if fp16 and not b.cuda:
            continue
        try:
            emb = build_osnet(b, half=fp16)
            for n in b.sizes["reid_crops"]:
                fr, bx = take_crops(frames, boxes, n)
                frame, crops = fr[0], np.concatenate(bx)  # crops of one frame (boxes of later frames reused)
                t = b.time(lambda: emb.embed(frame, crops), n)
                x = torch.zeros((n, 3, 256, 128), device=emb.device, dtype=emb.dtype)
                with torch.inference_mode():
                    m = b.time(lambda: emb.model(x), n)
                b.row("reid", model=b.sizes["models"]["reid_arch"], crops=n, precision="fp16" if fp16 else "fp32",
                      crops_per_s=sig(t["per_s"]), model_only_crops_per_s=sig(m["per_s"]))  # fmt: skip
        except Exception as e:
            b.error(f"reid fp16={fp16}", e)
    b.write()


def part_paths(b: Bench, frames, boxes, models_dir: pathlib.Path | None) -> None:
    """Runs every device path of the package once and records its outcome."""
    frame, fb = frames[0], boxes[0]

    class NotOffered(Exception):
        """The package (this version) has no such path."""

    def attempt(what: str, fn) -> None:
        try:
            detail = fn()
            b.row("paths", path=what, outcome="ok", detail=detail)
        except NotOffered as e:
            b.row("paths", path=what, outcome="not offered", detail=str(e))
        except Exception as e:
            b.row("paths", path=what, outcome="error", detail=f"{type(e).__name__}: {e}"[:300])

    def model_file(rel: str) -> str:
        if models_dir is None or not (models_dir / rel).is_file():
            raise FileNotFoundError(f"{rel} not carried (models dir {models_dir})")
        return str(models_dir / rel)

    def ort_providers():
        import onnxruntime as ort

        return ort.get_available_providers()

    def heatmap_averaging():
        pose = build_pose(b, *b.sizes["models"]["pose_pair"])
        kps, _ = pose.estimate(frame, fb)
        return f"{pose!r}: {kps.shape}"

    def rtmdet_onnx():
        from fiftyone_posetrack.detection.onnx_rtmdet import RTMDetONNX

        det = RTMDetONNX(model_file("rtmdet-nano-person/end2end.onnx"), device=b.device)
        n = len(det.detect_one(frame))
        return f"providers {det.session.get_providers()}; {n} persons"

    def yolox_onnx():
        from fiftyone_posetrack.detection.onnx_yolox import YOLOXONNX

        det = YOLOXONNX(model_file("yolox-nano/yolox_nano.onnx"), device=b.device)
        n = len(det.detect_one(frame))
        return f"providers {det.session.get_providers()}; {n} persons"

    def omz_reid():
        import fiftyone_posetrack.reid as reid

        # its NHWC / BGR / 0-255 input is declared by the model zoo (make_embedder by name)
        if "omz-person-reid-0287" not in getattr(reid, "reid_model_names", list)():
            raise NotOffered("this package version has no named omz-person-reid-0287 (branch zoo adds it)")
        model_file("omz-person-reid-0287/person-reidentification-retail-0287.onnx")
        emb = reid.make_embedder("omz-person-reid-0287", models_dir=models_dir, device=b.device)
        return f"providers {emb.session.get_providers()}; {emb.embed(frame, fb).shape}"

    def osnet_real(half: bool):
        from fiftyone_posetrack.reid.torch_reid import TorchReID

        emb = TorchReID("osnet_x0_25", weights=model_file("osnet-x0_25-msmt17/osnet_x0_25_msmt17.pth"),
                        device=b.device, half=half, runtime=cpu_runtime(b))  # fmt: skip
        shape = emb.embed(frame, fb).shape
        return f"{emb.runtime_used}: {shape}"

    attempt("onnxruntime providers", ort_providers)
    det_name = next(iter(b.sizes["models"]["det"]))
    attempt(f"mmdet {det_name} (MMDetDetector)", lambda: f"{len(build_detector(b, det_name).detect_one(frame))} boxes")
    attempt("mmpose heatmap averaging (" + " + ".join(b.sizes["models"]["pose_pair"]) + ")", heatmap_averaging)
    attempt("RTMDet ONNX (onnxruntime)", rtmdet_onnx)
    attempt("YOLOX ONNX (onnxruntime)", yolox_onnx)
    attempt("OnnxReID omz-person-reid-0287 (onnxruntime)", omz_reid)
    attempt("TorchReID osnet_x0_25 fp32 (real weights)", lambda: osnet_real(False))
    attempt("TorchReID osnet_x0_25 fp16 (real weights)", lambda: osnet_real(True))
    b.write()


# -- report -------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    """The results as markdown tables, one per part."""
    env = results.get("env", {})
    lines = ["# bench_gpu", "", f"`{results.get('command', '')}`", ""]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    if results.get("pipeline_vs_baseline"):
        lines += ["", "Pipeline (fp32, no ReID) frames/s over the per-frame demo loop's: "
                  + ", ".join(f"{k} {v}x" for k, v in results["pipeline_vs_baseline"].items())]  # fmt: skip
    rows = results.get("rows", [])
    for part in ("pipeline", "baseline", "cpu_floor", "cpu_prep", "pose", "det", "reid", "paths", "ray"):
        part_rows = [r for r in rows if r["part"] == part]
        if not part_rows:
            continue
        keys = [k for k in part_rows[0] if k != "part"]
        for r in part_rows[1:]:
            keys += [k for k in r if k not in keys and k != "part"]
        lines += ["", f"## {part}", "", "| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
        for r in part_rows:
            cells = []
            for k in keys:
                v = r.get(k, "")
                if isinstance(v, dict):
                    v = ", ".join(f"{a} {c}" for a, c in v.items())
                cells.append(str(v).replace("|", "/"))
            lines.append("| " + " | ".join(cells) + " |")
    for title, key in (("skipped", "skipped"), ("errors", "errors")):
        if results.get(key):
            lines += ["", f"## {title}", ""] + [f"- {e['what']}: {e.get('why', e.get('error'))}" for e in results[key]]
    return "\n".join(lines) + "\n"


def environment(device: str) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "device": device}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    for mod in ("mmcv", "mmdet", "mmpose", "mmengine", "onnxruntime", "cv2", "numpy"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as e:  # not installed, or fails to import
            env[mod] = f"unavailable ({type(e).__name__})"
    try:
        import mmcv._ext as ext

        env["mmcv_ops"] = "torchvision stand-in (bench/mmcv_ext_torchvision.py)" if hasattr(ext, "IMPLEMENTED") else "compiled"
    except Exception as e:
        env["mmcv_ops"] = f"unavailable ({type(e).__name__})"
    env["cpu_count"] = os.cpu_count()
    return env


PARTS = ("pipeline", "cpu_floor", "cpu_prep", "pose", "det", "reid", "paths")
#: parts run only when named (``--parts ...,ray``): they need FiftyOne, a mongod and Ray
EXTRA_PARTS = ("ray",)


def part_ray(b: Bench, device: str) -> None:
    """The Ray engine with one worker per GPU against one in-process run (``bench/bench_ray.py``,
    which starts its own mongod and Ray instance): wall times, speed-up, labels identical,
    which GPU (``CUDA_VISIBLE_DEVICES``) each worker saw."""
    import importlib.util
    import subprocess

    missing = [m for m in ("ray", "fiftyone") if importlib.util.find_spec(m) is None]
    if missing:
        b.skip("ray", f"not importable here: {missing} (carry their wheels to run the Ray part)")
        return
    out = b.out / "bench_ray.json"
    cmd = [sys.executable, str(REPO / "bench" / "bench_ray.py"), "--device", device, "--json", str(out)]
    if b.sizes.get("frames", 96) < 16:  # smoke
        cmd += ["--frames", "8", "--width", "320", "--height", "192"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(60.0, b.left()))
    print(proc.stdout[-4000:], proc.stderr[-2000:], flush=True)
    if proc.returncode not in (0, 1) or not out.exists():
        raise RuntimeError(f"bench_ray.py exit status {proc.returncode}: {proc.stderr[-1500:]}")
    r = json.loads(out.read_text())
    b.row("ray", workers=r["workers"], videos=r["videos"], inprocess_s=sig(r["inprocess_s"]), ray_s=sig(r["ray_s"]),
          speedup=sig(r["speedup"]), labels_identical=r["labels_identical"],
          fixed_cost_per_run_s=sig(r["fixed_cost_per_run_s"]), cost_per_video_s=sig(r["cost_per_video_s"]),
          gpus_seen=sorted({v.get("cuda_visible_devices") or "" for v in r["videos_record"].values()}))  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=pathlib.Path, help="folder for bench_gpu.json / .md")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--smoke", action="store_true", help="tiny inputs, 1-2 iterations per point (a CPU test)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--budget-s", type=float, default=None,
                   help="stop starting new points after this many seconds (default 420; smoke: no limit)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=None, help="timed seconds per point (default 1; smoke 0)")
    p.add_argument("--frames", type=int, default=None, help="frames of the synthetic crowd (default 96; smoke 4)")
    p.add_argument("--models-dir", type=pathlib.Path, default=None,
                   help="real ONNX / ReID model files for the paths part (default: .gpuwheels/models, else ../shared/models)")  # fmt: skip
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = sorted(set(parts) - set(PARTS) - set(EXTRA_PARTS))
    if unknown:
        p.error(f"unknown parts {unknown}; expected a subset of {list(PARTS + EXTRA_PARTS)}")

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU")
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.seconds is not None:
        sizes["seconds"] = args.seconds
    if args.frames is not None:
        sizes["frames"] = max(int(args.frames), sizes["baseline_frames"])
    if args.smoke:  # one thread: a shared CPU's spinning worker threads would only cost time
        torch.set_num_threads(1)
    models_dir = args.models_dir
    if models_dir is None:
        for candidate in (REPO / ".gpuwheels" / "models", REPO.parent / "shared" / "models"):
            if candidate.is_dir():
                models_dir = candidate
                break

    b = Bench(args.device, sizes, args.out, args.budget_s if args.budget_s is not None else sizes["budget_s"])
    b.results["command"] = " ".join(["python", "bench/bench_gpu.py", *(argv if argv is not None else sys.argv[1:])])
    b.results["env"] = environment(args.device)
    b.results["sizes"] = sizes
    b.write()
    start = time.perf_counter()
    frames, boxes = render_crowd_frames(sizes)
    b.results["env"]["render_s"] = sig(time.perf_counter() - start)
    b.results["env"]["people_in_view_per_frame"] = round(float(np.mean([len(x) for x in boxes])), 1)
    print(json.dumps(b.results["env"]), flush=True)
    for part in parts:
        if b.left() < 10:
            b.skip(part, "time budget")
            continue
        t0, cpu0 = time.perf_counter(), time.process_time()
        # cuDNN autotuning for the fixed-shape model parts (each point warms up first); the pipeline
        # and the demo loop run as the package and mmpose leave it (off: their crop batches vary)
        torch.backends.cudnn.benchmark = b.cuda and part not in ("pipeline", "cpu_floor", "cpu_prep")
        b.results["env"].setdefault("cudnn_benchmark", {})[part] = torch.backends.cudnn.benchmark
        try:
            if part == "pipeline":
                part_pipeline(b, frames, boxes)
            elif part == "cpu_floor":
                part_cpu_floor(b, frames, boxes)
            elif part == "cpu_prep":
                part_cpu_prep(b, frames, boxes)
            elif part == "pose":
                part_pose(b, frames, boxes)
            elif part == "det":
                part_det(b, frames)
            elif part == "reid":
                part_reid(b, frames, boxes)
            elif part == "paths":
                part_paths(b, frames, boxes, models_dir)
            elif part == "ray":
                part_ray(b, args.device)
        except Exception as e:
            b.error(part, e)
        b.results.setdefault("part_seconds", {})[part] = sig(time.perf_counter() - t0)
        b.results.setdefault("part_cpu_seconds", {})[part] = sig(time.process_time() - cpu0)
        if b.cuda:
            b.results["env"]["max_gpu_memory_gib"] = sig(torch.cuda.max_memory_allocated() / 2**30)
        b.write()
    print(markdown(b.results))
    return 1 if b.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
