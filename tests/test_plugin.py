"""The FiftyOne plugin loads from the checkout and runs its operators on a real dataset."""

import os
import subprocess
import sys

import pytest

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.plugins as fop
from fiftyone.operators.executor import ExecutionError

from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin, plugin_dir
from videos import make_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def plugin(fo_home):
    link = install_plugin(fo.config.plugins_dir)
    assert link.resolve() == plugin_dir()
    return link


def test_plugin_is_listed(plugin):
    names = [p.name for p in fop.list_plugins()]
    assert PLUGIN_NAME in names


def test_every_operator_in_the_manifest_registers(plugin):
    import yaml

    with open(os.path.join(REPO, "fiftyone.yml")) as f:
        manifest = yaml.safe_load(f)
    registered = {op.uri for op in foo.list_operators() if op.plugin_name == PLUGIN_NAME}
    listed = manifest["operators"] + manifest.get("panels", [])  # panels are operators too
    assert registered == {f"{PLUGIN_NAME}/{name}" for name in listed}


def test_import_videos_operator(plugin, tmp_path):
    make_video(tmp_path / "a.mp4", frames=8)
    (tmp_path / "sub").mkdir()
    make_video(tmp_path / "sub" / "b.mp4", frames=5)
    ds = fo.Dataset("plugin-import", persistent=True)
    try:
        result = foo.execute_operator(
            f"{PLUGIN_NAME}/import_videos", ctx={"dataset": ds.name, "params": {"path": str(tmp_path)}}
        )
        assert result.error is None, result.error
        assert result.result == {"num_videos": 2, "num_added": 2}
        ds.reload()
        assert sorted(ds.values("metadata.total_frame_count")) == [5, 8]
        with pytest.raises(ExecutionError, match="no such file or directory: .*missing"):
            foo.execute_operator(
                f"{PLUGIN_NAME}/import_videos",
                ctx={"dataset": ds.name, "params": {"path": str(tmp_path / "missing")}},
            )
        assert len(ds) == 2
    finally:
        ds.delete()


def test_cli_lists_the_plugin(plugin):
    fiftyone_cli = os.path.join(os.path.dirname(sys.executable), "fiftyone")
    out = subprocess.run([fiftyone_cli, "operators", "list"], capture_output=True, text=True)
    assert f"{PLUGIN_NAME}/import_videos" in out.stdout, out.stderr[-2000:]
