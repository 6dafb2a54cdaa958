"""The wheel carries every subpackage and the FiftyOne plugin."""

import pathlib
import subprocess
import sys
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]


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
    packages = {str(p.parent.relative_to(REPO)) for p in (REPO / "fiftyone_posetrack").rglob("__init__.py")}
    assert {p for p in packages if f"{p}/__init__.py" not in names} == set()
