"""Output files, the command line and evaluation under hostile conditions (issue 21, cases 7, 8, 10).

- a full disk (a real file-size limit, ``RLIMIT_FSIZE`` in a subprocess with
  ``SIGXFSZ`` ignored, so that ``write`` fails with ``EFBIG``) leaves no
  partial file and the previous file byte-identical;
- the real ``posetrack`` command, run as a subprocess, answers an output path
  that is a folder or not writable, a closed standard output, a truncated
  model and a dataset deleted mid-run with ``posetrack: error: ...`` and the
  documented exit status, never a traceback;
- evaluating a field against itself, or against a field with no labels, is
  refused before anything is written (label documents compared before/after).

``docs/robustness.md`` ("Output files, the command line and evaluation") lists
the cases with these tests.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fiftyone as fo

from fiftyone_posetrack.types import BadInputError

REPO = pathlib.Path(__file__).resolve().parents[1]
#: the file-size limit of the "disk full" subprocesses (bytes): every output below is larger
LIMIT = 4096


# --------------------------------------------------------------------------- helpers


def cli(*args, limit: int | None = None, stdout=subprocess.PIPE, no_privileges: bool = False):
    """Runs the real ``posetrack`` command; ``limit``: a file-size limit; ``no_privileges``: without
    the capabilities that let root write anywhere (``setpriv``), so that permissions apply."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")

    def pre():
        import resource
        import signal

        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    prefix = []
    if no_privileges and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be made to apply")
        prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "fiftyone_posetrack.cli", *map(str, args)],
        env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300, preexec_fn=pre,
    )  # fmt: skip


def python(code: str, limit: int | None = None):
    """Runs ``code`` in a fresh interpreter under a file-size limit (the database is the session's)."""
    return cli_code(textwrap.dedent(code), limit)


def cli_code(code: str, limit: int | None):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")

    def pre():
        import resource
        import signal

        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=pre)  # fmt: skip


def files(folder) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too): ``{relative path: bytes}``."""
    folder = pathlib.Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_error(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "posetrack: error: " in proc.stderr, proc.stderr[-3000:]
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-3000:])


def snapshot(dataset) -> tuple[list[bytes], list[bytes]]:
    """Every sample and frame document of the dataset (BSON), without modification times."""
    import bson

    def clean(doc):
        return {k: v for k, v in doc.items() if k not in ("last_modified_at",)}

    samples = sorted(bson.encode(clean(d)) for d in dataset._sample_collection.find())
    frames = sorted(bson.encode(clean(d)) for d in dataset._frame_collection.find())
    return samples, frames


def mot_rows(n_frames=30, n_ids=4, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(1, n_frames + 1):
        for i in range(1, n_ids + 1):
            rows.append([f, i, 50 * i + f + rng.normal(), 40 + rng.normal(), 30, 80, 0.9, -1, -1, -1])
    return np.array(rows)


@pytest.fixture(scope="module")
def mot_files(tmp_path_factory):
    from fiftyone_posetrack.formats.mot import write_mot

    root = tmp_path_factory.mktemp("mot")
    rows = mot_rows()
    gt = rows.copy()
    gt[:, 6:9] = 1
    write_mot(root / "SEQ" / "gt" / "gt.txt", gt, gt=True)
    write_mot(root / "res.txt", rows)
    return root / "SEQ" / "gt" / "gt.txt", root / "res.txt"


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    from fiftyone_posetrack.synth import render_crowd

    return render_crowd(tmp_path_factory.mktemp("crowd") / "CROWD", people=3, frames=12, width=160, height=96, seed=2)


@pytest.fixture()
def dataset(crowd, request):
    from fiftyone_posetrack.fo.dataset import load_synth

    ds = load_synth(crowd.out_dir, f"outputs-{request.node.name}"[:60], overwrite=True)
    ds.persistent = True  # visible to the subprocesses
    yield ds
    if fo.dataset_exists(ds.name):
        fo.delete_dataset(ds.name)


# --------------------------------------------------------------------------- case 7: a full disk


def test_atomic_write_keeps_the_previous_file_on_failure(tmp_path):
    from fiftyone_posetrack.atomic import Staged, atomic_write

    target = tmp_path / "out.json"
    target.write_text("previous")
    with pytest.raises(KeyError):
        with atomic_write(target) as f:
            f.write("half of the new")
            raise KeyError("stop")
    assert files(tmp_path) == {"out.json": b"previous"}
    with pytest.raises(KeyError), Staged() as stage:  # several files: none replaced unless all written
        pathlib.Path(stage.path(target)).write_text("new")
        pathlib.Path(stage.path(tmp_path / "new" / "deep" / "b.txt")).write_text("new")
        raise KeyError("stop")
    assert files(tmp_path) == {"out.json": b"previous"}, "a temporary file or a made folder is left"
    with atomic_write(target) as f:
        f.write("new")
    assert files(tmp_path) == {"out.json": b"new"}
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # the umask's mode, not mkstemp's


def test_full_disk_postprocess_and_track_mot_leave_the_previous_file(mot_files, tmp_path):
    gt, res = mot_files
    out = tmp_path / "post.txt"
    out.write_bytes(b"previous results\n")
    before = files(tmp_path)
    proc = cli("postprocess", res, out, "--interpolate", "5", limit=LIMIT)
    assert_error(proc, 2, str(out), "File too large")
    assert files(tmp_path) == before, "a partial file was left or the previous one changed"
    proc = cli("track-mot", res, out, "--tracker", "bytetrack", limit=LIMIT)
    assert_error(proc, 2, "File too large")
    assert files(tmp_path) == before
    # the same commands without a limit write the files
    assert cli("postprocess", res, out, "--interpolate", "5").returncode == 0
    assert out.stat().st_size > LIMIT and out.read_bytes() != b"previous results\n"


@pytest.mark.slow
def test_full_disk_export_posetrack_coco_and_mot_leave_nothing_behind(dataset, tmp_path):
    from fiftyone_posetrack.fo.evaluation import export_coco_keypoints
    from fiftyone_posetrack.fo.io import export_mot, export_posetrack

    pt, mot_dir, coco = tmp_path / "pt", tmp_path / "mot", tmp_path / "coco.json"
    export_posetrack(dataset, "gt_keypoints", pt, gt=True)
    export_mot(dataset, "gt_detections", mot_dir, gt=True)
    export_coco_keypoints(dataset, "gt_keypoints", coco)
    before = files(tmp_path)
    limit = 600
    assert all(len(b) > limit for n, b in before.items() if not n.endswith(".ini")), {n: len(b) for n, b in before.items()}
    proc = python(
        f"""
        import errno, fiftyone as fo
        from fiftyone_posetrack.fo.io import export_mot, export_posetrack
        from fiftyone_posetrack.fo.evaluation import export_coco_keypoints
        ds = fo.load_dataset({dataset.name!r})
        calls = [
            lambda: export_posetrack(ds, "gt_keypoints", {str(pt)!r}, gt=True, overwrite=True),
            lambda: export_mot(ds, "gt_detections", {str(mot_dir)!r}, gt=True, overwrite=True),
            lambda: export_coco_keypoints(ds, "gt_keypoints", {str(coco)!r}),
        ]
        for call in calls:
            try:
                call()
                print("written")
            except OSError as e:
                print(errno.errorcode[e.errno])
        """,
        limit=limit,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["EFBIG"] * 3, proc.stdout + proc.stderr[-2000:]
    assert files(tmp_path) == before, "a truncated / 0-byte / partial file remains, or a previous file changed"


def test_full_disk_synth_leaves_the_previous_render(tmp_path):
    out = tmp_path / "crowd"
    assert cli("synth", out, "--people", "2", "--frames", "6", "--width", "96", "--height", "64", "--no-progress",
               "--seed", "1").returncode == 0  # fmt: skip
    before = files(out)
    assert {"video.mp4", "gt/gt.txt", "posetrack.json", "seqinfo.ini"} <= set(before)
    args = ("synth", out, "--people", "6", "--frames", "40", "--width", "320", "--height", "192", "--no-progress",
            "--overwrite", "--seed", "2")  # fmt: skip
    proc = cli(*args, limit=LIMIT)
    assert_error(proc, 2)
    assert files(out) == before, "the new render replaced part of the previous one or left a file"
    fresh = tmp_path / "fresh"
    proc = cli(*args[:1], fresh, *args[2:], limit=LIMIT)
    assert_error(proc, 2)
    assert not fresh.exists(), f"a partial render remains: {sorted(files(fresh)) if fresh.exists() else ''}"


@pytest.mark.slow
def test_full_disk_tune_save_preset_and_eval_output(mot_files, tmp_path):
    gt, res = mot_files
    preset, result = tmp_path / "preset.json", tmp_path / "result.json"
    preset.write_text("{}")
    result.write_text("{}")
    proc = cli("tune", gt, res, "--grid", "max_age=10,20", "--save-preset", preset, limit=200)
    assert_error(proc, 2, "File too large")
    proc = cli("eval-mot", "--pair", gt, res, "--output", result, limit=200)
    assert_error(proc, 2, "File too large")
    assert files(tmp_path) == {"preset.json": b"{}", "result.json": b"{}"}


# --------------------------------------------------------------------------- case 10: the command line


def test_output_path_that_is_a_folder_is_named(mot_files, tmp_path):
    gt, res = mot_files
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for args in (
        ("postprocess", res, folder, "--interpolate", "5"),
        ("track-mot", res, folder, "--tracker", "bytetrack"),
        ("eval-mot", "--pair", gt, res, "--output", folder),
        ("tune", gt, res, "--grid", "max_age=10", "--save-preset", folder),
    ):
        proc = cli(*args)
        assert_error(proc, 2, f"{folder} is a folder")
    assert files(tmp_path) == {}


def test_output_path_that_is_not_writable_is_named(mot_files, tmp_path):
    gt, res = mot_files
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "out.txt").write_text("previous")
    os.chmod(locked, 0o555)
    try:
        for args in (
            ("postprocess", res, locked / "out.txt", "--interpolate", "5"),
            ("postprocess", res, locked / "new" / "out.txt", "--interpolate", "5"),
            ("eval-mot", "--pair", gt, res, "--output", locked / "r.json"),
        ):
            proc = cli(*args, no_privileges=True)
            assert_error(proc, 2, "Permission denied", str(locked))
    finally:
        os.chmod(locked, 0o755)
    assert files(locked) == {"out.txt": b"previous"}


def test_eval_mot_with_a_closed_pipe_keeps_the_output_and_fails(mot_files, tmp_path):
    gt, res = mot_files
    out = tmp_path / "result.json"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: `| head -c1` that already exited
    try:
        proc = cli("eval-mot", "--pair", gt, res, "--output", out, stdout=write)
    finally:
        os.close(write)
    assert_error(proc, 141, "standard output", "closed pipe")
    result = json.loads(out.read_text())
    assert result["OVERALL"]["mota"] > 0.9 and "SEQ" in result, "the results given with --output are lost"


@pytest.mark.slow
def test_eval_mot_with_stdout_closed_does_not_exit_0(mot_files, tmp_path):
    gt, res = mot_files
    out = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = f'exec "{sys.executable}" -m fiftyone_posetrack.cli eval-mot --pair "{gt}" "{res}" --output "{out}" >&-'
    proc = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=300)
    assert_error(proc, 141, "standard output is closed")
    assert json.loads(out.read_text())["OVERALL"]["num_frames"] == 30
    cmd = f'exec "{sys.executable}" -m fiftyone_posetrack.cli eval-mot --pair "{gt}" "{res}" >&-'
    proc = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=300)
    assert_error(proc, 141, "standard output is closed")  # the results had nowhere to go: not "done"


def test_eval_mot_through_head_prints_one_byte(mot_files):
    gt, res = mot_files
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = f'"{sys.executable}" -m fiftyone_posetrack.cli eval-mot --pair "{gt}" "{res}" | head -c1'
    proc = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=300)
    assert proc.stdout == "{" and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_nul_byte_in_an_output_path_is_named(dataset, tmp_path):
    from fiftyone_posetrack.atomic import atomic_write
    from fiftyone_posetrack.fo.evaluation import export_coco_keypoints
    from fiftyone_posetrack.fo.io import export_mot, export_posetrack

    before = snapshot(dataset)
    bad = str(tmp_path / "out\x00put")
    with pytest.raises(BadInputError, match="NUL byte"):
        export_posetrack(dataset, "gt_keypoints", bad)
    with pytest.raises(BadInputError, match="NUL byte"):
        export_mot(dataset, "gt_detections", bad)
    with pytest.raises(BadInputError, match="NUL byte"):
        export_coco_keypoints(dataset, "gt_keypoints", bad + ".json")
    with pytest.raises(BadInputError, match="NUL byte"):
        with atomic_write(bad):
            pass
    assert snapshot(dataset) == before and files(tmp_path) == {}


@pytest.mark.slow
def test_truncated_tflite_model_is_named_and_labels_untouched(dataset, crowd, shared_dir, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(shared_dir / "models" / "rtmdet-nano-person", models / "rtmdet-nano-person")
    src = shared_dir / "models" / "movenet-lightning-int8"
    (models / "movenet-lightning-int8").mkdir()
    for f in src.iterdir():
        data = f.read_bytes()
        (models / "movenet-lightning-int8" / f.name).write_bytes(data[: len(data) // 3] if f.suffix == ".tflite" else data)
    before = snapshot(dataset)
    proc = cli("run", "--dataset", dataset.name, "--models-dir", models, "--reid", "none",
               "--detector", "rtmdet-nano-person", "--pose", "movenet-lightning-int8")  # fmt: skip
    assert_error(proc, 2, "MoveNet TFLite model", "damaged or truncated")
    dataset.reload()
    assert snapshot(dataset) == before


@pytest.mark.slow
def test_dataset_deleted_mid_run_is_an_error(crowd, shared_dir, tmp_path):
    from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset
    from fiftyone_posetrack.synth import render_crowd

    long = render_crowd(tmp_path / "long", people=3, frames=240, width=160, height=96, seed=4)
    name = "outputs-deleted-mid-run"
    ds = get_or_create_dataset(name)
    add_videos(ds, [long.video_path])
    log = open(tmp_path / "run.log", "w")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "fiftyone_posetrack.cli", "run", "--dataset", name, "--models-dir",
           shared_dir / "models", "--reid", "none", "--flush-frames", "8"]  # fmt: skip
    proc = subprocess.Popen(list(map(str, cmd)), env=env, stdout=log, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not ds.list_runs():  # the run has claimed the video: it is under way
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.time() < deadline, "the run did not start"
            time.sleep(0.1)
            ds.reload()
        fo.delete_dataset(name)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    assert proc.returncode == 2, (proc.returncode, stderr[-3000:])
    assert "Traceback" not in stderr and f"posetrack: error: dataset {name!r} was deleted" in stderr, stderr[-3000:]


# --------------------------------------------------------------------------- case 8: evaluating a field against itself


def _scored_copy(dataset, src: str, dst: str, confidence: float) -> None:
    """``dst``: the boxes of ``src`` (same ids / index) as new labels with ``confidence`` and no MOT attributes."""
    values = [
        [
            None if dets is None else fo.Detections(detections=[
                fo.Detection(label="person", bounding_box=d.bounding_box, index=d.index, confidence=confidence)
                for d in dets.detections
            ])
            for dets in video
        ]
        for video in dataset.values(f"frames.{src}")
    ]  # fmt: skip
    dataset.set_values(f"frames.{dst}", values)


def test_evaluating_a_field_against_itself_is_refused_before_writing(dataset):
    from fiftyone_posetrack.fo.evaluation import evaluate_person_detection, evaluate_poses, evaluate_tracking

    _scored_copy(dataset, "gt_detections", "pred_detections", 0.93)
    before = snapshot(dataset)
    calls = (
        lambda: evaluate_tracking(dataset, "pred_detections", "pred_detections", eval_key="self_track"),
        lambda: evaluate_person_detection(dataset, "pred_detections", "frames.pred_detections", eval_key="self_det"),
        lambda: evaluate_poses(dataset, "gt_keypoints", "gt_keypoints", eval_key="self_pose"),
    )
    for call in calls:
        with pytest.raises(BadInputError, match=r"gt_field and pred_field are both frames\.\w+: a field cannot be evaluated against itself"):
            call()
    dataset.reload()
    assert snapshot(dataset) == before, "the refused evaluation wrote marks"
    assert dataset.list_evaluations() == []


def test_ground_truth_without_labels_is_refused(dataset):
    from fiftyone_posetrack.fo.evaluation import evaluate_poses, evaluate_tracking

    _scored_copy(dataset, "gt_detections", "pred_detections", 0.93)
    dataset.add_frame_field("empty_boxes", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    dataset.add_frame_field("empty_kps", fo.EmbeddedDocumentField, embedded_doc_type=fo.Keypoints)
    frames = dataset.first().frames
    frames[1]["empty_boxes"] = fo.Detections()
    frames[1]["empty_kps"] = fo.Keypoints()
    dataset.first().save()
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=r"frames\.empty_boxes holds no Detection .*frames\.pred_detections"):
        evaluate_tracking(dataset, "pred_detections", "empty_boxes", eval_key="t")
    with pytest.raises(BadInputError, match=r"frames\.empty_kps holds no Keypoint"):
        evaluate_poses(dataset, "gt_keypoints", "empty_kps", eval_key="p")
    assert snapshot(dataset) == before and dataset.list_evaluations() == []


def test_ground_truth_with_scores_is_read_as_ground_truth(dataset):
    """The cause of case 8: a ground-truth box's score was read as MOTChallenge's "consider" flag,
    and scores below 1 truncate to 0 (not considered): such ground truth read as empty."""
    from fiftyone_posetrack.fo.evaluation import evaluate_tracking

    _scored_copy(dataset, "gt_detections", "pred_detections", 0.93)
    _scored_copy(dataset, "gt_detections", "gt_scored", 0.8)  # e.g. annotations with a confidence
    m = evaluate_tracking(dataset, "pred_detections", "gt_scored", eval_key=None).metrics()
    ref = evaluate_tracking(dataset, "pred_detections", "gt_detections", eval_key=None).metrics()
    people = len({d.index for f in dataset.first().frames.values() for d in (f.gt_detections or fo.Detections()).detections})
    assert m["num_gt_ids"] == ref["num_gt_ids"] == people > 0
    assert m["mota"] == ref["mota"] == 1.0 and m["fp"] == 0 and m["fn"] == 0


def _gt_form(dataset, operator_cls, params=None):
    from fiftyone.operators.executor import ExecutionContext

    form = operator_cls().resolve_input(ExecutionContext({"dataset_name": dataset.name, "params": params or {}}))
    return form.type.properties


def test_evaluate_forms_never_default_the_ground_truth_to_predictions(dataset):
    sys.path.insert(0, str(REPO))
    from operators.evaluation import EvaluatePoses, EvaluateTracking

    from fiftyone_posetrack.fo.runs import begin_run, new_config

    _scored_copy(dataset, "gt_detections", "a_tracked", 0.93)  # sorts before every other field
    begin_run(dataset, new_config("pose tracking", ["a_tracked"], "a_tracked_status", {}, {}))
    _scored_copy(dataset, "gt_detections", "z_truth", 1.0)  # a field no run wrote
    dataset.delete_frame_field("gt_detections")
    props = _gt_form(dataset, EvaluateTracking, {"pred_field": "a_tracked"})
    assert props["gt_field"].default == "z_truth"
    assert not getattr(props["gt_field"], "invalid", False)

    dataset.delete_frame_field("z_truth")  # only predictions left: no default, and the form says why
    props = _gt_form(dataset, EvaluateTracking, {"pred_field": "a_tracked"})
    assert props["gt_field"].default is None and props["gt_field"].invalid
    assert "no ground truth" in props["gt_field"].error_message and "a_tracked" in props["gt_field"].error_message
    assert "import ground truth" in props["gt_field"].error_message
    props = _gt_form(dataset, EvaluateTracking, {"pred_field": "a_tracked", "gt_field": "a_tracked"})
    assert props["gt_field"].invalid  # chosen by hand: refused in the form too

    props = _gt_form(dataset, EvaluatePoses, {"pred_field": "gt_keypoints"})  # the only Keypoints field
    assert props["gt_field"].default is None and props["gt_field"].invalid
