"""The plugin installs the way FiftyOne users install plugins: into a fresh venv holding only FiftyOne,
``fiftyone plugins requirements @posetrack/pose-tracking`` names what to install, pip installs it, and
the operators register.

A fresh venv (no system site-packages, not the test venv) gets the same FiftyOne as the test venv (the
user's premise: FiftyOne is installed), then the plugin folder as ``fiftyone plugins download`` leaves it
(the repository's files) in its own ``FIFTYONE_PLUGINS_DIR``. The requirement that names this repository
on GitHub (``... @ git+https://github.com/...``) is pointed at that downloaded folder instead (no GitHub
from tests); everything else comes from the package index. Several minutes: it installs torch and
FiftyOne's dependencies.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent


def _download_copy(dest: pathlib.Path) -> pathlib.Path:
    """The plugin folder as ``fiftyone plugins download`` leaves it: the repository's files."""
    if shutil.which("git") and (REPO / ".git").exists():
        out = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True,
        )  # fmt: skip
        files = [f for f in out.stdout.decode().split("\0") if f and (REPO / f).is_file()]
    else:
        files = [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file() and ".venv" not in p.parts]
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dest / f)
    return dest


@pytest.mark.slow
def test_fresh_venv_installs_the_plugin_requirements_and_the_operators_register(tmp_path, fo_home):
    import fiftyone as fo

    from fiftyone_posetrack.fo.plugin import PLUGIN_NAME

    plugins = tmp_path / "plugins"
    plugin = _download_copy(plugins / "fiftyone-posetrack")
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(FIFTYONE_PLUGINS_DIR=str(plugins), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_COMPILE="1")
    constraints = tmp_path / "constraints.txt"
    # the test venv's FiftyOne (same database version as this session's mongod) and torch pin
    constraints.write_text((REPO / "scripts" / "constraints.txt").read_text() + f"fiftyone=={fo.__version__}\n")
    pip = [str(python), "-m", "pip", "install", "-q", "-c", str(constraints)]

    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, cwd=tmp_path)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    subprocess.run(pip + [f"fiftyone=={fo.__version__}"], check=True, env=env, cwd=tmp_path, timeout=1800)

    fiftyone = str(venv / "bin" / "fiftyone")
    printed = subprocess.run(
        [fiftyone, "plugins", "requirements", PLUGIN_NAME, "--print"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr[-3000:]
    requirements = [line.strip() for line in printed.stdout.splitlines() if line.strip()]
    manifest = yaml.safe_load((REPO / "fiftyone.yml").read_text())
    ours = [r for r in requirements if r.startswith("fiftyone-posetrack")]
    assert ours == [f"fiftyone-posetrack[onnx,lite,reid] @ git+{manifest['url']}"], requirements
    # the downloaded folder stands in for the repository on GitHub
    local = [re.sub(r" @ git\+\S+$", f" @ {plugin.as_uri()}", r) for r in requirements]
    subprocess.run(pip + local, check=True, env=env, cwd=tmp_path, timeout=1800)
    installed = time.monotonic() - start

    where = subprocess.run(
        [str(python), "-c", "import fiftyone_posetrack, lap, motmetrics, onnxruntime; print(fiftyone_posetrack.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr[-3000:]
    assert pathlib.Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the installed package

    listed = subprocess.run(
        [fiftyone, "operators", "list"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    for name in manifest["operators"]:
        assert f"{PLUGIN_NAME}/{name}" in listed.stdout, (name, listed.stdout[-3000:], listed.stderr[-3000:])
    print(f"fresh venv: FiftyOne + the plugin's requirements installed in {installed:.0f} s")
