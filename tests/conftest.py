"""Shared test set-up.

FiftyOne is pointed at a private, temporary home before anything imports it:
its database, plugins and caches live under one temp dir per test session and
never touch the user's ``~/.fiftyone``. The real mongod that ships with
FiftyOne's database package is started on first use.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # test helpers (videos.py)

_FO_HOME = pathlib.Path(tempfile.mkdtemp(prefix="posetrack-tests-"))
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(_FO_HOME / "db"))
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
os.environ.setdefault("FIFTYONE_DEFAULT_DATASET_DIR", str(_FO_HOME / "datasets"))
os.environ.setdefault("FIFTYONE_MODEL_ZOO_DIR", str(_FO_HOME / "models"))
os.environ.setdefault("FIFTYONE_PLUGINS_DIR", str(_FO_HOME / "plugins"))
os.environ.setdefault("FIFTYONE_OPERATOR_TIMEOUT", "600")
os.environ["POSETRACK_OFFLINE"] = "1"  # no test may download weights
os.environ["POSETRACK_CACHE"] = str(_FO_HOME / "posetrack-cache")

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
