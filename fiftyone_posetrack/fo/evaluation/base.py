"""Shared machinery of this package's FiftyOne evaluation runs.

Every evaluation here is a real FiftyOne evaluation run: a
:class:`fiftyone.core.evaluation.EvaluationMethodConfig` subclass named
``XxxConfig`` next to its :class:`fiftyone.core.evaluation.EvaluationMethod`
``Xxx`` (FiftyOne stores the config's class path and finds the method by
dropping ``Config``), and a :class:`fiftyone.core.evaluation.EvaluationResults`
subclass whose public attributes are its JSON. So ``list_evaluations()``,
``get_evaluation_info()``, ``load_evaluation_results()``,
``rename_evaluation()`` and ``delete_evaluation()`` work as for FiftyOne's own
runs; renaming renames, and deleting removes, every field the run wrote.

Fields are stored as FiftyOne spells them: ``config.pred_field`` /
``config.gt_field`` are full paths (``"frames.pred_detections"``), so that
FiftyOne helpers such as ``to_evaluation_patches`` can read them.

Videos are named as exports name them (:func:`fiftyone_posetrack.fo.labels.video_names`:
the ``sequence`` field, else the file name without extension); repeated names
get ``#2``, ``#3`` (in collection order), and ``OVERALL`` is reserved. Labels
are read by :func:`fiftyone_posetrack.fo.labels.read_videos`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

import fiftyone as fo
import fiftyone.core.evaluation as foe
import fiftyone.core.fields as fof

from fiftyone_posetrack.fo.evaluation.panel_compat import ModelEvaluationPanelData, TextReport
from fiftyone_posetrack.fo.labels import RawLabel, VideoLabels, read_videos, video_names
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "PosetrackEvaluation",
    "PosetrackEvaluationConfig",
    "PosetrackEvaluationResults",
    "RawLabel",
    "VideoLabels",
    "check_eval_key_fields",
    "check_ground_truth",
    "frame_path",
    "read_videos",
    "video_names",
]


def frame_path(field: str) -> str:
    """``"pred_detections"`` or ``"frames.pred_detections"`` -> ``"frames.pred_detections"``."""
    return field if field.startswith("frames.") else f"frames.{field}"


def _bare(field: str) -> str:
    return field[len("frames.") :] if field.startswith("frames.") else field


def check_video_collection(samples) -> None:
    """Raises :class:`BadInputError` unless ``samples`` is a non-empty video collection."""
    if getattr(samples, "media_type", None) != fo.core.media.VIDEO:
        raise BadInputError(
            f"samples: expected a video dataset or view, got media type "
            f"{getattr(samples, 'media_type', None)!r} (frames and patches views are not videos)"
        )
    if len(samples) == 0:
        raise BadInputError("samples: the collection is empty")


def check_label_field(samples, field: str, label_type, what: str) -> str:
    """Validates a frame-level label field; returns its bare name (no ``frames.``)."""
    if not isinstance(field, str) or not field:
        raise BadInputError(f"{what}: expected a frame field name, got {field!r}")
    name = _bare(field)
    if not samples.has_frame_field(name):
        raise BadInputError(
            f"{what}: the collection has no frame field {name!r} "
            f"(frame fields: {sorted(samples.get_frame_field_schema())})"
        )
    ftype = samples.get_field(frame_path(name))
    doc_type = getattr(ftype, "document_type", None)
    if doc_type is None or not issubclass(doc_type, label_type):
        raise BadInputError(
            f"{what}: frames.{name} holds {getattr(doc_type, '__name__', ftype)}, "
            f"expected {label_type.__name__}"
        )
    return name


def check_eval_key(eval_key: str) -> str:
    """Refuses an eval key that is not a Python identifier or starts with ``_`` (FiftyOne's private names)."""
    if not isinstance(eval_key, str) or not eval_key.isidentifier():
        raise BadInputError(f"eval_key: expected a valid Python identifier, got {eval_key!r}")
    if eval_key.startswith("_"):
        raise BadInputError(f"eval_key: names starting with '_' are FiftyOne's private fields, got {eval_key!r}")
    return eval_key


#: the label class of each label list attribute
_LIST_ITEM = {"detections": fo.Detection, "keypoints": fo.Keypoint, "polylines": fo.Polyline}


def check_eval_key_fields(samples, method: "PosetrackEvaluation", eval_key: str | None) -> None:
    """Refuses an eval key whose fields would land on existing fields or label attributes.

    Every path the run would write (:meth:`PosetrackEvaluation.get_fields`:
    sample fields, frame fields and attributes of the labels it marks) must be
    new, or belong to the run of the same key and type that it replaces. A
    label attribute must also not be one of the label class's own fields or
    methods (``label``, ``index``, ``confidence``, ``to_dict``, ...), nor a
    dynamic attribute that some label holds without the schema declaring it.

    Raises:
        BadInputError: naming the eval key and the first colliding path
    """
    if eval_key is None:
        return
    check_eval_key(eval_key)
    dataset = samples._dataset
    own: set[str] = set()
    if eval_key in dataset.list_evaluations():
        info = dataset.get_evaluation_info(eval_key)
        if type(info.config) is not type(method.config):
            raise BadInputError(
                f"eval_key {eval_key!r} names an existing {type(info.config).__name__} run; "
                "choose another key or delete that run first (dataset.delete_evaluation)"
            )
        own = set(info.config.build().get_fields(dataset, eval_key))
    for path in method.get_fields(dataset, eval_key):
        if path in own:
            continue
        parts = path.split(".")
        if len(parts) == 4 and parts[2] in _LIST_ITEM:  # frames.<field>.<list>.<attr>
            label_cls, attr = _LIST_ITEM[parts[2]], parts[3]
            if hasattr(label_cls, attr) or attr in label_cls._fields:
                raise BadInputError(
                    f"eval_key {eval_key!r}: the run would write the attribute {attr!r} of every "
                    f"{label_cls.__name__} in {'.'.join(parts[:2])}, which is the label's own {attr!r}; "
                    "choose another eval key"
                )
            stored = dataset._frame_collection.find_one({".".join(parts[1:]): {"$exists": True}}, {"_id": 1})
            if dataset.get_field(path) is not None or stored is not None:
                raise BadInputError(
                    f"eval_key {eval_key!r}: the labels of {'.'.join(parts[:2])} already have an attribute "
                    f"{attr!r} the run would overwrite; choose another eval key"
                )
        elif dataset.get_field(path) is not None:
            raise BadInputError(
                f"eval_key {eval_key!r}: the run would write the existing field {path!r}, which another "
                "run or import owns; choose another eval key"
            )


def check_ground_truth(samples, pred: str, gt: str, label_type) -> None:
    """Refuses a ground truth that cannot be one, before anything is read or written.

    - ``gt`` equal to ``pred``: a field evaluated against itself scores
      perfectly (or, before the consider-flag fix of
      :func:`~fiftyone_posetrack.fo.labels.frames_to_mot`, read as empty ground
      truth: FP = every box, MOTA -inf), and the run's marks of both sides
      would land on the same labels;
    - ``gt`` without a single label in ``samples``: every metric would be
      undefined or meaningless (no ground truth to find).

    Args:
        samples: the evaluated collection
        pred, gt: bare frame field names
        label_type: ``fo.Detections`` or ``fo.Keypoints``

    Raises:
        BadInputError: naming both fields, or the empty one
    """
    if pred == gt:
        raise BadInputError(
            f"gt_field and pred_field are both frames.{gt}: a field cannot be evaluated against itself; "
            "give the ground-truth field as gt_field (import ground truth first, e.g. "
            "fiftyone_posetrack.fo.io.import_mot_sequences or import_posetrack)"
        )
    list_name = label_type._LABEL_LIST_FIELD
    if not samples.count(f"frames.{gt}.{list_name}"):
        item = _LIST_ITEM[list_name].__name__
        raise BadInputError(
            f"gt_field: frames.{gt} holds no {item} in the {len(samples)} video(s) evaluated, so there is no "
            f"ground truth to evaluate frames.{pred} against; import or annotate ground truth into a field "
            "and give it as gt_field"
        )


def check_box_fields(
    samples, pred_field: str, gt_field: str, ignore_field: str | None, eval_key: str | None
) -> tuple[str, str, str | None]:
    """The input checks of the box evaluations (detection, tracking).

    ``samples`` must be a non-empty video collection, ``pred_field`` and
    ``gt_field`` frame-level ``fo.Detections`` (two different fields, the
    ground truth holding labels: :func:`check_ground_truth`),
    ``ignore_field`` (optional) frame-level ``fo.Polylines`` and ``eval_key``
    None or an identifier.

    Returns:
        the bare names ``(pred, gt, ignore or None)``

    Raises:
        BadInputError: naming the first bad input
    """
    check_video_collection(samples)
    pred = check_label_field(samples, pred_field, fo.Detections, "pred_field")
    gt = check_label_field(samples, gt_field, fo.Detections, "gt_field")
    ign = check_label_field(samples, ignore_field, fo.Polylines, "ignore_field") if ignore_field else None
    if eval_key is not None:
        check_eval_key(eval_key)
    check_ground_truth(samples, pred, gt, fo.Detections)
    return pred, gt, ign


def region_polygons(polylines, width: int, height: int) -> list[np.ndarray]:
    """The polygons of a frame's ``fo.Polylines`` ignore regions, in pixels.

    Every shape of every polyline is one polygon ``(P, 2)`` ``(x, y)``; shapes
    with fewer than 3 points are skipped.
    """
    if polylines is None:
        return []
    scale = np.array([width, height], dtype=np.float64)
    polys = []
    for line in polylines.polylines:
        for shape in line.points:
            pts = np.asarray(shape, dtype=np.float64).reshape(-1, 2)
            if len(pts) >= 3 and np.isfinite(pts).all():
                polys.append(pts * scale)
    return polys


def points_in_regions(points: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """``(Q,)`` bool: whether each ``(x, y)`` point lies strictly inside any polygon."""
    from fiftyone_posetrack.eval.posetrack import _inside

    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(points), dtype=bool)
    for poly in polygons:
        if len(points):
            inside |= _inside(points, poly)
    return inside


def to_builtin(value):
    """A copy with numpy scalars/arrays as Python values (NaN and inf kept)."""
    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_builtin(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def finite_or_none(value):
    """``value`` as float, or None when it is NaN/inf (for database fields)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- runs


class PosetrackEvaluationConfig(foe.EvaluationMethodConfig):
    """Base config of this package's evaluation runs.

    Args:
        pred_field: the predictions' field, ``"frames.<name>"``
        gt_field: the ground truth's field, ``"frames.<name>"``
        ignore_field: the ``fo.Polylines`` ignore regions' field,
            ``"frames.<name>"``, or None
        **kwargs: further JSON-serializable parameters of the run
    """

    def __init__(self, pred_field: str, gt_field: str, ignore_field: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.pred_field = pred_field
        self.gt_field = gt_field
        self.ignore_field = ignore_field

    @property
    def type(self) -> str:
        # FiftyOne's Model Evaluation panel opens only classification, detection and
        # segmentation runs (and crashes on others); see .panel_compat
        return "detection"

    @property
    def method(self) -> str:
        raise NotImplementedError("subclass must name its method")


class PosetrackEvaluation(foe.EvaluationMethod):
    """Base method: the fields it writes, and their rename / cleanup.

    Subclasses list their fields in :meth:`field_names` as
    ``(sample_fields, frame_fields, label_attributes)`` where the label
    attributes are ``(label_field, attribute)`` pairs of frame-level label
    lists (``("pred_detections", "track_eval")``).
    """

    def field_names(self, eval_key: str) -> tuple[list[str], list[str], list[tuple[str, str]]]:
        raise NotImplementedError

    def _paths(self, samples, eval_key) -> list[str]:
        sample_fields, frame_fields, label_attrs = self.field_names(eval_key)
        paths = list(sample_fields) + [f"frames.{f}" for f in frame_fields]
        for label_field, attr in label_attrs:
            ftype = samples.get_field(frame_path(label_field))
            list_name = getattr(getattr(ftype, "document_type", None), "_LABEL_LIST_FIELD", None)
            if list_name:
                paths.append(f"frames.{label_field}.{list_name}.{attr}")
        return paths

    def get_fields(self, samples, eval_key):
        return self._paths(samples, eval_key)

    def _existing(self, dataset, eval_key) -> tuple[list[int], list[str]]:
        paths = self._paths(dataset, eval_key)
        keep = [i for i, p in enumerate(paths) if dataset.get_field(p) is not None]
        return keep, paths

    def rename(self, samples, eval_key, new_eval_key):
        dataset = samples._dataset
        keep, old = self._existing(dataset, eval_key)
        new = self._paths(dataset, new_eval_key)
        sample_map = {old[i]: new[i] for i in keep if not old[i].startswith("frames.")}
        frame_map = {old[i][7:]: new[i][7:] for i in keep if old[i].startswith("frames.")}
        if sample_map:
            dataset.rename_sample_fields(sample_map)
        if frame_map:
            dataset.rename_frame_fields(frame_map)

    def cleanup(self, samples, eval_key):
        dataset = samples._dataset
        keep, paths = self._existing(dataset, eval_key)
        paths = [paths[i] for i in keep]
        sample_fields = [p for p in paths if not p.startswith("frames.")]
        frame_fields = [p[7:] for p in paths if p.startswith("frames.")]
        if sample_fields:
            dataset.delete_sample_fields(sample_fields, error_level=1)
        if frame_fields:
            dataset.delete_frame_fields(frame_fields, error_level=1)

    def register_run(self, samples, key, overwrite=True, cleanup=True):
        """FiftyOne's registration, after :func:`check_eval_key_fields` (which every evaluate_* also calls first)."""
        check_eval_key_fields(samples, self, key)
        super().register_run(samples, key, overwrite=overwrite, cleanup=cleanup)

    def _validate_run(self, samples, eval_key, existing_info):
        self._validate_fields_match(eval_key, "pred_field", existing_info)
        self._validate_fields_match(eval_key, "gt_field", existing_info)

    def set_sample_metrics(self, samples, eval_key, values: dict[str, dict[str, float | None]]) -> None:
        """Writes per-video metrics as float sample fields of the run.

        Args:
            samples: the evaluated collection
            eval_key: the run's key
            values: ``{field: {sample id: value}}``; None, NaN and inf are
                stored as None
        """
        self.declare_fields(samples, eval_key, {name: FLOAT for name in values})
        dataset = samples._dataset
        for name, by_id in values.items():
            dataset.set_values(name, {sid: finite_or_none(v) for sid, v in by_id.items()}, key_field="id")

    def declare_fields(self, samples, eval_key, types: dict[str, type]) -> None:
        """Adds the run's fields to the schema (``types``: path -> field class)."""
        dataset = samples._dataset
        new = {p: t() for p, t in types.items() if dataset.get_field(p) is None}
        frame = {p[7:]: f for p, f in new.items() if p.startswith("frames.")}
        sample = {p: f for p, f in new.items() if not p.startswith("frames.")}
        # one schema merge per nesting level, rather than one per field
        if frame:
            dataset.add_dynamic_frame_fields(fields=frame)
        if sample:
            dataset.add_dynamic_sample_fields(fields=sample)


class PosetrackEvaluationResults(ModelEvaluationPanelData, foe.EvaluationResults):
    """Base results: metrics per video and ``"OVERALL"``.

    Args:
        samples: the evaluated collection
        config: the run's config
        eval_key: the run's key
        metrics_by_video: ``{video: metrics dict, ..., "OVERALL": metrics}``
        video_ids: ``{video: sample id}``
        backend: the run's method (built from ``config`` when omitted)
    """

    #: metric keys printed by :meth:`print_report`, subclasses override
    report_keys: tuple[str, ...] = ()

    def __init__(self, samples, config, eval_key, metrics_by_video, video_ids, backend=None, **kwargs):
        super().__init__(samples, config, eval_key, backend=backend)
        self.metrics_by_video = to_builtin(metrics_by_video)
        self.video_ids = dict(video_ids)
        for name, value in kwargs.items():
            setattr(self, name, to_builtin(value))

    @classmethod
    def _from_dict(cls, d, samples, config, eval_key):
        return cls(samples, config, eval_key, **d)

    def metrics(self, video: str | None = None) -> dict:
        """The metrics of ``video``, or the overall ones (a copy)."""
        key = "OVERALL" if video is None else video
        if key not in self.metrics_by_video:
            raise BadInputError(f"video: expected one of {sorted(self.per_video)}, got {video!r}")
        return dict(self.metrics_by_video[key])

    @property
    def per_video(self) -> dict[str, dict]:
        """``{video: metrics}`` without ``OVERALL``."""
        return {k: v for k, v in self.metrics_by_video.items() if k != "OVERALL"}

    def report(self, keys: Sequence[str] | None = None) -> str:
        """A plain-text table of ``keys`` per video and overall (a :class:`TextReport`)."""
        keys = list(keys or self.report_keys)
        rows = list(self.metrics_by_video)
        width = max([len(r) for r in rows] + [7])

        def fmt(v):
            if isinstance(v, bool) or v is None:
                return str(v)
            if isinstance(v, int):
                return str(v)
            if isinstance(v, float):
                return "nan" if math.isnan(v) else f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"
            return str(v)

        cols = [[fmt(self.metrics_by_video[r].get(k)) for k in keys] for r in rows]
        widths = [max([len(k)] + [len(c[j]) for c in cols]) for j, k in enumerate(keys)]
        lines = [" " * width + "  " + "  ".join(k.rjust(w) for k, w in zip(keys, widths))]
        for r, c in zip(rows, cols):
            lines.append(r.ljust(width) + "  " + "  ".join(v.rjust(w) for v, w in zip(c, widths)))
        # a str, that FiftyOne's Model Evaluation panel can also read per class
        return TextReport("\n".join(lines), self.per_class_report())

    def print_report(self, keys: Sequence[str] | None = None) -> None:
        """Prints :meth:`report`."""
        print(self.report(keys))


INT = fof.IntField
FLOAT = fof.FloatField
STRING = fof.StringField
BOOL = fof.BooleanField
