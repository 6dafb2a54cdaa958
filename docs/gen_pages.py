"""MkDocs hook: the generated parts of the docs, computed from the code at every build.

A page asks for a generated part with a marker line ``<!-- gen:NAME -->``; the
hook replaces it, at build time, with Markdown computed from the code:

- ``options``: every pipeline option, by group, from the one option schema
  (:data:`fiftyone_posetrack.pipeline.options.OPTIONS` and ``JOB_OPTIONS``):
  its CLI flag, the values it takes, its default and its help text;
- ``tracker-params``: each tracker's parameters (``PARAMS`` and the
  constructor's defaults);
- ``presets``: :data:`fiftyone_posetrack.presets.PRESETS`;
- ``models``: the model zoo, :data:`fiftyone_posetrack.models.MODELS`;
- ``cli``: every ``posetrack`` subcommand's ``--help``, from the argparse parsers;
- ``chart-detection``, ``chart-stages``: charts (matplotlib, added to the site in
  memory) of the detection benchmark's recorded numbers and of the demo's time per stage.

Nothing generated is committed, so nothing generated can be stale: changing an
option's help text changes the page. An unknown marker fails the build.
Declared in ``mkdocs.yml`` (``hooks:``); the file itself is excluded from the
site (``exclude_docs``).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's package, not an installed copy
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- gen:([a-z0-9-]+) -->$", re.M)


def _cell(value) -> str:
    """Text for a Markdown table cell: pipes and newlines escaped, and outside `code` spans the
    characters Markdown would read as emphasis or HTML (``a*J + a*J`` stays a formula)."""
    parts = str(value).replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside code spans
        parts[i] = re.sub(r"([*_\\])", r"\\\1", parts[i]).replace("<", "&lt;")
    return "`".join(parts).replace("|", "\\|")


def _code(value) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return "`" + text.replace("`", "'").replace("\n", " ").replace("|", "\\|") + "`"


def _default(value) -> str:
    if value is None or value == "" or value == () or value == []:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"`{k}={v!r}`" for k, v in value.items()) or "`{}`"
    if isinstance(value, tuple):
        return "`" + " ".join(str(v) for v in value) + "`"
    return _code(value if isinstance(value, str) else repr(value))


def _values(option) -> str:
    if option.choices:
        return "<br>".join(f"`{k}`: {_cell(v)}" for k, v in option.choices.items())
    return _cell(option.spec.describe())


def gen_options() -> str:
    from fiftyone_posetrack.pipeline.options import GROUPS, JOB_OPTIONS, OPTIONS

    out = []
    for group, label in GROUPS.items():
        rows = [o for o in OPTIONS.values() if o.group == group]
        if not rows:
            continue
        out += [f"### {label}", "", "| option | CLI flag | values | default | what |", "| --- | --- | --- | --- | --- |"]
        for o in rows:
            out.append(
                f"| `{o.name}` | `{o.cli_flag}` | {_values(o)} | {_default(o.default)} | {_cell(o.help)} |"
            )
        out.append("")
    out += [
        "### Job options",
        "",
        "Options of a run that are not part of the configuration (`fiftyone_posetrack.fo.run.run(...)` "
        "keyword arguments, run-operator fields; `--flush-frames` / `--stale-after` on the CLI).",
        "",
        "| option | values | default | what |",
        "| --- | --- | --- | --- |",
    ]
    for o in JOB_OPTIONS.values():
        out.append(f"| `{o.name}` | {_values(o)} | {_default(o.default)} | {_cell(o.help)} |")
    return "\n".join(out) + "\n"


def gen_tracker_params() -> str:
    from fiftyone_posetrack.tracking.base import _REGISTRY, available_trackers, tracker_params

    out = []
    for name in available_trackers():
        cls = _REGISTRY[name]
        defaults = tracker_params(name)
        out += [f"#### `{name}`: {_cell(cls.label)}", "", "| parameter | values | default |", "| --- | --- | --- |"]
        for key, spec in cls.PARAMS.items():
            out.append(f"| `{key}` | {_cell(spec.describe())} | {_default(defaults.get(key))} |")
        out.append("")
    return "\n".join(out)


def gen_presets() -> str:
    from fiftyone_posetrack.presets import PRESETS

    out = ["| preset | description | options it sets |", "| --- | --- | --- |"]
    for name, preset in PRESETS.items():
        options = "<br>".join(f"`{k}` = {_default(v)}" for k, v in preset["options"].items())
        out.append(f"| `{name}` | {_cell(preset['description'])} | {options} |")
    return "\n".join(out) + "\n"


def gen_models() -> str:
    from fiftyone_posetrack.models import MODELS

    out = [
        "| name | kind | backend | size (MB) | licence | what | download |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in sorted(MODELS.values(), key=lambda m: ("detector", "pose", "reid").index(m.kind)):
        source = "manual (conversion needed)" if m.manual else f"[{urllib.parse.urlsplit(m.url).netloc}]({m.url})"
        out.append(
            f"| `{m.name}` | {m.kind} | `{m.backend}` | {m.size_mb:g} | {_cell(m.license)} | "
            f"{_cell(m.description)} | {source} |"
        )
    return "\n".join(out) + "\n"


def _subcommands(parser: argparse.ArgumentParser, prefix: str):
    """``(name, parser)`` of every subcommand, nested ones included, in order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subcommands(sub, f"{prefix} {name}")


def cli_commands() -> list[str]:
    """The names of every ``posetrack`` subcommand (``posetrack run``, ``posetrack plugin install``...)."""
    from fiftyone_posetrack.cli import build_parser

    return [name for name, _ in _subcommands(build_parser(), "posetrack")]


def gen_cli() -> str:
    from fiftyone_posetrack.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width: the same page everywhere
    parser = build_parser()
    out = ["```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in _subcommands(parser, "posetrack"):
        out += [f"### `{name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


_CHARTS: dict[str, bytes] = {}


def gen_chart_detection() -> str:
    """RTMDet-nano recall / precision / time per input size on the MOT17 frames (the numbers recorded in
    crowds.md, measured by ``bench/bench_detection.py --heldout``)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = ["320", "640", "960", "1280", "tiles 640\n@320 NMS", "tiles 640\n@320 WBF", "tiles 640\n@640"]
    recall = [0.258, 0.580, 0.671, 0.655, 0.663, 0.661, 0.665]
    precision = [0.706, 0.719, 0.729, 0.684, 0.700, 0.695, 0.625]
    time_x = [1.00, 2.84, 6.51, 10.79, 6.03, 6.78, 24.34]
    fig, ax = plt.subplots(figsize=(8, 3.4), dpi=110)
    xs = range(len(configs))
    ax.bar([x - 0.2 for x in xs], recall, width=0.4, label="recall")
    ax.bar([x + 0.2 for x in xs], precision, width=0.4, label="precision")
    ax.set_xticks(list(xs), configs, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("COMBINED, IoU 0.5")
    ax2 = ax.twinx()
    ax2.plot(list(xs), time_x, "k.-", label="time vs 320")
    ax2.set_ylabel("time vs 320 (x)")
    fig.legend(loc="upper left", bbox_to_anchor=(0.08, 0.95), fontsize=8)
    ax.set_title("RTMDet-nano on 22 MOT17 frames, per input size / tiling", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    _CHARTS["img/generated/detection_sizes.png"] = buf.getvalue()
    return (
        "![RTMDet-nano recall and precision per input size](img/generated/detection_sizes.png)\n\n"
        "(Generated at build time by `docs/gen_pages.py` from the numbers of the table below.)\n"
    )


def gen_chart_stages() -> str:
    """Seconds per stage of the demo (the ``cpu`` preset, 8 people, 60 frames; the output recorded in
    getting-started.md, measured from a fresh clone at commit 423ac62)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = {
        "reid": 1.01, "pose": 0.96, "detection": 0.58, "box_smoothing": 0.14, "pose_smoothing": 0.11,
        "write": 0.06, "tracking": 0.04, "track_postprocess": 0.00,
    }  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 2.8), dpi=110)
    names = list(stages)[::-1]
    ax.barh(names, [stages[n] for n in names], color="#e8590c")
    for i, n in enumerate(names):
        ax.text(stages[n] + 0.01, i, f"{stages[n]:.2f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds for 60 frames (2.91 s in all: 20.6 frames/s, 2 CPU cores)")
    ax.set_title("Time per stage: the demo, preset cpu", fontsize=10)
    ax.set_xlim(0, 1.25)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    _CHARTS["img/generated/demo_stages.png"] = buf.getvalue()
    return (
        "![Seconds per stage of the demo](img/generated/demo_stages.png)\n\n"
        "(Generated at build time by `docs/gen_pages.py` from the demo output in [Getting started](getting-started.md#the-demo).)\n"
    )


GENERATORS = {
    "options": gen_options,
    "tracker-params": gen_tracker_params,
    "presets": gen_presets,
    "models": gen_models,
    "cli": gen_cli,
    "chart-detection": gen_chart_detection,
    "chart-stages": gen_chart_stages,
}


def expand(markdown: str, where: str = "page") -> str:
    """``markdown`` with every ``<!-- gen:NAME -->`` marker replaced by its generated Markdown."""

    def one(match):
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{where}: unknown generated part {name!r}; known: {sorted(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(one, markdown)


# ----------------------------------------------------------------------------- MkDocs events


def on_page_markdown(markdown, page, config, files):
    return expand(markdown, page.file.src_uri)


def on_files(files, config):
    """Adds the generated charts to the site (in memory: nothing is written into docs/)."""
    from mkdocs.structure.files import File

    gen_chart_detection()
    gen_chart_stages()
    for rel, data in _CHARTS.items():
        files.append(File.generated(config, rel, content=data))
    return files


_SPHINX_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):(?=<code)")


def on_page_content(html, page, config, files):
    """Drops the Sphinx roles (``:func:``, ``:class:``...) of the docstrings from the API pages: their
    targets already render as code."""
    return _SPHINX_ROLE.sub("", html)
