"""Tracker presets: a tracker, its parameters and its post-processing, by name or JSON file.

A preset is a dict ``{"tracker": NAME, "params": {...}, "postprocess": {...}}``
(``postprocess`` holds :class:`~fiftyone_posetrack.tracking.postprocess.PostprocessConfig`
fields). Built-in presets are in :data:`TRACKER_PRESETS`; any other preset is
a JSON file, e.g. one written by ``posetrack tune --save-preset FILE``::

    preset = load_tracker_preset("mot17")        # or "my_preset.json"
    tracker = make_tracker(preset["tracker"], **preset["params"])

``ocsort`` (OC-SORT with its defaults: box-state Kalman filter, corner OCM,
detection boxes out; then motion-only tracklet linking across gaps of up to
60 frames, linear interpolation of gaps up to 20 frames and GSI) is the
default of ``posetrack track-mot``: chosen by its worst HOTA loss
against each shared benchmark's best row (MOT17 half-val, DanceTrack val dev,
TUD re-tracking, the synthetic crowd) with ``bench/bench_tracking_suite.py``
(``docs/tracking.md``). ``mot17`` (ByteTrack 0.6 / 0.7, match 0.9, max_age
60 + the same post-processing) was chosen on the MOT17 half-val split alone
(sequences 02, 04, 05, 09) by ``bench/bench_mot17.py``: a named preset for
MOT17-like footage, not the default (DanceTrack dev: 41.0 HOTA, the default 50.7).
"""

from __future__ import annotations

import copy
import json
import os

from fiftyone_posetrack.types import BadInputError

__all__ = ["TRACKER_PRESETS", "DEFAULT_TRACKER_PRESET", "load_tracker_preset", "save_tracker_preset", "check_preset"]

#: built-in presets
TRACKER_PRESETS: dict[str, dict] = {
    "mot17": {
        "tracker": "bytetrack",
        "params": {"track_thresh": 0.6, "new_track_thresh": 0.7, "match_thresh": 0.9, "max_age": 60},
        "postprocess": {"interpolate": 20, "gsi": True, "gsi_tau": 10.0},
    },
    "ocsort": {
        "tracker": "ocsort",
        "params": {},
        "postprocess": {"link": True, "interpolate": 20, "gsi": True, "gsi_tau": 10.0},
    },
}

#: the preset ``posetrack track-mot`` uses when no tracker is named
DEFAULT_TRACKER_PRESET = "ocsort"


def check_preset(preset: dict, what: str = "preset") -> dict:
    """Validates a preset dict (tracker name, parameters, post-processing options)."""
    from fiftyone_posetrack.tracking.base import make_tracker
    from fiftyone_posetrack.tracking.postprocess import postprocess_tracks

    if not isinstance(preset, dict) or "tracker" not in preset:
        raise BadInputError(f"{what}: expected {{'tracker': NAME, 'params': {{...}}, 'postprocess': {{...}}}}")
    unknown = sorted(set(preset) - {"tracker", "params", "postprocess", "metrics", "sequences"})
    if unknown:
        raise BadInputError(f"{what}: unknown key(s) {unknown}")
    params = preset.get("params") or {}
    post = preset.get("postprocess") or {}
    if not isinstance(params, dict) or not isinstance(post, dict):
        raise BadInputError(f"{what}: 'params' and 'postprocess' must be objects")
    make_tracker(preset["tracker"], **params)
    postprocess_tracks([], post)  # names bad options
    return {"tracker": preset["tracker"], "params": dict(params), "postprocess": dict(post),
            **{k: preset[k] for k in ("metrics", "sequences") if k in preset}}  # fmt: skip


def load_tracker_preset(name_or_path: str) -> dict:
    """A built-in preset by name, or a preset JSON file (validated copy)."""
    if name_or_path in TRACKER_PRESETS:
        return check_preset(copy.deepcopy(TRACKER_PRESETS[name_or_path]), f"preset {name_or_path!r}")
    path = os.fspath(name_or_path)
    if not os.path.isfile(path):
        raise BadInputError(
            f"tracker preset {name_or_path!r}: neither a built-in preset {sorted(TRACKER_PRESETS)} nor a JSON file"
        )
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInputError(f"tracker preset {path}: cannot read JSON ({e})") from e
    return check_preset(data, f"preset {path}")


def save_tracker_preset(path, tracker: str, params: dict, postprocess: dict | None = None, **extra) -> dict:
    """Writes a preset JSON file (validated first); returns the preset."""
    preset = check_preset({"tracker": tracker, "params": params, "postprocess": postprocess or {}, **extra})
    from fiftyone_posetrack.atomic import atomic_write

    with atomic_write(path, what="tracker preset") as f:  # whole or not at all
        json.dump(preset, f, indent=2, default=float)
    return preset
