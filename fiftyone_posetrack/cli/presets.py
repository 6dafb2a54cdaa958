"""``posetrack presets``: each preset's models, their download size and whether they are here offline."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "presets",
        help="list the presets (posetrack run --preset NAME): models, download size, offline availability",
        description=(
            "Lists the presets of `posetrack run --preset NAME` / PipelineConfig(preset=NAME): each one's "
            "description, option values and models, with each model's download size and whether it is "
            "found locally (--models-dir, $POSETRACK_MODELS_DIR, the cache) without downloading."
        ),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these presets (default: all)")
    parser.add_argument(
        "--models-dir", default=None,
        help="local folder of named models (<dir>/<name>/<file>); default: $POSETRACK_MODELS_DIR",
    )  # fmt: skip
    parser.set_defaults(func=_presets)


def model_status(name: str, models_dir=None) -> dict:
    """``{"name", "known", "size_mb", "local"}`` of a named model (never downloads).

    ``size_mb`` is the zoo's declared download size (``ModelInfo.size_mb``;
    None where the zoo does not declare one); ``local`` the path found, or None.
    """
    from fiftyone_posetrack.models import MODELS, model_path
    from fiftyone_posetrack.types import ModelUnavailableError

    info = MODELS.get(name)
    if info is None:
        return {"name": name, "known": False, "size_mb": None, "local": None}
    try:
        local = str(model_path(name, models_dir, download=False))
    except ModelUnavailableError:  # not here, and never downloaded here
        local = None
    return {"name": name, "known": True, "size_mb": getattr(info, "size_mb", None), "local": local}


def _mb(size) -> float | None:
    """A declared size in MB (a number, or a string such as ``"~27"``), or None."""
    if isinstance(size, (int, float)):
        return float(size)
    try:
        return float(str(size).strip().lstrip("~").split()[0])
    except (ValueError, IndexError):
        return None


def _size_text(size) -> str:
    if size is None:
        return "size ?"
    return f"{size} MB" if isinstance(size, str) else f"{float(size):.0f} MB"


def _presets(args: argparse.Namespace) -> int:
    from fiftyone_posetrack.presets import PRESETS, preset_models, preset_options
    from fiftyone_posetrack.types import BadInputError

    names = args.names or list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise BadInputError(f"unknown preset(s) {unknown}; known presets: {', '.join(PRESETS)}")
    for name in names:
        models = {opt: model_status(m, args.models_dir) for opt, m in preset_models(name).items()}
        missing = [s for s in models.values() if not s["local"]]
        unknown_models = [s["name"] for s in missing if not s["known"]]
        downloads = [s for s in missing if s["known"]]
        total = sum(_mb(s["size_mb"]) or 0.0 for s in downloads)
        unsized = any(_mb(s["size_mb"]) is None for s in downloads)
        state = "available offline" if not missing else "not available offline:"
        if downloads:
            state += f" {len(downloads)} download(s)" + (f", ~{total:.0f} MB" if total else "")
            state += " (+ sizes not declared)" if unsized and total else ""
        if unknown_models:
            state += f" {len(unknown_models)} model(s) not in this version's zoo"
        print(f"{name}: {PRESETS[name]['description']}")
        print(f"  {state}")
        for opt, s in models.items():
            where = s["local"] or ("not in the model zoo" if not s["known"] else "not downloaded")
            print(f"  {opt:<10} {s['name']:<36} {_size_text(s['size_mb']):>10}  {where}")
        others = {k: v for k, v in preset_options(name).items() if k not in models}
        if others:
            print("  options: " + ", ".join(f"{k}={v!r}" for k, v in others.items()))
        print()
    return 0
