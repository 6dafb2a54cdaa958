"""The tracking suite bench against the numbers docs/tracking.md reports for the ``track-mot`` default.

The two cheap benchmarks (MOT17 half-val, TUD: a few seconds) are re-run; the default's cells
must be the ones the docs' suite table shows (and ``--per-sequence`` lists each sequence), so a change of the default (or of the trackers)
that is not re-measured and re-documented fails here.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def _default_row(text: str, header_at: int) -> dict[str, str]:
    """``{benchmark: cell}`` of the ``| default |`` row of the table that starts at ``header_at``."""
    lines = text[header_at:].splitlines()
    names = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "default":
            return dict(zip(names, cells[1:]))
    raise AssertionError("no '| default |' row")


def test_suite_default_row_is_the_documented_one(shared_dir):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_tracking_suite.py"), "--jobs", "1", "--no-loso",
         "--benchmarks", "mot17,tud", "--configs", "default", "--per-sequence"],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    measured = _default_row(out, out.index("| config |"))
    assert set(measured) == {"mot17", "tud"}
    assert all(re.fullmatch(r"\d+\.\d / -?\d+\.\d / \d+\.\d / \d+", c) for c in measured.values()), measured

    # --per-sequence: one HOTA per sequence; the default against itself is 0 / 0
    tud = _default_row(out, out.index("| config | TUD-Campus"))
    assert set(tud) == {"TUD-Campus", "TUD-Stadtmitte", "+/-"} and tud["+/-"] == "0 / 0"
    assert all(0 < float(tud[s]) < 100 for s in ("TUD-Campus", "TUD-Stadtmitte"))

    doc = (REPO / "docs" / "tracking.md").read_text()
    suite = doc.index("## The suite")
    documented = _default_row(doc, doc.index("| config |", suite))
    assert {b: documented[b] for b in measured} == measured
