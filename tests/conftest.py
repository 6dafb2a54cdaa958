"""Shared test set-up.

FiftyOne is pointed at a private, temporary home before anything imports it:
its database, plugins and caches live under one temp dir per test session and
never touch the user's ``~/.fiftyone``. The database is a private ``mongod``
(the real one that ships with FiftyOne's database package) started here on a
free loopback port with a temporary data directory, so the tests can never
reach a FiftyOne database that is already running on the machine.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # test helpers (videos.py)

_FO_HOME = pathlib.Path(tempfile.mkdtemp(prefix="posetrack-tests-"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mongod_binary() -> pathlib.Path:
    """The mongod shipped with FiftyOne's database package (found without importing fiftyone)."""
    spec = importlib.util.find_spec("fiftyone")
    return pathlib.Path(spec.submodule_search_locations[0]) / "db" / "bin" / "mongod"


def start_mongod(root: pathlib.Path, timeout: float = 60.0) -> tuple[subprocess.Popen, int]:
    """Starts a private mongod on a free loopback port; returns ``(process, port)``."""
    port = free_port()
    (root / "db").mkdir(parents=True, exist_ok=True)
    log = open(root / "mongod.log", "wb")
    proc = subprocess.Popen(
        [str(mongod_binary()), "--dbpath", str(root / "db"), "--port", str(port), "--bind_ip", "127.0.0.1"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"mongod did not start: {(root / 'mongod.log').read_text()[-2000:]}")
            time.sleep(0.2)


def stop_mongod(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _cleanup(proc: subprocess.Popen) -> None:
    stop_mongod(proc)
    shutil.rmtree(_FO_HOME, ignore_errors=True)


_MONGOD, _PORT = start_mongod(_FO_HOME / "mongod")
atexit.register(_cleanup, _MONGOD)
os.environ["FIFTYONE_DATABASE_URI"] = f"mongodb://127.0.0.1:{_PORT}"
os.environ["FIFTYONE_DATABASE_DIR"] = str(_FO_HOME / "db")
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
os.environ.setdefault("FIFTYONE_DEFAULT_DATASET_DIR", str(_FO_HOME / "datasets"))
os.environ.setdefault("FIFTYONE_MODEL_ZOO_DIR", str(_FO_HOME / "models"))
os.environ.setdefault("FIFTYONE_PLUGINS_DIR", str(_FO_HOME / "plugins"))
os.environ.setdefault("FIFTYONE_OPERATOR_TIMEOUT", "600")
os.environ["POSETRACK_OFFLINE"] = "1"  # no test may download weights
os.environ["POSETRACK_CACHE"] = str(_FO_HOME / "posetrack-cache")
os.environ["XDG_CACHE_HOME"] = str(_FO_HOME / "cache")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    """The ``../shared`` data folder; skips the test when it is absent."""
    if not (SHARED / "README.md").is_file():
        pytest.skip(f"../shared is absent ({SHARED}); this test needs its real data or models")
    return SHARED


@pytest.fixture(scope="session")
def fo_home() -> pathlib.Path:
    """The private FiftyOne home of this test session."""
    return _FO_HOME
