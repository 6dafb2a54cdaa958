"""``posetrack models``: the model zoo, and where each model is found locally."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the named pretrained models and where each is found locally",
        description=(
            "Lists the model zoo: name, kind, backend, approximate download size, licence and where "
            "the model is found locally (--models-dir, $POSETRACK_MODELS_DIR, the cache), or "
            "'not downloaded' with its official URL. Works offline; downloads nothing."
        ),
    )
    p.add_argument("--models-dir", default=None, help="local folder of named models (<dir>/<name>/<file>)")
    p.add_argument("--kind", choices=("detector", "pose", "reid"), help="only this kind of model")
    p.add_argument("--names", action="store_true", help="print the names only, one per line")
    p.set_defaults(func=_models)


def _location(info, models_dir) -> str:
    from fiftyone_posetrack.models import find_model, mm_config_path

    path = find_model(info.name, models_dir)
    where = str(path) if path else f"not downloaded: {info.url}"
    if info.package:
        try:
            mm_config_path(info)
        except (ValueError, FileNotFoundError):
            where += f"  (config {info.config} needs the {info.package} package)"
    return where


def _models(args) -> int:
    from fiftyone_posetrack.models import MODELS

    models = [m for m in MODELS.values() if not args.kind or m.kind == args.kind]
    if args.names:
        print("\n".join(m.name for m in models))
        return 0
    rows = [(m.name, m.kind, m.backend, f"{m.size_mb:g} MB", m.license, _location(m, args.models_dir)) for m in models]
    header = ("name", "kind", "backend", "size", "licence", "where")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row[:5], widths)) + "  " + row[5])
    print()
    for m in models:
        print(f"{m.name}: {m.description}")
    return 0
