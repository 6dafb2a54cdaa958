"""``posetrack plugin``: where the FiftyOne plugin is, and registering it."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plugin",
        help="show or register the FiftyOne plugin (@posetrack/pose-tracking)",
        description="Prints the plugin folder, or links it into FIFTYONE_PLUGINS_DIR.",
    )
    sub = parser.add_subparsers(dest="plugin_command", metavar="ACTION")
    sub.required = True
    path = sub.add_parser("path", help="print the folder holding fiftyone.yml")
    path.set_defaults(func=_path)
    install = sub.add_parser("install", help="symlink the plugin into the FiftyOne plugins dir")
    install.add_argument("--plugins-dir", help="default: FIFTYONE_PLUGINS_DIR / fo.config.plugins_dir")
    install.add_argument("--overwrite", action="store_true", help="replace an existing link")
    install.set_defaults(func=_install)


def _path(args) -> int:
    from fiftyone_posetrack.fo.plugin import plugin_dir

    print(plugin_dir())
    return 0


def _install(args) -> int:
    from fiftyone_posetrack.fo.plugin import install_plugin

    link = install_plugin(args.plugins_dir, overwrite=args.overwrite)
    print(f"linked {link} -> {link.resolve()}")
    return 0
