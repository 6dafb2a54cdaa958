"""Run records: which run wrote which labels, with what configuration, models and software.

Every job of :mod:`fiftyone_posetrack.fo.jobs` that writes frame labels (the
whole pipeline, each stage of :mod:`fiftyone_posetrack.fo.stages`, later
post-processing) is recorded on the dataset as a FiftyOne run (a
:class:`fiftyone.core.runs.RunConfig` of method ``"posetrack"``), the way
evaluations are, so ``dataset.list_runs()``, ``dataset.get_run_info(key)``,
``dataset.load_run_results(key)`` and ``dataset.delete_run(key)`` work as for
any run. Keys are ``posetrack_run_1``, ``posetrack_run_2``, ...

The run's *config* (``get_run_info(key).config``) holds what was asked:

- ``job``: what the job does (``"pose tracking"``, ``"person detection"``, ...)
- ``fields``: the frame fields it writes; ``status_field``: its sample field of
  per-video progress (``<first field>_status``)
- ``options``: every parameter (``PipelineConfig.to_dict()`` or the stage's
  arguments); ``label_options``: those that decide the labels (every option
  but :data:`RUNTIME_OPTIONS`)
- ``models``: per role (``detector``, ``pose``, ...) the spec and each model
  file's path, size and sha256
- ``versions``: the installed versions of the packages that compute labels
- ``user`` (``user@host:pid``), ``started_at`` (UTC ISO 8601)

Its *results* (``load_run_results(key)``) hold what happened, saved after every
video: ``videos`` (``{sample id: {status, frames, seconds, error}}``),
``timings`` (seconds per stage), ``finished_at`` and ``outcome`` (``"finished"``,
``"interrupted"`` by Ctrl-C or SIGTERM, ``"claim lost"``, ``"database lost"``;
None while the run is going or after a SIGKILL).

Each video also names the run that wrote its labels in the sample field
``<first field>_run`` (next to ``_status`` / ``_claimed_at``), so a rerun can
tell "done with this configuration" (skipped) from "done with another" (refused
naming the differing options, or recomputed with ``overwrite``).
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import importlib.metadata
import json
import os
import re
import socket
from typing import Any, Mapping

import fiftyone as fo

from fiftyone_posetrack.fo.doclock import dataset_document_lock
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "RUN_METHOD",
    "RUNTIME_OPTIONS",
    "RunRecord",
    "begin_run",
    "brief",
    "config_differences",
    "describe_object",
    "file_sha256",
    "format_run",
    "format_runs",
    "get_run",
    "label_options",
    "list_runs",
    "model_files",
    "run_field",
    "writers_of_field",
]

#: the ``method`` of this package's run configs
RUN_METHOD = "posetrack"

def _runtime_options() -> frozenset:
    from fiftyone_posetrack.pipeline.options import JOB_OPTIONS, OPTIONS

    declared = {o.name for o in OPTIONS.values() if o.group == "runtime"} | set(JOB_OPTIONS)
    # what to recompute and where, not how: overwrite*, and the preset (its values are compared one by one)
    return frozenset(declared | {"overwrite", "overwrite_fields", "preset", "progress", "raise_on_error",
                                 "progress_callback"})  # fmt: skip


#: options that change how a run computes, never which labels it writes: the
#: options of group ``"runtime"`` and the job options of
#: :mod:`fiftyone_posetrack.pipeline.options` (batch size, device, models folder
#: -- the model files' hashes are compared instead --, flush frames, ...). Every
#: other option, and every model file's sha256, is part of a run's identity.
RUNTIME_OPTIONS = _runtime_options()


#: packages whose versions are recorded (when installed)
PACKAGES = (
    "fiftyone-posetrack",
    "fiftyone",
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "torch",
    "onnxruntime",
    "onnxruntime-gpu",
    "mmcv",
    "mmdet",
    "mmpose",
    "deep-sort-realtime",
)

_KEY = re.compile(r"^posetrack_run_(\d+)$")
_HASHES: dict[tuple[str, int, int], str] = {}


def run_field(status_field: str) -> str:
    """The sample field naming the run that wrote a video's labels: ``<first field>_run``."""
    return status_field[: -len("_status")] + "_run" if status_field.endswith("_status") else status_field + "_run"


# --------------------------------------------------------------------------- provenance


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file, cached by ``(path, size, mtime)`` for this process."""
    path = os.path.abspath(os.fspath(path))
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _file_entry(path: str) -> dict:
    path = os.path.abspath(path)
    return {"path": path, "size": os.path.getsize(path), "sha256": file_sha256(path)}


def _spec_paths(spec: str, models_dir: str | None) -> list[str]:
    """The local files of a model name or ``BACKEND:PATH[:CHECKPOINT]`` spec (no download)."""
    from fiftyone_posetrack.models import MODELS, model_path

    if spec in MODELS:
        try:
            return [os.fspath(model_path(spec, models_dir, download=False))]
        except Exception:  # noqa: BLE001 - not local: the record says so (no files)
            return []
    if os.path.isfile(spec):
        return [spec]
    parts = spec.split(":")
    return [p for p in parts[1:] if p and os.path.isfile(p)]


def _object_paths(model) -> list[str]:
    """Files a model object names in its attributes (paths, ONNX Runtime sessions' graphs, specs)."""
    found = []
    for value in vars(model).values() if hasattr(model, "__dict__") else ():
        candidates = []
        if isinstance(value, (str, os.PathLike)):
            candidates.append(value)
        elif isinstance(getattr(value, "_model_path", None), str):  # onnxruntime.InferenceSession
            candidates.append(value._model_path)
        elif hasattr(value, "path") and hasattr(value, "backend"):  # a ModelSpec
            candidates += [value.path, getattr(value, "checkpoint", None)]
        for c in candidates:
            if c and len(os.fspath(c)) < 4096 and os.path.isfile(os.fspath(c)):
                found.append(os.fspath(c))
    return found


def describe_object(obj) -> dict | None:
    """A model or helper object as a run option: its class and its public scalar attributes
    (runtime-only ones such as ``device`` and ``batch_size`` left out)."""
    if obj is None:
        return None
    scalars = (int, float, str, bool)
    attrs = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in (vars(obj).items() if hasattr(obj, "__dict__") else ())
        if not k.startswith("_") and k not in RUNTIME_OPTIONS  # e.g. a model's device: not its identity
        and (isinstance(v, scalars) or (isinstance(v, tuple) and all(isinstance(x, scalars) for x in v)))
    }
    return {"class": f"{type(obj).__module__}.{type(obj).__qualname__}", **attrs}


def model_files(models: Mapping[str, Any], models_dir: str | None = None) -> dict[str, dict]:
    """Each model's spec and files: ``{role: {"spec": ..., "files": [{path, size, sha256}]}}``.

    Args:
        models: ``{role: model}`` where a model is a name of
            :data:`fiftyone_posetrack.models.MODELS`, a spec string, None, or a
            model object (its file-valued attributes are hashed)
        models_dir: where named models are looked up first
    """
    out = {}
    for role, model in models.items():
        if model is None:
            continue
        if isinstance(model, str):
            spec, paths = model, _spec_paths(model, models_dir)
        else:
            spec, paths = type(model).__name__, _object_paths(model)
        out[role] = {"spec": spec, "files": [_file_entry(p) for p in dict.fromkeys(paths)]}
    return out


def package_versions() -> dict[str, str]:
    """The installed versions of :data:`PACKAGES` (those not installed are left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def who() -> str:
    """``user@host:pid`` of this process."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _jsonable(value):
    """A JSON-compatible copy (tuples as lists, other objects by ``repr``)."""
    return json.loads(json.dumps(value, default=repr))


def label_options(options: Mapping[str, Any]) -> dict:
    """The options that decide the labels: all but :data:`RUNTIME_OPTIONS`."""
    return {k: v for k, v in _jsonable(dict(options)).items() if k not in RUNTIME_OPTIONS}


# --------------------------------------------------------------------------- comparison


def _model_hashes(models: Mapping[str, dict]) -> dict[str, list[str]]:
    return {role: [f["sha256"] for f in m.get("files", [])] for role, m in (models or {}).items()}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """What differs between two run configs: ``[(name, old value, new value)]``.

    Compares the jobs, the output fields, the :func:`label_options` and the
    models' file hashes (a model is named ``<role> files``); runtime-only
    options (:data:`RUNTIME_OPTIONS`) never count. A model's files are
    compared when the option naming it is the same (same name, another file).
    """
    diffs = []
    for name in ("job", "fields"):
        if old.get(name) != new.get(name):
            diffs.append((name, old.get(name), new.get(name)))
    a, b = old.get("label_options") or {}, new.get("label_options") or {}
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            diffs.append((name, a.get(name, "<unset>"), b.get(name, "<unset>")))
    ha, hb = _model_hashes(old.get("models")), _model_hashes(new.get("models"))
    named = {d[0] for d in diffs}
    for role in sorted(set(ha) | set(hb)):
        if role in named:  # another model was asked for: its files differ as a matter of course
            continue
        if ha.get(role) != hb.get(role) and ha.get(role) and hb.get(role):
            diffs.append((f"{role} files", _short(ha[role]), _short(hb[role])))
    return diffs


def _short(hashes: list[str]) -> str:
    return ",".join(h[:12] for h in hashes)


def _describe(diffs, index: int) -> str:
    return ", ".join(f"{name}={d[index]!r}" for d in diffs for name in [d[0]])


def difference_message(field: str, key: str | None, old: Mapping | None, new: Mapping, count: int) -> str:
    """The refusal of a run whose output field holds labels of another configuration."""
    videos = f"{count} video(s)"
    if old is None:
        return (
            f"{field} of {videos} was written by "
            + (f"run {key!r}, whose record was deleted" if key else "a run without a record (an older version)")
            + f"; this run cannot tell whether they match its configuration; pass overwrite=True "
            "(--overwrite) to recompute them"
        )
    diffs = config_differences(old, new)
    return (
        f"{field} of {videos} was written by run {key!r} with {_describe(diffs, 1)}; this run has "
        f"{_describe(diffs, 2)}; pass overwrite=True (--overwrite) to recompute"
    )


# --------------------------------------------------------------------------- the record of a run


def _run_configs(dataset) -> dict[str, dict]:
    """``{key: config dict}`` of this package's runs on the dataset (as the database has them now)."""
    dataset._reload()  # other processes (scale-out workers, the CLI) register runs too
    out = {}
    for key in dataset.list_runs():
        try:
            config = dataset.get_run_info(key).config
        except Exception:  # noqa: BLE001 - another library's run that does not load here
            continue
        if getattr(config, "method", None) == RUN_METHOD:
            out[key] = {k: v for k, v in vars(config).items() if not k.startswith("_")}
    return out


def writers_of_field(dataset, field: str) -> dict[str, dict]:
    """The records (``{key: config}``) of this package's runs that wrote frame field ``field``."""
    return {k: c for k, c in _run_configs(dataset).items() if field in (c.get("fields") or [])}


class RunRecord:
    """The record of one job run on a dataset (see the module docstring).

    Built by :func:`begin_run`; :meth:`video` adds each video's outcome and
    saves the results, so an interrupted run keeps a record of what it did.
    """

    def __init__(self, dataset, key: str, config: dict):
        self.dataset, self.key, self.config = dataset, key, config
        self.videos: dict[str, dict] = {}
        self.timings: dict[str, float] = {}
        self.finished_at: str | None = None
        self.outcome: str | None = None

    def video(self, sample_id: str, status: str, frames: int = 0, seconds: float = 0.0, error: str | None = None):
        """Records a video's outcome (``"done"``, ``"failed"`` or ``"interrupted"``) and saves."""
        entry = {"status": status, "frames": int(frames), "seconds": round(float(seconds), 3)}
        if error:
            entry["error"] = str(error)[:2000]
        self.videos[sample_id] = entry
        self.save()

    def finish(self, timings: Mapping[str, float], outcome: str = "finished") -> None:
        """Stores the timings, the end time and the outcome (``"finished"``, ``"interrupted"``,
        ``"claim lost"``, ``"database lost"``)."""
        self.timings = {k: round(float(v), 3) for k, v in timings.items()}
        self.finished_at = _now()
        self.outcome = outcome
        self.save()

    def save(self) -> None:
        results = self.dataset.init_run_results(
            self.key, videos=self.videos, timings=self.timings, finished_at=self.finished_at, outcome=self.outcome
        )
        self.dataset.save_run_results(self.key, results, cache=False)

    def delete(self) -> None:
        """Removes the record (a run that processed nothing leaves none)."""
        with dataset_document_lock(self.dataset):  # the runs as the database has them, not this copy's
            if self.key in self.dataset.list_runs():
                self.dataset.delete_run(self.key)


def new_config(job_name: str, fields: list[str], status_field: str, options: Mapping, models: Mapping) -> dict:
    """The config dict of a run (see the module docstring); ``models`` as from :func:`model_files`."""
    return {
        "job": job_name,
        "fields": list(fields),
        "status_field": status_field,
        "options": _jsonable(dict(options)),
        "label_options": label_options(options),
        "models": _jsonable(dict(models)),
        "versions": package_versions(),
        "user": who(),
        "started_at": _now(),
    }


def _next_key(dataset) -> str:
    dataset._reload()
    numbers = [int(m.group(1)) for k in dataset.list_runs() if (m := _KEY.match(k))]
    return f"posetrack_run_{max(numbers, default=0) + 1}"


def begin_run(samples, config: dict) -> RunRecord:
    """Registers a run of ``config`` (from :func:`new_config`) on the collection's dataset.

    The key is the next free ``posetrack_run_N``; a view's stages are recorded
    with it (FiftyOne's ``load_run_view``).
    """
    dataset = samples._root_dataset
    # under the lock (the runs reloaded): two runs starting at once never take the same key
    with dataset_document_lock(dataset):
        key = _next_key(dataset)
        samples.register_run(key, samples.init_run(method=RUN_METHOD, **config), overwrite=False)
    record = RunRecord(dataset, key, config)
    record.save()
    return record


def record_import(samples, job_name: str, fields: list[str], options: Mapping, videos: Mapping[str, int]) -> str | None:
    """Records an import that wrote ``fields`` (e.g. ground truth from MOT or PoseTrack files).

    The record has no status field: imported labels are never a job's own, so
    jobs still refuse to write over them unless ``overwrite_fields`` names them
    (and their message names this record).

    Args:
        samples: the dataset (or view) imported into
        job_name: e.g. ``"MOT import"``
        fields: the frame fields written
        options: the import's arguments (paths absolute)
        videos: ``{sample id: frames}`` of the videos that got labels

    Returns:
        the run key, or None when nothing was written
    """
    if not fields or not videos:
        return None
    record = begin_run(samples, new_config(job_name, list(fields), None, options, {}))
    for sample_id, frames in videos.items():
        record.videos[sample_id] = {"status": "done", "frames": int(frames), "seconds": 0.0}
    record.finish({})
    return record.key


# --------------------------------------------------------------------------- reading records


def _check_dataset(dataset):
    if isinstance(dataset, str):
        if dataset not in fo.list_datasets():
            raise BadInputError(f"no FiftyOne dataset named {dataset!r}; datasets: {fo.list_datasets()}")
        dataset = fo.load_dataset(dataset)
    return dataset._root_dataset if hasattr(dataset, "_root_dataset") else dataset


def get_run(dataset, key: str) -> dict:
    """One run's record: its config plus ``key``, ``timestamp``, ``videos``, ``timings``,
    ``finished_at`` and ``status_counts``.

    Args:
        dataset: a dataset (or its name)
        key: the run key (``posetrack_run_N``)

    Raises:
        BadInputError: when the dataset has no run of this package named ``key``
    """
    dataset = _check_dataset(dataset)
    configs = _run_configs(dataset)
    if key not in configs:
        raise BadInputError(f"dataset {dataset.name!r} has no posetrack run {key!r}; runs: {sorted(configs)}")
    info = dataset.get_run_info(key)
    record = {"key": key, "timestamp": info.timestamp.isoformat() if info.timestamp else None, **configs[key]}
    record.pop("method", None)
    try:
        results = dataset.load_run_results(key, cache=False, load_view=False)
        videos = dict(getattr(results, "videos", None) or {})
        record.update(videos=videos, timings=getattr(results, "timings", {}) or {},
                      finished_at=getattr(results, "finished_at", None),
                      outcome=getattr(results, "outcome", None))  # fmt: skip
    except Exception:  # noqa: BLE001 - no results saved (killed before the first save)
        record.update(videos={}, timings={}, finished_at=None, outcome=None)
    counts: dict[str, int] = {}
    for entry in record["videos"].values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    record["status_counts"] = counts
    return record


def list_runs(dataset) -> list[str]:
    """The keys of this package's runs on a dataset (or its name), oldest first.

    Like FiftyOne's ``dataset.list_runs()``, limited to the runs of this
    package; :func:`get_run` gives each one's record.
    """
    dataset = _check_dataset(dataset)
    return sorted(_run_configs(dataset), key=lambda k: (int(m.group(1)) if (m := _KEY.match(k)) else 0, k))


def _main_models(record: dict) -> str:
    return ", ".join(f"{role}={m.get('spec')}" for role, m in (record.get("models") or {}).items()) or "-"


def format_runs(records: list[dict]) -> str:
    """A table of runs: key, job, fields, when, status counts, main models."""
    if not records:
        return "no posetrack runs"
    rows = [("KEY", "JOB", "FIELDS", "STARTED (UTC)", "VIDEOS", "MODELS")]
    for r in records:
        counts = " ".join(f"{n} {s}" for s, n in sorted(r["status_counts"].items())) or "-"
        rows.append((r["key"], r.get("job", "?"), ",".join(r.get("fields") or []), str(r.get("started_at")),
                     counts, _main_models(r)))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def brief(record: dict) -> dict:
    """The short form of a record (from :func:`get_run`): key, job, fields, models, who, when, status counts."""
    return {
        "key": record["key"],
        "job": record.get("job"),
        "fields": record.get("fields"),
        "models": {role: m.get("spec") for role, m in (record.get("models") or {}).items()},
        "user": record.get("user"),
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "status_counts": record.get("status_counts"),
    }


def format_run(record: dict) -> str:
    """One run's record as indented JSON."""
    return json.dumps(record, indent=2, sort_keys=False, default=str)
