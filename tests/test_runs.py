"""Run records: every label-writing run is a FiftyOne run with its config, model hashes, versions and outcome.

Reproduction 3 of issue 13 (a rerun with another configuration used to print
"0 video(s) processed, 1 already done" and keep the old labels) through
Python, the CLI and the run operator, and ``posetrack runs``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone.operators.executor import ExecutionError

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.fo.dataset import load_synth
from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin
from fiftyone_posetrack.fo.run import run
from fiftyone_posetrack.fo.runs import (
    RUNTIME_OPTIONS,
    config_differences,
    file_sha256,
    get_run,
    list_runs,
    new_config,
    who,
)
from fiftyone_posetrack.fo.stages import track_detections
from fiftyone_posetrack.models import MODELS
from fiftyone_posetrack.pipeline import PipelineConfig
from fiftyone_posetrack.pipeline.options import OPTIONS
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError
from test_bad_input import snapshot

FRAMES = 12


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    return render_crowd(tmp_path_factory.mktemp("runs-crowd"), people=3, frames=FRAMES, width=320, height=192, seed=5)


@pytest.fixture()
def dataset(crowd, request):
    name = f"runs-{request.node.name}"[:60]
    ds = load_synth(crowd.out_dir, name, overwrite=True)
    ds.persistent = True
    yield ds
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


@pytest.fixture(scope="module")
def models(shared_dir) -> str:
    return str(shared_dir / "models")


def cli_args(dataset, models, *extra):
    return ["run", "--dataset", dataset.name, "--models-dir", models, "--reid", "none", *extra]


# --------------------------------------------------------------------------- the record


def test_a_pipeline_run_is_recorded_with_config_models_versions_and_outcome(dataset, models):
    config = PipelineConfig(models_dir=models, reid=None)
    summary = run(dataset, config, progress=False)
    assert summary.run_key == "posetrack_run_1"
    assert dataset.list_runs() == ["posetrack_run_1"], "a FiftyOne run, listed as such"
    info = dataset.get_run_info("posetrack_run_1")
    assert info.config.method == "posetrack" and info.config.job == "pose tracking"

    record = get_run(dataset, summary.run_key)
    assert record["fields"] == ["pred_detections", "pred_keypoints"]
    assert record["status_field"] == "pred_detections_status"
    assert record["options"] == json.loads(json.dumps(config.to_dict()))
    assert "batch_size" not in record["label_options"] and record["label_options"]["tracker"] == "bytetrack"
    detector = record["models"]["detector"]
    path = os.path.join(models, "rtmdet-nano-person", MODELS["rtmdet-nano-person"].main_file)
    assert detector["spec"] == "rtmdet-nano-person" and detector["files"][0]["path"] == os.path.abspath(path)
    with open(path, "rb") as fh:
        assert detector["files"][0]["sha256"] == hashlib.sha256(fh.read()).hexdigest()
    assert record["models"]["pose"]["files"][0]["sha256"]
    assert record["versions"]["fiftyone"] == fo.__version__ and "onnxruntime" in record["versions"]
    assert record["user"] == who() and re.match(r"^[^@]+@[^:]+:\d+$", record["user"])
    assert record["started_at"] <= record["finished_at"]
    sid = dataset.first().id
    assert record["videos"] == {sid: {"status": "done", "frames": FRAMES, "seconds": pytest.approx(record["videos"][sid]["seconds"])}}
    assert record["status_counts"] == {"done": 1}
    assert set(record["timings"]) >= {"detection", "pose", "write"}
    assert dataset.first()["pred_detections_run"] == "posetrack_run_1"
    assert list_runs(dataset.name) == ["posetrack_run_1"] and get_run(dataset.name, "posetrack_run_1") == record


def test_same_configuration_is_already_done_runtime_options_aside(dataset, models):
    run(dataset, PipelineConfig(models_dir=models, reid=None), progress=False)
    before = snapshot(dataset)
    again = run(dataset, PipelineConfig(models_dir=models, reid=None, batch_size=3, device="cpu"), progress=False)
    assert again.processed == [] and again.skipped == [dataset.first().id]
    assert again.run_key is None and dataset.list_runs() == ["posetrack_run_1"], "a run that did nothing leaves no record"
    assert snapshot(dataset) == before


def test_rerun_with_another_configuration_is_refused_through_the_cli(dataset, models, capsys):
    """Reproduction 3: ``posetrack run --dataset d`` then ``--detector yolox-nano --tracker deepsort``."""
    assert main(cli_args(dataset, models)) == 0
    assert "1 video(s) processed" in capsys.readouterr().out
    before = snapshot(dataset)
    assert main(cli_args(dataset, models, "--detector", "yolox-nano", "--tracker", "deepsort")) == 2
    err = capsys.readouterr().err
    assert (
        "pred_detections of 1 video(s) was written by run 'posetrack_run_1' with detector='rtmdet-nano-person', "
        f"tracker='bytetrack', tracker_params={OPTIONS['tracker_params'].default!r}; this run has "
        "detector='yolox-nano', tracker='deepsort', tracker_params={}; pass overwrite=True (--overwrite) to recompute"
    ) in err, err
    assert snapshot(dataset) == before and dataset.list_runs() == ["posetrack_run_1"]

    assert main(cli_args(dataset, models, "--detector", "yolox-nano", "--tracker", "deepsort", "--overwrite")) == 0
    out = capsys.readouterr().out
    assert "1 video(s) processed, 0 already done" in out and "posetrack_run_2" in out
    assert dataset.first()["pred_detections_run"] == "posetrack_run_2"
    assert get_run(dataset, "posetrack_run_2")["options"]["detector"] == "yolox-nano"

    # posetrack runs DATASET: one line per run
    assert main(["runs", dataset.name]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["KEY", "JOB", "FIELDS", "STARTED", "(UTC)", "VIDEOS", "MODELS"]
    assert [line.split()[0] for line in table[1:]] == ["posetrack_run_1", "posetrack_run_2"]
    assert "1 done" in table[2] and "detector=yolox-nano" in table[2] and "pred_detections,pred_keypoints" in table[2]
    # posetrack runs DATASET KEY: the whole record as JSON
    assert main(["runs", dataset.name, "posetrack_run_2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["key"] == "posetrack_run_2" and record["options"]["tracker"] == "deepsort"
    assert record["models"]["detector"]["files"][0]["sha256"] == file_sha256(record["models"]["detector"]["files"][0]["path"])
    assert main(["runs", dataset.name, "posetrack_run_9"]) == 2
    assert "has no posetrack run 'posetrack_run_9'" in capsys.readouterr().err
    assert main(["runs", "no-such-dataset-xyz"]) == 2


def test_rerun_with_another_configuration_through_the_operator(dataset, models, fo_home):
    install_plugin(fo.config.plugins_dir)

    def execute(**params):
        # as the App submits the form: every field holds a value, most of them the defaults (the
        # default 640 px tiles on this smaller video, the default tracker's parameters with another tracker)
        from operators._common import form_text

        base = {name: form_text(o, o.default_value()) for name, o in OPTIONS.items() if o.default is not None}
        base.update(reid="none", models_dir=models)
        ctx = {"dataset": dataset.name, "params": {**base, **params}, "request_delegation": False}
        return foo.execute_operator(f"{PLUGIN_NAME}/run_pose_tracking", ctx=ctx)

    result = execute().result
    assert result["run_key"] == "posetrack_run_1" and result["processed"] == 1
    assert result["run_record"]["job"] == "pose tracking" and result["run_record"]["status_counts"] == {"done": 1}
    assert result["run_record"]["models"]["detector"] == "rtmdet-nano-person"
    before = snapshot(dataset, ignore=("pred_detections_worker",))
    with pytest.raises(ExecutionError, match=r"written by run 'posetrack_run_1' with tracker='bytetrack', tracker_params=\{.*\}; this run has tracker='deepsort', tracker_params=\{\}"):
        execute(tracker="deepsort")
    assert snapshot(dataset, ignore=("pred_detections_worker",)) == before
    result = execute(tracker="deepsort", overwrite=True).result
    assert result["run_key"] == "posetrack_run_2" and result["processed"] == 1


def test_a_stage_run_is_recorded_and_its_reruns_compared(dataset):
    summary = track_detections(dataset, "gt_detections", "trk", tracker="sort", tracker_params={"max_age": 5}, progress=False)
    record = get_run(dataset, summary.run_key)
    assert record["job"] == "tracking" and record["fields"] == ["trk"]
    assert record["options"]["in_field"] == "gt_detections" and record["options"]["tracker_params"] == {"max_age": 5}
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"with tracker_params=\{'max_age': 5\}; this run has tracker_params=\{'max_age': 9\}"):
        track_detections(dataset, "gt_detections", "trk", tracker="sort", tracker_params={"max_age": 9}, progress=False)
    assert snapshot(dataset) == before


def test_track_post_processing_is_recorded_and_its_reruns_compared(dataset):
    from fiftyone_posetrack.fo.postprocess import postprocess_tracks_field

    track_detections(dataset, "gt_detections", "trk", tracker="sort", progress=False)
    summary = postprocess_tracks_field(dataset, "trk", "trk_post", {"interpolate": 5}, progress=False)
    record = get_run(dataset, summary.run_key)
    assert record["job"] == "track post-processing" and record["options"]["interpolate"] == 5
    assert record["options"]["in_field"] == "trk" and record["status_counts"] == {"done": 1}
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"trk_post of 1 video\(s\) was written by run 'posetrack_run_2' with interpolate=5; this run has interpolate=10"):
        postprocess_tracks_field(dataset, "trk", "trk_post", {"interpolate": 10}, progress=False)
    assert snapshot(dataset) == before
    again = postprocess_tracks_field(dataset, "trk", "trk_post", {"interpolate": 5}, progress=False)
    assert again.processed == [] and again.run_key is None


def test_labels_whose_record_was_deleted_are_not_taken_as_done(dataset):
    summary = track_detections(dataset, "gt_detections", "trk", tracker="sort", progress=False)
    dataset.delete_run(summary.run_key)
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"'trk' holds labels that tracking into 'trk_status' did not write \(no recorded run"):
        track_detections(dataset, "gt_detections", "trk", tracker="sort", progress=False)
    assert snapshot(dataset) == before


# --------------------------------------------------------------------------- comparison and hashes


def _config(**options):
    models = {"detector": {"spec": "d", "files": [{"path": "/m/d.onnx", "size": 1, "sha256": options.pop("sha", "a" * 64)}]}}
    return new_config("pose tracking", ["pred_detections", "pred_keypoints"], "pred_detections_status", options, models)


def test_runtime_options_never_count_and_model_files_do():
    base = _config(tracker="deepsort", batch_size=8, device="auto", flush_frames=500, models_dir="/a")
    assert config_differences(base, _config(tracker="deepsort", batch_size=1, device="cpu", flush_frames=3, models_dir="/b")) == []
    assert {"batch_size", "device", "models_dir", "overwrite", "overwrite_fields"} <= RUNTIME_OPTIONS
    assert config_differences(base, _config(tracker="bytetrack", batch_size=8)) == [("tracker", "deepsort", "bytetrack")]
    assert config_differences(base, _config(tracker="deepsort", sha="b" * 64)) == [("detector files", "a" * 12, "b" * 12)]


def test_model_objects_are_described_without_their_runtime_attributes():
    from fiftyone_posetrack.fo.runs import describe_object
    from fiftyone_posetrack.tracking.box_smoothing import FlowBoxSmoother

    on_cpu, on_gpu = FlowBoxSmoother(alpha=0.3), FlowBoxSmoother(alpha=0.3)
    on_cpu.device, on_gpu.device = "cpu", "cuda"
    assert describe_object(on_cpu) == describe_object(on_gpu)
    assert describe_object(on_cpu)["alpha"] == 0.3 and "device" not in describe_object(on_cpu)
    assert describe_object(FlowBoxSmoother(alpha=0.6)) != describe_object(on_cpu)
    assert describe_object(None) is None


def test_file_hashes_are_cached_by_path_size_and_mtime(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"one")
    assert file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"three")  # another size: another key
    assert file_sha256(path) == hashlib.sha256(b"three").hexdigest()
    os.utime(path, ns=(1, 1))
    path.write_bytes(b"thr33")  # same size, new mtime
    assert file_sha256(path) == hashlib.sha256(b"thr33").hexdigest()
