"""The documentation: the README is one screen whose links resolve and whose quick start runs, and the
MkDocs site builds with ``--strict`` with its option, preset, model and CLI pages generated from the code."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import html
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
README = REPO / "README.md"

needs_mkdocs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs extra is not installed (pip install -e '.[docs]'; bash scripts/dev.sh test installs it)",
)


def _gen_pages():
    """The docs' MkDocs hook module (docs/gen_pages.py)."""
    spec = importlib.util.spec_from_file_location("gen_pages", REPO / "docs" / "gen_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(html_text: str) -> str:
    """The visible text of a page, whitespace collapsed (tags dropped, entities decoded)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", html_text)))


def _plain(text: str) -> str:
    """Markdown source text as it reads on the page: code-span backticks dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", text.replace("`", ""))


def _subcommands(parser: argparse.ArgumentParser, prefix="posetrack") -> list[str]:
    names = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                names.append(f"{prefix} {name}")
                names += _subcommands(sub, f"{prefix} {name}")
    return names


# ----------------------------------------------------------------------------- the README


def test_readme_is_one_screen_with_the_two_commands_first():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    first_block = README.read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["bash scripts/dev.sh demo", "bash scripts/dev.sh test"]


def _slug(heading: str) -> str:
    """GitHub's and MkDocs' anchor of a Markdown heading."""
    text = re.sub(r"[`*_\[\]()]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: pathlib.Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_every_readme_link_resolves():
    text = README.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert len(links) >= 20
    for target in links:
        if re.match(r"https?://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (REPO / path) if path else README
        assert file.exists(), f"README link {target!r}: no file {file}"
        if anchor:
            assert anchor in _anchors(file), f"README link {target!r}: no heading #{anchor} in {path or 'README.md'}"


def _quick_start() -> str:
    block = README.read_text().split("## Quick start on your own videos", 1)[1].split("```python\n", 1)[1]
    return block.split("```", 1)[0]


def test_readme_quick_start_is_ten_lines_of_the_real_api():
    code = _quick_start()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    tree = ast.parse(code)
    import fiftyone_posetrack as fpt
    from fiftyone_posetrack.pipeline.options import OPTIONS

    # PipelineConfig(...) keywords are options of the schema; run() and the helpers exist
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    configs = [c for c in calls if c.func.attr == "PipelineConfig"]
    assert configs and all(k.arg in OPTIONS for c in configs for k in c.keywords)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = __import__(node.module, fromlist=[a.name for a in node.names])
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
    assert callable(fpt.run) and callable(fpt.PipelineConfig)


@pytest.mark.slow
def test_readme_quick_start_runs_on_a_video(shared_dir, tmp_path, monkeypatch):
    """The README's snippet itself, on a small synthetic crowd, with the shared models (no download)."""
    import fiftyone as fo

    from fiftyone_posetrack.synth import render_crowd

    monkeypatch.setenv("POSETRACK_MODELS_DIR", str(shared_dir / "models"))
    monkeypatch.setenv("POSETRACK_OFFLINE", "1")
    videos = tmp_path / "videos"
    render_crowd(videos / "crowd", people=3, frames=10, width=320, height=192, seed=2)
    code = _quick_start().replace("/path/to/videos", str(videos)).replace('"my-videos"', '"docs-quick-start"')
    code = "\n".join(line for line in code.splitlines() if "launch_app" not in line)  # no App server in a test
    scope: dict = {}
    try:
        exec(compile(code, "README.md quick start", "exec"), scope)
        dataset, summary = scope["dataset"], scope["summary"]
        assert len(summary.processed) == 1 and not summary.failed
        assert summary.timings["detection"] > 0 and summary.timings["pose"] > 0
        frames = dataset.first().frames
        assert len(frames) == 10
        boxes = [d for f in frames.values() for d in f["pred_detections"].detections]
        poses = [k for f in frames.values() for k in f["pred_keypoints"].keypoints]
        assert boxes and len(poses) == len(boxes)
        assert {d.index for d in boxes} == {k.index for k in poses}
    finally:
        if fo.dataset_exists("docs-quick-start"):
            fo.delete_dataset("docs-quick-start")


def test_plugin_requirements_name_the_package_from_this_repository():
    import tomllib

    import yaml

    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    reqs = [line for line in lines if line]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    url = yaml.safe_load((REPO / "fiftyone.yml").read_text())["url"]
    assert reqs == [f"{project['name']}[onnx,lite,reid] @ git+{url}"]
    extras = set(project["optional-dependencies"])
    assert {"onnx", "lite", "reid", "docs"} <= extras


# ----------------------------------------------------------------------------- the generated pages


def test_changing_an_options_help_text_changes_the_generated_page(monkeypatch):
    from fiftyone_posetrack.pipeline import options

    gen = _gen_pages()
    page = (REPO / "docs" / "pipeline.md").read_text()
    assert "<!-- gen:options -->" in page
    before = gen.expand(page)
    assert options.OPTIONS["box_alpha"].help in before
    new_help = "weight of the detected box against the flow-propagated one (a test's new words)"
    monkeypatch.setitem(options.OPTIONS, "box_alpha", dataclasses.replace(options.OPTIONS["box_alpha"], help=new_help))
    after = gen.expand(page)
    assert new_help in after and new_help not in before
    with pytest.raises(ValueError, match="unknown generated part 'nope'"):
        gen.expand("<!-- gen:nope -->")


@needs_mkdocs
@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    """``mkdocs build --strict`` (broken links and anchors, missing pages fail); the generated pages hold
    the code's current option help texts, presets, models and every CLI subcommand."""
    from fiftyone_posetrack.cli import build_parser
    from fiftyone_posetrack.models import MODELS
    from fiftyone_posetrack.pipeline.options import JOB_OPTIONS, OPTIONS
    from fiftyone_posetrack.presets import PRESETS

    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (REPO / "docs" / "img" / "generated").exists()  # generated in memory, never committed

    options_page = _text((site / "pipeline" / "index.html").read_text())
    for o in list(OPTIONS.values()) + list(JOB_OPTIONS.values()):
        assert _plain(o.help) in options_page, o.name
        assert o.name in options_page
    presets_page = _text((site / "presets" / "index.html").read_text())
    for name, preset in PRESETS.items():
        assert _plain(preset["description"]) in presets_page, name
    for name in MODELS:
        assert name in presets_page, name
    cli_page = _text((site / "cli" / "index.html").read_text())
    commands = _subcommands(build_parser())
    assert {"posetrack run", "posetrack demo", "posetrack plugin install"} <= set(commands)
    for command in commands:
        assert command in cli_page, command
    api_page = _text((site / "api" / "running" / "index.html").read_text())
    assert "Runs pose tracking over the videos of a collection and writes frame labels" in api_page
    for chart in ("detection_sizes.png", "demo_stages.png"):
        assert (site / "img" / "generated" / chart).stat().st_size > 10_000, chart
    assert (site / "bad-input" / "index.html").exists() and (site / "tracking" / "index.html").exists()


_CONFLICT = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)


def _conflicted(paths, root: pathlib.Path = REPO) -> list[str]:
    """``path:line`` (relative to ``root``) of every merge-conflict marker line in ``paths``."""
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(root)
        found += [f"{where}:{text.count(chr(10), 0, m.start()) + 1}" for m in _CONFLICT.finditer(text)]
    return found


def test_no_merge_conflict_markers_in_the_tracked_text_files():
    """A merge left ``<<<<<<< HEAD`` / ``=======`` / ``>>>>>>> ray`` in docs/scaleout.md once, and it was
    published as the page's first lines (mkdocs renders the markers as text)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    suffixes = {".md", ".py", ".yml", ".yaml", ".toml", ".sh", ".json", ".txt", ".cfg", ".ini"}
    paths = [REPO / p for p in tracked.splitlines() if pathlib.Path(p).suffix in suffixes and (REPO / p).is_file()]
    assert len(paths) > 50, "git ls-files listed too few files to check"
    assert _conflicted(paths) == []


def test_the_conflict_marker_check_finds_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\n| a | b |\n|===|\n")
    assert _conflicted([page], tmp_path) == [f"page.md:{n}" for n in (2, 4, 6)]
