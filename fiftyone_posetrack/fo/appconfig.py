"""The App's look of tracked labels: one colour per track, shared by boxes and skeletons.

:func:`apply_track_colors` sets the dataset's App colour scheme
(``dataset.app_config.color_scheme``) so that

- every tracked field (boxes and keypoints written with ``index`` = track id)
  is coloured by its ``index`` from :data:`TRACK_PALETTE`; the colour depends
  only on the value, so a track's box and skeleton get the same colour;
- every other ``fo.Detections`` / ``fo.Keypoints`` frame field (ground truth,
  imports) is drawn in one neutral colour (:data:`REFERENCE_COLOR`), so
  ground truth stays distinguishable from predictions;
- skeletons are drawn, one colour per skeleton (not per joint).

The App shows the ``index`` of a label next to its label text by default
(``fo.app_config.show_index``), so the track id is on the box.

An App that is already open gets the new scheme too: a ``fo.Session`` of
this process showing the dataset is given it (``session.color_scheme``),
and an operator run from the App sends it to that App
(:func:`app_color_scheme_params` for the App's ``set_color_scheme``).

The per-video bookkeeping sample fields of the jobs (``<field>_status``,
``<field>_claimed_at`` (unix seconds), ``<field>_run``, ``<field>_claim``, any
``<field>_*`` of a frame field ``<field>``) are moved into one collapsed
sidebar group, :data:`BOOKKEEPING_GROUP` (:func:`group_bookkeeping_fields`,
called with the colours), so the sidebar shows labels first and no raw epoch.

Overridable: a colour scheme the user set is never replaced. The scheme this
module writes is recorded in ``dataset.info[INFO_KEY]``; it is updated only
while the dataset's scheme is still the recorded one (or there is none).
Pass ``force=True`` to replace any scheme, or call :func:`clear_track_colors`
to remove ours.
"""

from __future__ import annotations

from collections.abc import Iterable

import fiftyone as fo

__all__ = [
    "INFO_KEY",
    "REFERENCE_COLOR",
    "TRACK_PALETTE",
    "BOOKKEEPING_GROUP",
    "app_color_scheme_params",
    "bookkeeping_fields",
    "group_bookkeeping_fields",
    "apply_track_colors",
    "clear_track_colors",
    "refresh_open_sessions",
    "track_color_scheme",
    "tracked_fields",
]

#: high-contrast colours (Kelly's colours of maximum contrast, without
#: white, black, greys and the darkest browns), vivid on video frames
TRACK_PALETTE = (
    "#F3C300", "#875692", "#F38400", "#A1CAF1", "#BE0032", "#C2B280", "#008856", "#E68FAC",
    "#0067A5", "#F99379", "#604E97", "#F6A600", "#B3446C", "#DCD300", "#8DB600", "#E25822",
)  # fmt: skip
#: the one colour of reference fields (ground truth, imports): a neutral grey
#: (label text is drawn in white, so not white)
REFERENCE_COLOR = "#A0A0A0"
#: ``dataset.info`` key recording the scheme this module set
INFO_KEY = "posetrack_color_scheme"

_LABEL_TYPES = (fo.Detections, fo.Keypoints)


def _frame_label_fields(dataset) -> list[str]:
    schema = dataset.get_frame_field_schema() or {}
    return sorted(n for n, f in schema.items() if getattr(f, "document_type", None) in _LABEL_TYPES)


def track_color_scheme(tracked: Iterable[str], reference: Iterable[str] = ()) -> fo.ColorScheme:
    """The colour scheme: ``tracked`` frame fields by ``index``, ``reference`` fields one colour.

    Args:
        tracked: frame field names (``"pred_detections"``, no ``frames.``)
        reference: frame field names drawn in :data:`REFERENCE_COLOR`
    """
    fields = [{"path": f"frames.{f}", "colorByAttribute": "index"} for f in tracked]
    fields += [
        {
            "path": f"frames.{f}",
            "fieldColor": REFERENCE_COLOR,
            "colorByAttribute": "label",
            "valueColors": [{"value": "person", "color": REFERENCE_COLOR}],
        }
        for f in reference
    ]
    return fo.ColorScheme(
        color_by="value",
        color_pool=list(TRACK_PALETTE),
        fields=fields,
        multicolor_keypoints=False,
        show_skeletons=True,
    )


def _serialize(scheme) -> dict | None:
    if scheme is None:
        return None
    d = scheme.to_dict()
    d.pop("_id", None)
    d.pop("id", None)
    return d


def tracked_fields(dataset) -> list[str]:
    """The frame fields our colour scheme colours by track (empty if it is not ours)."""
    recorded = (dataset.info or {}).get(INFO_KEY)
    if not recorded:
        return []
    return [
        f["path"][len("frames.") :]
        for f in recorded.get("fields") or []
        if f.get("colorByAttribute") == "index"
    ]


def apply_track_colors(dataset, fields: Iterable[str], force: bool = False) -> bool:
    """Colours ``fields`` by track in the App (see the module docs).

    Fields coloured by track earlier stay so; every other ``fo.Detections`` /
    ``fo.Keypoints`` frame field becomes a reference field.

    Args:
        dataset: a :class:`fiftyone.core.dataset.Dataset` (a view's dataset is used)
        fields: tracked frame field names (with or without ``frames.``)
        force: replace a colour scheme the user set

    Returns:
        True if the scheme was written, False if a user's scheme was kept
    """
    dataset = getattr(dataset, "_dataset", dataset)
    current = _serialize(dataset.app_config.color_scheme)
    recorded = (dataset.info or {}).get(INFO_KEY)
    if current is not None and current != recorded and not force:
        return False
    names = [f[len("frames.") :] if f.startswith("frames.") else f for f in fields]
    tracked = list(dict.fromkeys(tracked_fields(dataset) + names))
    existing = set(_frame_label_fields(dataset))
    tracked = [f for f in tracked if f in existing]
    reference = [f for f in sorted(existing) if f not in tracked]
    scheme = track_color_scheme(tracked, reference)
    dataset.app_config.color_scheme = scheme
    dataset.info[INFO_KEY] = _serialize(scheme)
    group_bookkeeping_fields(dataset, save=False)
    dataset.save()
    refresh_open_sessions(dataset)
    return True


#: the App sidebar group of the jobs' bookkeeping fields (collapsed)
BOOKKEEPING_GROUP = "pose tracking bookkeeping"


def bookkeeping_fields(dataset) -> list[str]:
    """The sample fields named ``<frame field>_<anything>`` (jobs' status, claim, run, ...), sorted."""
    dataset = getattr(dataset, "_dataset", dataset)
    frame_fields = sorted(dataset.get_frame_field_schema() or {}, key=len, reverse=True)
    out = []
    for name in dataset.get_field_schema():
        if any(name.startswith(f + "_") for f in frame_fields):
            out.append(name)
    return sorted(out)


def group_bookkeeping_fields(dataset, save: bool = True) -> list[str]:
    """Moves :func:`bookkeeping_fields` into the collapsed sidebar group :data:`BOOKKEEPING_GROUP`.

    The other groups keep their order and their other fields (the App's
    default groups when the dataset has none). Returns the fields grouped.
    """
    dataset = getattr(dataset, "_dataset", dataset)
    fields = bookkeeping_fields(dataset)
    groups = dataset.app_config.sidebar_groups
    if not fields and not any(g.name == BOOKKEEPING_GROUP for g in groups or []):
        return []
    if groups is None:
        groups = fo.DatasetAppConfig.default_sidebar_groups(dataset)
    kept = []
    for g in groups:
        if g.name == BOOKKEEPING_GROUP:
            continue
        g.paths = [p for p in (g.paths or []) if p not in fields]
        kept.append(g)
    if fields:
        kept.append(fo.SidebarGroupDocument(name=BOOKKEEPING_GROUP, paths=fields, expanded=False))
    dataset.app_config.sidebar_groups = kept
    if save:
        dataset.save()
    return fields


def _open_sessions() -> list:
    """The ``fo.Session`` objects of this process (FiftyOne keeps the last launched one)."""
    import fiftyone.core.session.session as fos

    session = getattr(fos, "_session", None)
    return [session] if session is not None else []


def refresh_open_sessions(dataset) -> int:
    """Gives the dataset's colour scheme to every open App session of this process showing it.

    Returns:
        how many sessions were refreshed
    """
    dataset = getattr(dataset, "_dataset", dataset)
    count = 0
    for session in _open_sessions():
        try:
            shown = session.dataset
        except Exception:  # a closed session
            continue
        if shown is None or shown.name != dataset.name:
            continue
        scheme = dataset.app_config.color_scheme
        session.color_scheme = scheme.copy() if scheme is not None else None
        count += 1
    return count


def app_color_scheme_params(dataset) -> dict | None:
    """The parameters of the App's ``set_color_scheme`` operator for the dataset's scheme (None: none set).

    The App keeps its colour scheme in its own state; an operator that changed
    the dataset's scheme sends these with ``ctx.trigger("set_color_scheme", ...)``
    so the open App shows it without reloading the page.
    """
    dataset = getattr(dataset, "_dataset", dataset)
    scheme = dataset.app_config.color_scheme
    if scheme is None:
        return None
    fields = []
    for f in scheme.fields or []:
        d = {"path": f["path"]}
        for key in ("fieldColor", "colorByAttribute", "valueColors"):
            if f.get(key) is not None:
                d[key] = f[key]
        fields.append(d)
    return {
        "color_by": scheme.color_by,
        "color_pool": list(scheme.color_pool or TRACK_PALETTE),
        "multi_color_keypoints": bool(scheme.multicolor_keypoints),
        "show_keypoint_skeletons": bool(scheme.show_skeletons),
        "fields": fields,
    }


def clear_track_colors(dataset) -> bool:
    """Removes our colour scheme (not a user's); returns whether it did."""
    dataset = getattr(dataset, "_dataset", dataset)
    recorded = (dataset.info or {}).get(INFO_KEY)
    if recorded is None:
        return False
    if _serialize(dataset.app_config.color_scheme) == recorded:
        dataset.app_config.color_scheme = None
    dataset.info.pop(INFO_KEY, None)
    dataset.save()
    return True
