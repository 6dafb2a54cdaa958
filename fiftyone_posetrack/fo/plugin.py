"""Locating and registering the FiftyOne plugin (``fiftyone.yml`` + ``operators/``).

In a source checkout the plugin is the repository root. An installed wheel carries
a copy at ``fiftyone_posetrack/plugin``. Either way FiftyOne finds it through
``FIFTYONE_PLUGINS_DIR`` (searched recursively, following symlinks), so
registering it is one symlink in that directory.
"""

from __future__ import annotations

import os
import pathlib

from fiftyone_posetrack.types import BadInputError

PLUGIN_NAME = "@posetrack/pose-tracking"
LINK_NAME = "posetrack-pose-tracking"


def plugin_dir() -> pathlib.Path:
    """Returns the folder holding the plugin's ``fiftyone.yml``."""
    package = pathlib.Path(__file__).resolve().parents[1]
    for candidate in (package.parent, package / "plugin"):
        if (candidate / "fiftyone.yml").is_file() and (candidate / "operators" / "__init__.py").is_file():
            return candidate
    raise BadInputError(f"the plugin files (fiftyone.yml, operators/) are missing from {package}")


def install_plugin(plugins_dir: str | os.PathLike | None = None, overwrite: bool = False) -> pathlib.Path:
    """Links the plugin into a FiftyOne plugins directory.

    Args:
        plugins_dir: the directory; default ``fo.config.plugins_dir``
            (``FIFTYONE_PLUGINS_DIR``)
        overwrite: replace an existing entry of the same name

    Returns:
        the created link
    """
    if plugins_dir is None:
        import fiftyone as fo

        plugins_dir = fo.config.plugins_dir
    if not plugins_dir:
        raise BadInputError("no FiftyOne plugins directory: set FIFTYONE_PLUGINS_DIR or pass --plugins-dir")
    plugins_dir = pathlib.Path(plugins_dir).expanduser()
    plugins_dir.mkdir(parents=True, exist_ok=True)
    link = plugins_dir / LINK_NAME
    target = plugin_dir()
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == target:
            return link
        if not overwrite:
            raise BadInputError(f"{link} exists; pass --overwrite to replace it")
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            raise BadInputError(f"{link} is a directory; remove it yourself")
    link.symlink_to(target, target_is_directory=True)
    return link
