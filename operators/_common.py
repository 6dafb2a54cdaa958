"""What the operators share: form pieces, parameter reading, progress, the App's view.

Parameters are read with :class:`Params`, which applies the same defaults as
the forms (programmatic ``execute_operator`` calls get no form defaults) and
raises :class:`~fiftyone_posetrack.types.BadInputError` naming the parameter.
"""

from __future__ import annotations

import json
import os
import socket

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.types import BadInputError

DEVICES = ["auto", "cpu", "cuda"]


def operator_config(name: str, label: str, description: str, heavy: bool, icon: str | None = None):
    """An ``OperatorConfig``; heavy operators default to delegated execution."""
    return foo.OperatorConfig(
        name=name,
        label=label,
        description=description,
        icon=icon,
        dynamic=False,
        allow_immediate_execution=True,
        allow_delegated_execution=True,
        default_choice_to_delegated=heavy,
    )


def defaults():
    """The :class:`PipelineConfig` defaults (the one source of defaults)."""
    from fiftyone_posetrack.pipeline.config import PipelineConfig

    return PipelineConfig()


def worker_id() -> str:
    """``host:pid`` of this process: who ran an operation."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --------------------------------------------------------------------------- forms


def frame_fields(ctx, cls) -> list[str]:
    """The frame fields of the dataset holding labels of class ``cls``."""
    dataset = ctx.dataset
    if dataset is None or dataset.media_type != "video":
        return []
    schema = dataset.get_frame_field_schema() or {}
    return sorted(n for n, f in schema.items() if getattr(f, "document_type", None) is cls)


def field_choice(inputs, ctx, name, cls, label, description, default=None, required=True):
    """A dropdown of the existing frame fields of label class ``cls``.

    With no such field the property is marked invalid with a message saying
    which labels are needed.
    """
    choices = frame_fields(ctx, cls)
    view = types.DropdownView(label=label, description=description)
    for c in choices:
        view.add_choice(c, label=c)
    if default not in choices:
        default = choices[0] if (choices and required) else None
    prop = inputs.enum(name, choices, default=default, required=required, label=label, view=view)
    if required and not choices:
        prop.invalid = True
        prop.error_message = f"this dataset has no frame field of {cls.__name__}; {description}"
    return prop


def model_choice(inputs, name, kind, default, label, required=True):
    """A model: a name of :data:`fiftyone_posetrack.models.MODELS` of ``kind`` or a free-text spec."""
    from fiftyone_posetrack.models import MODELS

    view = types.AutocompleteView(label=label, allow_user_input=True)
    names = [m.name for m in MODELS.values() if m.kind == kind]
    for n in names:
        view.add_choice(n, label=n, description=MODELS[n].description)
    inputs.str(
        name,
        default=default,
        required=required,
        label=label,
        description=(
            f"a model name ({', '.join(names)}) or a spec BACKEND:PATH[:CHECKPOINT], "
            "e.g. rtmdet-onnx:/models/det.onnx, mmdet:CONFIG.py:CKPT.pth"
        ),
        view=view,
    )


def runtime_inputs(inputs, batch=True):
    """``models_dir``, ``device`` and (optionally) ``batch_size``."""
    d = defaults()
    inputs.str(
        "models_dir",
        required=False,
        label="Models folder",
        description="local folder of named models (<dir>/<name>/<file>); default: $POSETRACK_MODELS_DIR, then the cache",
    )
    inputs.enum("device", DEVICES, default=d.device, required=False, label="Device", view=types.DropdownView())
    if batch:
        inputs.int("batch_size", min=1, default=d.batch_size, required=False, label="Batch size", description="frames per model call")


def job_inputs(inputs, overwrite_label="Recompute videos already done"):
    """``overwrite`` and ``stale_after``: the per-video job options."""
    inputs.bool("overwrite", default=False, required=False, label=overwrite_label)
    inputs.float(
        "stale_after",
        min=1,
        default=600.0,
        required=False,
        label="Take over abandoned videos after (s)",
        description="a video another worker claimed and stopped updating for this long is redone",
    )


def tracker_inputs(inputs, default_tracker=None):
    from fiftyone_posetrack.tracking.base import available_trackers

    d = defaults()
    trackers = available_trackers()
    inputs.enum(
        "tracker",
        trackers,
        default=default_tracker or d.tracker,
        required=False,
        label="Tracker",
        view=types.DropdownView(),
    )
    inputs.str(
        "tracker_params",
        default="{}",
        required=False,
        label="Tracker parameters (JSON)",
        description='e.g. {"max_age": 30, "n_init": 3}',
    )


def form(inputs, label, description=None):
    return types.Property(inputs, view=types.View(label=label, description=description))


# --------------------------------------------------------------------------- parameters


class Params:
    """Typed access to ``ctx.params`` with defaults and errors naming the parameter."""

    def __init__(self, ctx):
        self.values = dict(ctx.params or {})

    def _get(self, name, default):
        v = self.values.get(name)
        return default if v is None else v

    def bad(self, name, expected):
        raise BadInputError(f"parameter {name!r}: expected {expected}, got {self.values.get(name)!r}")

    def str(self, name, default=None, choices=None, required=False):
        v = self._get(name, default)
        if v is None or v == "":
            if required:
                raise BadInputError(f"parameter {name!r} is required")
            return None
        if not isinstance(v, str):
            self.bad(name, "a string")
        if choices is not None and v not in choices:
            self.bad(name, f"one of {list(choices)}")
        return v

    def path(self, name, required=True):
        """An absolute path (``~`` expanded); a relative one is refused.

        Operators run in the App server, whose working folder is not the
        user's, so a relative path would land somewhere unexpected.
        """
        v = self.str(name, required=required)
        if not v:
            return None
        path = os.path.expanduser(v)
        if not os.path.isabs(path):
            raise BadInputError(
                f"parameter {name!r}: {v!r} is a relative path; give an absolute path (or ~/...): "
                "operators run in the App server, whose working folder is not yours"
            )
        return os.path.normpath(path)

    def bool(self, name, default=False):
        v = self._get(name, default)
        if not isinstance(v, bool):
            self.bad(name, "true or false")
        return v

    def float(self, name, default, lo=None, hi=None):
        v = self._get(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.bad(name, "a number")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            self.bad(name, f"a number in [{lo}, {hi}]")
        return float(v)

    def int(self, name, default, lo=None):
        v = self._get(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            self.bad(name, "an integer")
        if lo is not None and v < lo:
            self.bad(name, f"an integer >= {lo}")
        return int(v)

    def json(self, name, default="{}"):
        v = self._get(name, default)
        if isinstance(v, dict):
            return v
        try:
            out = json.loads(v) if isinstance(v, str) and v.strip() else {}
        except json.JSONDecodeError as e:
            raise BadInputError(f"parameter {name!r}: not valid JSON ({e}): {v!r}") from None
        if not isinstance(out, dict):
            self.bad(name, 'a JSON object such as {"max_age": 30}')
        return out

    def model(self, name, default=None):
        """A model name of :data:`~fiftyone_posetrack.models.MODELS` or a parseable model spec."""
        from fiftyone_posetrack.detection.base import parse_model_spec
        from fiftyone_posetrack.models import MODELS

        v = self.str(name, default=default)
        if v is None or v in MODELS:
            return v
        try:
            parse_model_spec(v)
        except BadInputError as e:
            raise BadInputError(f"parameter {name!r}: not a known model ({sorted(MODELS)}) nor a model spec: {e}") from None
        return v

    def field(self, ctx, name, cls, default=None, required=True):
        """The name of an existing frame field of label class ``cls``."""
        v = self.str(name, default=default, required=required)
        if v is None:
            return None
        choices = frame_fields(ctx, cls)
        if v not in choices:
            raise BadInputError(
                f"parameter {name!r}: {v!r} is not a frame field of {cls.__name__}; "
                f"such fields of dataset {ctx.dataset.name!r}: {choices}"
            )
        return v

    def new_field(self, name, default):
        """A name for an output field."""
        import re

        v = self.str(name, default=default, required=True)
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v):
            self.bad(name, "a field name (letters, digits, underscores)")
        return v


def runtime(p: Params) -> dict:
    d = defaults()
    return dict(
        models_dir=p.str("models_dir"),
        device=p.str("device", d.device),
        batch_size=p.int("batch_size", d.batch_size, lo=1),
    )


def target_view(ctx):
    """The samples to process (the form's target: dataset, current view or selection); videos only."""
    view = ctx.target_view()
    if view.media_type != "video":
        raise BadInputError(f"pose tracking needs video samples; the target holds {view.media_type!r} samples")
    return view


# --------------------------------------------------------------------------- progress and the App


def progress_callback(ctx):
    """``callback(fraction, label)`` that reports to a delegated run (stored on the run)."""
    if not ctx.delegated:
        return None

    def report(fraction, label):
        ctx.set_progress(progress=float(fraction), label=label)

    return report


def show_in_app(ctx, view=None):
    """Reloads the App's dataset and moves its view to ``view`` (immediate runs only)."""
    if ctx.delegated or ctx.executor is None:
        return
    ctx.trigger("reload_dataset")
    if view is not None:
        ctx.ops.set_view(view=view)


def summary_outputs(outputs, ctx=None):
    """The output fields of a per-video job summary."""
    outputs.int("processed", label="Videos processed")
    outputs.int("skipped", label="Videos skipped (done, or claimed by another worker)")
    outputs.int("frames", label="Frames processed")
    if ctx is None or (ctx.results or {}).get("failed"):
        outputs.obj("failed", label="Failed videos", view=types.JSONView())
    if ctx is None or (ctx.results or {}).get("queued_runs"):
        outputs.list("queued_runs", types.String(), label="Parallel runs queued")
    outputs.str("worker", label="Worker")


def summary_result(summary) -> dict:
    return {
        "processed": len(summary.processed),
        "skipped": len(summary.skipped),
        "frames": int(summary.frames),
        "failed": dict(summary.failed),
        "processed_ids": list(summary.processed),
        "worker": worker_id(),
        "timings": {k: round(float(v), 3) for k, v in summary.timings.items()},
    }


def raise_failures(summary, what: str) -> None:
    if summary.failed:
        names = "; ".join(f"{sid}: {msg}" for sid, msg in summary.failed.items())
        raise BadInputError(f"{what}: {len(summary.failed)} video(s) failed: {names}")


# --------------------------------------------------------------------------- scale-out


def scaleout_inputs(inputs):
    """``parallel_runs``, ``wait_for_others`` and ``flush_frames``."""
    inputs.int(
        "parallel_runs",
        min=1,
        default=1,
        required=False,
        label="Parallel runs",
        description=(
            "total runs sharing these videos: the extra runs are queued as delegated operations, "
            "one per `fiftyone delegated launch` worker; each video is processed by one run"
        ),
    )
    inputs.bool(
        "wait_for_others",
        default=True,
        required=False,
        label="Finish the videos of stopped workers (delegated runs)",
        description=(
            "a delegated run, after its own share, waits while other runs hold videos and redoes those whose "
            "worker stopped (no heartbeat for `stale_after` s); immediate runs never wait"
        ),
    )
    inputs.int(
        "flush_frames",
        min=1,
        default=500,
        required=False,
        label="Frames per database write",
        description="also the heartbeat period: keep stale_after well above the time these frames take",
    )


def queue_copies(ctx, operator, count: int) -> list[str]:
    """Queues ``count`` delegated copies of this operation (``parallel_runs=1``); returns their ids."""
    import copy

    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionContext

    skip = {"run_doc", "results", "target", "delegated_operation_id", "prompt_id"}
    service, ids = DelegatedOperationService(), []
    for i in range(count):
        request = copy.deepcopy({k: v for k, v in ctx.request_params.items() if k not in skip})
        request["params"] = dict(copy.deepcopy(ctx.params), parallel_runs=1)
        request["delegated"] = True
        request["request_delegation"] = True
        request.setdefault("dataset_id", str(ctx.dataset._doc.id))
        doc = service.queue_operation(
            operator=operator.uri,
            label=f"{operator.config.label} (parallel run {i + 2}/{count + 1})",
            delegation_target=ctx.delegation_target,
            context=ExecutionContext(request_params=request).serialize(),
        )
        ids.append(str(doc.id))
    return ids


def run_job(ctx, operator, view, status_field: str, once, what: str) -> dict:
    """Runs ``once(samples, **job_options)`` over ``view`` like a worker.

    ``job_options`` are the keyword arguments of
    :func:`fiftyone_posetrack.fo.jobs.run_video_jobs` that every stage takes
    (``flush_frames``, ``progress``, ``raise_on_error``, ``stale_after``,
    ``progress_callback``), from the operator's parameters.

    Queues the extra ``parallel_runs``; after the first pass, while other runs
    hold videos of ``view`` (status ``"running"``), polls and runs again on
    those, so videos of a worker that died are redone once their claim is
    stale (delegated runs only). Records the worker (``host:pid``) of each processed video in the
    sample field ``<status_field without _status>_worker``.
    """
    import time

    from fiftyone import ViewField as F

    p = Params(ctx)
    stale_after = p.float("stale_after", 600.0, lo=1)
    flush = p.int("flush_frames", 500, lo=1)
    runs = p.int("parallel_runs", 1, lo=1)
    wait = p.bool("wait_for_others", True) and ctx.delegated  # an App request must not block on others
    queued = queue_copies(ctx, operator, runs - 1) if runs > 1 else []
    callback = progress_callback(ctx)
    dataset = view._dataset
    worker_field = status_field[: -len("_status")] + "_worker"
    me = worker_id()
    totals = None
    samples = view
    poll = min(max(stale_after / 10.0, 0.5), 30.0)
    while True:
        summary = once(
            samples, flush_frames=flush, progress=False, raise_on_error=False, stale_after=stale_after,
            progress_callback=callback,
        )  # fmt: skip
        if summary.processed:
            if not dataset.has_sample_field(worker_field):
                dataset.add_sample_field(worker_field, fo.StringField)
            dataset.select(summary.processed).set_values(worker_field, [me] * len(summary.processed))
        if totals is None:
            totals = summary
        else:
            totals.processed += summary.processed
            totals.failed.update(summary.failed)
            totals.frames += summary.frames
            for k, v in summary.timings.items():
                totals.timings[k] = totals.timings.get(k, 0.0) + v
        if not wait or not dataset.has_sample_field(status_field):
            break
        samples = view.match(F(status_field) == "running")
        if not len(samples):
            break
        time.sleep(poll)
    done = set(totals.processed)
    totals.skipped = [s for s in dict.fromkeys(totals.skipped) if s not in done]
    result = summary_result(totals)
    result["queued_runs"] = queued
    raise_failures(totals, what)
    return result
