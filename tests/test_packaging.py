"""The wheel carries every subpackage and the FiftyOne plugin."""

import pathlib
import subprocess
import sys
import tomllib
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "fiftyone_posetrack").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.slow
def test_wheel_contains_the_plugin(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fiftyone_posetrack/plugin/fiftyone.yml" in names
    assert "fiftyone_posetrack/plugin/operators/__init__.py" in names
    ops = {p.name for p in (REPO / "operators").glob("*.py")}
    assert {n.rsplit("/", 1)[1] for n in names if n.startswith("fiftyone_posetrack/plugin/operators/")} == ops
