"""Label safety: ground truth and other jobs' fields, eval keys, generated views, interrupted overwrites.

Reproductions 1, 2 and 4 of issue 13 and the classes behind them. Every
refused operation leaves the sample and frame documents byte-identical
(:func:`test_bad_input.snapshot`); an interrupted ``overwrite`` keeps the
complete labels of the run before it, byte for byte.
"""

from __future__ import annotations

import re

import pytest
from bson import ObjectId

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone.operators.executor import ExecutionError

from fiftyone_posetrack.fo.dataset import load_synth
from fiftyone_posetrack.fo.evaluation import evaluate_person_detection, evaluate_poses, evaluate_tracking
from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin
from fiftyone_posetrack.fo.run import run
from fiftyone_posetrack.fo.runs import get_run
from fiftyone_posetrack.fo.stages import track_detections
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError
from test_bad_input import pipe, snapshot

FRAMES = 12


@pytest.fixture(scope="module")
def crowds(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety-crowds")
    return [render_crowd(root / f"c{s}", people=3, frames=FRAMES, width=320, height=192, seed=s) for s in (0, 1)]


@pytest.fixture()
def dataset(crowds, request):
    """Two synthetic videos with ground truth boxes (``visibility`` attribute) and keypoints."""
    name = f"safety-{request.node.name}"[:60]
    ds = load_synth(crowds[0].out_dir, name, overwrite=True)
    load_synth(crowds[1].out_dir, name)
    ds.persistent = True
    yield ds
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


@pytest.fixture(scope="module")
def pipeline(shared_dir) -> PoseTrackingPipeline:
    return PoseTrackingPipeline(PipelineConfig(models_dir=str(shared_dir / "models"), reid=None))


@pytest.fixture(scope="module")
def plugin(fo_home):
    return install_plugin(fo.config.plugins_dir)


def tracked(dataset, out_field="pred_detections", tracker="sort", **kwargs):
    """Tracks the ground-truth boxes (motion only: no model, no frames decoded)."""
    return track_detections(dataset, "gt_detections", out_field, tracker=tracker, progress=False, **kwargs)


# --------------------------------------------------------------------------- reproduction 1: foreign fields


def test_ground_truth_keypoints_are_not_overwritten_once_another_video_is_done(dataset, pipeline):
    """Reproduction 1: the keypoints field is checked on its own, also once ``<detections>_status`` exists."""
    first, second = dataset.values("id")
    run(dataset.select(first), pipeline=pipeline, progress=False)
    gt_before = dataset.select(second).values("frames.gt_keypoints", _raw=True)
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"frame field 'gt_keypoints' holds labels .*overwrite_fields=\['gt_keypoints'\]"):
        run(dataset, pipeline=pipe(pipeline, keypoints_field="gt_keypoints"), progress=False)
    assert snapshot(dataset) == before

    # naming the field is not enough while video 1 holds labels of another configuration ...
    named = pipe(pipeline, keypoints_field="gt_keypoints", overwrite_fields=("gt_keypoints",))
    with pytest.raises(BadInputError, match=r"keypoints_field='pred_keypoints'.*this run has .*keypoints_field='gt_keypoints'"):
        run(dataset, pipeline=named, progress=False)
    assert snapshot(dataset) == before
    # ... with overwrite too, the named field is replaced
    summary = run(dataset, pipeline=pipe(named, overwrite=True), progress=False)
    assert sorted(summary.processed) == sorted([first, second])
    assert dataset.select(second).values("frames.gt_keypoints", _raw=True) != gt_before


def test_ground_truth_is_refused_through_the_run_operator(dataset, shared_dir, plugin):
    before = snapshot(dataset)
    params = {"detector": "rtmdet-nano-person", "pose": "movenet-lightning-int8", "reid": "none",
              "models_dir": str(shared_dir / "models"), "keypoints_field": "gt_keypoints"}  # fmt: skip
    with pytest.raises(ExecutionError, match=r"frame field 'gt_keypoints' holds labels that pose tracking"):
        foo.execute_operator(
            f"{PLUGIN_NAME}/run_pose_tracking",
            ctx={"dataset": dataset.name, "params": params, "request_delegation": False},
        )
    assert snapshot(dataset) == before


def test_another_jobs_field_needs_naming(dataset):
    """A field written by one job (here: tracking into ``trk``) is foreign to a job with another status field."""
    tracked(dataset, "trk")
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"frame field 'trk' holds labels that tracking into 'trk2_status' did not write \(run 'posetrack_run_1' \(tracking\) wrote them\)"):
        _two_fields(dataset)
    assert snapshot(dataset) == before


def _two_fields(dataset):
    """A job whose first output (status) field is new and whose second output is ``trk``."""
    from fiftyone_posetrack.fo.jobs import VideoJob, run_video_jobs

    def compute(sample, n):
        yield from ((i, {"trk2": None, "trk": None}) for i in range(1, n + 1))

    return run_video_jobs(dataset, VideoJob("tracking", {"trk2": fo.Detections, "trk": fo.Detections}, compute), progress=False)


def test_stage_rerun_with_other_parameters_is_refused_or_overwritten(dataset):
    tracked(dataset, "boxes")
    tracked_again = {"tracker": "bytetrack"}
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"tracker='sort'; this run has tracker='bytetrack'"):
        tracked(dataset, "boxes", **tracked_again)
    assert snapshot(dataset) == before
    summary = tracked(dataset, "boxes", overwrite=True, **tracked_again)
    assert len(summary.processed) == 2 and get_run(dataset, summary.run_key)["options"]["tracker"] == "bytetrack"


# --------------------------------------------------------------------------- reproduction 2: eval keys


@pytest.mark.parametrize("key", ["label", "index", "confidence", "id", "bounding_box", "to_dict"])
def test_eval_key_equal_to_a_label_attribute_is_refused(dataset, key):
    """Reproduction 2: ``eval_key="label"`` used to turn every class name into tp/fp/fn."""
    tracked(dataset)
    before, evals = snapshot(dataset), dataset.list_evaluations()
    with pytest.raises(BadInputError, match=rf"eval_key '{key}': .*label's own '{key}'"):
        evaluate_tracking(dataset, "pred_detections", "gt_detections", eval_key=key)
    assert snapshot(dataset) == before and dataset.list_evaluations() == evals


def test_eval_key_equal_to_a_dynamic_attribute_is_refused(dataset):
    """Reproduction 2: ``eval_key="visibility"`` re-declared MOT's visibility as a string."""
    tracked(dataset)
    assert dataset.count_values("frames.gt_detections.detections.visibility"), "the MOT import stores visibility"
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"eval_key 'visibility': the labels of frames.gt_detections already have an attribute 'visibility'"):
        evaluate_tracking(dataset, "pred_detections", "gt_detections", eval_key="visibility")
    assert snapshot(dataset) == before
    name = dataset.name
    dataset.reload()
    assert fo.load_dataset(name).first().frames[5].gt_detections is not None


def test_eval_key_whose_fields_exist_is_refused_by_every_evaluation(dataset):
    tracked(dataset)
    dataset.add_sample_field("x_mota", fo.FloatField)
    dataset.add_sample_field("y_ap", fo.FloatField)
    dataset.clone_frame_field("gt_keypoints", "copied_keypoints")  # a field to evaluate (never itself)
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"eval_key 'x': the run would write the existing field 'x_mota'"):
        evaluate_tracking(dataset, "pred_detections", "gt_detections", eval_key="x")
    with pytest.raises(BadInputError, match=r"eval_key 'y': the run would write the existing field 'y_ap'"):
        evaluate_person_detection(dataset, "pred_detections", "gt_detections", eval_key="y")
    with pytest.raises(BadInputError, match=r"eval_key 'y': the run would write the existing field 'y_ap'"):
        evaluate_poses(dataset, "copied_keypoints", "gt_keypoints", eval_key="y", gt_box_field=None, pred_box_field=None)
    with pytest.raises(BadInputError, match=r"eval_key: names starting with '_'"):
        evaluate_tracking(dataset, "pred_detections", "gt_detections", eval_key="_x")
    assert snapshot(dataset) == before


def test_rerun_with_the_same_eval_key_replaces_its_own_fields(dataset):
    tracked(dataset)
    first = evaluate_tracking(dataset, "pred_detections", "gt_detections", eval_key="te").metrics()
    again = evaluate_tracking(dataset, "pred_detections", "gt_detections", eval_key="te").metrics()
    assert first["mota"] == again["mota"] and dataset.list_evaluations() == ["te"]
    with pytest.raises(BadInputError, match=r"eval_key 'te' names an existing TrackingEvaluationConfig run"):
        evaluate_person_detection(dataset, "pred_detections", "gt_detections", eval_key="te")


# --------------------------------------------------------------------------- reproduction 4: generated views


def _with_events(dataset):
    for sample in dataset:
        sample["events"] = fo.TemporalDetections(detections=[fo.TemporalDetection(label="e", support=[2, 8])])
        sample.save()


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda ds, tmp: ds.to_clips("events"), "a clips view"),
        (lambda ds, tmp: ds.to_trajectories("frames.gt_detections"), "a clips view"),
        (lambda ds, tmp: ds.to_frames(sample_frames=True, output_dir=str(tmp)), "a frames view"),
        (lambda ds, tmp: ds.to_frames(sample_frames=True, output_dir=str(tmp)).to_patches("gt_detections"), "a patches view"),
        (lambda ds, tmp: ds.group_by("filepath"), "a dynamic groups view"),
    ],
    ids=["clips", "trajectories", "frames", "patches", "dynamic_groups"],
)
def test_generated_views_are_refused(dataset, pipeline, tmp_path, make, kind):
    """Reproduction 4: a clips view reported frames processed and left orphan frame documents."""
    _with_events(dataset)
    view = make(dataset, tmp_path)
    before, frame_docs = snapshot(dataset), dataset._frame_collection.count_documents({})
    with pytest.raises(BadInputError, match=rf"pose tracking cannot run on {kind}.*run it on the video dataset"):
        run(view, pipeline=pipeline, progress=False)
    with pytest.raises(BadInputError, match=rf"tracking cannot run on {kind}"):
        track_detections(view, "gt_detections", "trk", tracker="sort", progress=False)
    assert snapshot(dataset) == before
    assert dataset._frame_collection.count_documents({}) == frame_docs, "orphan frame documents"
    assert dataset.list_runs() == []


def test_grouped_datasets_are_refused(crowds):
    dataset = fo.Dataset()
    try:
        dataset.add_group_field("group", default="v")
        group = fo.Group()
        dataset.add_samples([
            fo.Sample(filepath=crowds[0].video_path, group=group.element("v")),
            fo.Sample(filepath=crowds[1].video_path, group=group.element("w")),
        ])  # fmt: skip
        for view in (dataset, dataset.select_group_slices("v")):
            with pytest.raises(BadInputError, match=r"tracking cannot run on a grouped dataset: clone its video slice"):
                track_detections(view, "gt_detections", "trk", tracker="sort", progress=False)
        assert not dataset.has_frame_field("trk") and dataset.list_runs() == []
    finally:
        dataset.delete()


# --------------------------------------------------------------------------- interrupted overwrite


@pytest.mark.parametrize("error", [KeyboardInterrupt, BadInputError], ids=["interrupt", "failure"])
def test_interrupted_overwrite_keeps_the_complete_earlier_labels(dataset, error):
    """``overwrite`` writes aside: a run stopped mid-video leaves the earlier labels byte-identical."""
    tracked(dataset, "boxes")
    before = snapshot(dataset)
    first = dataset.first().id
    first_before = _video_docs(dataset, first)
    calls = []

    def stop(fraction, label):
        calls.append(fraction)
        if len(calls) == 2:  # mid-video: frames 5-8 of 12 of the first video written aside
            raise error("stopped mid-video")

    if error is KeyboardInterrupt:
        with pytest.raises(KeyboardInterrupt):
            tracked(dataset, "boxes", tracker="bytetrack", overwrite=True, flush_frames=4, progress_callback=stop)
    else:
        summary = tracked(dataset, "boxes", tracker="bytetrack", overwrite=True, flush_frames=4,
                          progress_callback=stop, raise_on_error=False)  # fmt: skip
        assert len(summary.failed) == 1 and "earlier labels are kept" in next(iter(summary.failed.values()))
    assert 0 < calls[0] < 0.5, "stopped in the first video"
    if error is KeyboardInterrupt:
        assert snapshot(dataset) == before, "an interrupted overwrite changed the labels"
    else:  # the other video was recomputed; the failed one is as it was, status and run included
        assert _video_docs(dataset, first) == first_before, "the failed video's labels changed"
    ids = [ObjectId(i) for i in dataset.values("id")]  # the collection is shared by every dataset of the database
    staged = dataset._frame_collection.database["posetrack_staging"].count_documents({"sample": {"$in": ids}})
    assert staged == 0, "staged labels were left behind"
    records = [r for r in dataset.list_runs() if r != "posetrack_run_1"]
    assert len(records) == 1
    statuses = {v["status"] for v in get_run(dataset, records[0])["videos"].values()}
    assert ("interrupted" if error is KeyboardInterrupt else "failed") in statuses


def _video_docs(dataset, sample_id):
    """The video's sample document and frame documents, raw (as BSON), minus modification times."""
    import bson
    from bson import ObjectId

    def clean(doc):
        return bson.encode({k: v for k, v in doc.items() if k != "last_modified_at"})

    oid = ObjectId(sample_id)
    frames = dataset._frame_collection.find({"_sample_id": oid}).sort("frame_number", 1)
    return clean(dataset._sample_collection.find_one({"_id": oid})), [clean(d) for d in frames]


def test_staged_labels_of_a_deleted_dataset_are_pruned_by_the_next_job(dataset, crowds):
    """A run killed mid-video leaves its staged labels; once its dataset is deleted, the next job of any
    dataset drops them, and never the staged labels of a dataset that still exists."""
    from fiftyone_posetrack.fo.staging import StagedVideo

    staging = dataset._frame_collection.database["posetrack_staging"]
    doomed = load_synth(crowds[0].out_dir, f"doomed-{dataset.name}"[:60], overwrite=True)
    label = {"boxes": {1: fo.Detections(detections=[fo.Detection(label="person", bounding_box=[0.1, 0.1, 0.2, 0.5])])}}
    for ds in (doomed, dataset):  # as a run SIGKILLed after a flush leaves them: written, never committed
        StagedVideo(ds, ds.first().id, {"boxes": fo.Detections}, "boxes_status").write(label)
    live_sample, doomed_sample = ObjectId(dataset.first().id), ObjectId(doomed.first().id)
    assert staging.count_documents({"sample": doomed_sample}) == 1
    doomed.delete()

    tracked(dataset, "trk")  # any job
    assert staging.count_documents({"sample": doomed_sample}) == 0, "the deleted dataset's staged labels remain"
    assert staging.count_documents({"sample": live_sample, "status_field": "boxes_status"}) == 1, "a live run's labels were dropped"


# --------------------------------------------------------------------------- issue 21, case 9: field names


@pytest.mark.parametrize(
    "changes, name",
    [({"keypoints_field": "filepath"}, "filepath"), ({"keypoints_field": "frames"}, "frames"),
     ({"detections_field": "frame_number"}, "frame_number"), ({"detections_field": "a.b"}, "a.b")],
)  # fmt: skip
def test_reserved_and_dotted_output_fields_are_refused_by_the_config(changes, name):
    """``keypoints_field="filepath"`` / ``"frames"`` were accepted and broke ``to_frames()``."""
    with pytest.raises(BadInputError, match=rf"{next(iter(changes))}: .*{re.escape(repr(name))}"):
        PipelineConfig(**changes)


@pytest.mark.parametrize("out_field", ["filepath", "frames", "a.b", "metadata", "_private"])
def test_reserved_and_dotted_output_fields_are_refused_by_every_job(dataset, out_field):
    """``out_field="filepath"`` broke ``to_frames()``, ``out_field="a.b"`` gave a raw FiftyOne error:
    both are refused naming the field, before anything is written."""
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=rf"output field: {re.escape(repr(out_field))} is"):
        tracked(dataset, out_field)
    assert snapshot(dataset) == before, "a refused job changed the documents"
