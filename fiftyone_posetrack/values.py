"""Typed value declarations: parse and range-check a value once, with errors naming it.

A :class:`ValueSpec` states what one value may be (its type, range, choices,
whether ``None`` is allowed); :func:`check_value` accepts or refuses a value
against it. The pipeline's options (:mod:`fiftyone_posetrack.pipeline.options`)
and the trackers' parameter tables (``PARAMS`` next to each tracker class) are
built from it, so Python, the CLI and the operators check numbers the same way:

- numbers must be numbers: strings (``"0.5"``) and booleans are refused; NaN
  and inf are refused everywhere;
- ``int`` values must be integral (``3.0`` is accepted as ``3``, ``2.5`` is not);
- ranges are inclusive unless ``lo_open`` / ``hi_open``.

FiftyOne-free, so it is testable without a database.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any

from fiftyone_posetrack.types import BadInputError

__all__ = ["ValueSpec", "check_value", "check_field_name", "FIELD_NAME", "RESERVED_FIELDS"]

#: what a FiftyOne field name written by this package may be (``_``-prefixed names are FiftyOne's own)
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: names FiftyOne gives samples and frames of a video dataset, or the samples of its frames views
#: (``to_frames()``): an output field of that name would replace or shadow them
RESERVED_FIELDS = frozenset(
    {"id", "filepath", "tags", "metadata", "media_type", "created_at", "last_modified_at", "frames",
     "frame_number", "frame_id", "sample_id", "dataset_id", "group", "support"}
)  # fmt: skip


def check_field_name(name, what: str) -> str:
    """Refuses a frame field name this package may not write: not letters, digits and underscores
    starting with a letter (``"a.b"`` is an embedded field, ``"_x"`` FiftyOne's own), or one of
    :data:`RESERVED_FIELDS`; the error names ``what`` and the field."""
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        raise BadInputError(
            f"{what}: {name!r} is not a field name this package writes: expected letters, digits and "
            "underscores, starting with a letter (no '.', which names an embedded field, no leading '_')"
        )
    if name in RESERVED_FIELDS:
        raise BadInputError(
            f"{what}: {name!r} is a field FiftyOne reserves for samples or frames ({', '.join(sorted(RESERVED_FIELDS))}); "
            "choose another output field"
        )
    return name

_TYPES = ("int", "float", "bool", "str", "field", "fields", "floats", "dict")


@dataclass(frozen=True)
class ValueSpec:
    """What a value may be.

    Attributes:
        type: ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"field"`` (a
            field name: letters, digits and underscores, starting with a
            letter), ``"fields"`` (a list of such names, as a tuple), ``"floats"``
            (a fixed-length tuple of floats) or
            ``"dict"`` (a mapping with string keys)
        lo: least value (numbers; each element for ``"floats"``)
        hi: largest value
        lo_open: ``lo`` itself is excluded
        hi_open: ``hi`` itself is excluded
        choices: the allowed values (strings)
        pattern: a regular expression a string must match in full
        pattern_help: what ``pattern`` means, for the error message
        nullable: ``None`` is allowed
        length: number of elements of a ``"floats"`` value
    """

    type: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    pattern: str | None = None
    pattern_help: str | None = None
    nullable: bool = False
    length: int | None = None

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"ValueSpec.type: expected one of {_TYPES}, got {self.type!r}")

    def describe(self) -> str:
        """What is expected, in words (used in error messages)."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.type in ("int", "float", "floats"):
            noun = {"int": "an integer", "float": "a finite number"}.get(
                self.type, f"{self.length or 'one or more'} finite numbers"
            )
            text = noun + self._range_text()
        elif self.type == "bool":
            text = "true or false"
        elif self.type == "field":
            text = "a field name (letters, digits, underscores; starting with a letter)"
        elif self.type == "fields":
            text = "a list of field names (letters, digits, underscores; each starting with a letter)"
        elif self.type == "dict":
            text = "a mapping of names to values"
        else:
            text = self.pattern_help or "a non-empty string"
        return text + (" or None" if self.nullable else "")

    def _range_text(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {_num(self.lo)}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {_num(self.hi)}")
        return (" " + " and ".join(parts)) if parts else ""


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_value(spec: ValueSpec, value: Any, what: str) -> Any:
    """Returns ``value`` normalised (``int``, ``float``, ``tuple``...) or raises.

    Args:
        spec: what the value may be
        value: the value
        what: how the error names it (e.g. ``"config.box_alpha"``, ``"--box-alpha"``)

    Raises:
        BadInputError: ``"{what}: expected ..., got ..."``
    """

    def bad(detail=""):
        raise BadInputError(f"{what}: expected {spec.describe()}, got {value!r}{detail}")

    if value is None:
        if spec.nullable:
            return None
        bad()
    t = spec.type
    if t == "bool":
        if not isinstance(value, bool):
            bad()
        return value
    if t in ("int", "float"):
        out = _check_number(spec, value, bad)
        return out
    if t == "floats":
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
            bad()
        items = list(value)
        if len(items) != (spec.length or max(len(items), 1)):  # no length: at least one
            bad()
        return tuple(_check_number(spec, v, bad) for v in items)
    if t == "fields":
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
            bad()
        items = tuple(value)
        if not all(isinstance(v, str) and FIELD_NAME.match(v) for v in items):
            bad()
        return tuple(dict.fromkeys(items))
    if t == "dict":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            bad()
        return dict(value)
    # strings
    if not isinstance(value, str) or not value.strip():
        bad()
    if spec.choices is not None and value not in spec.choices:
        bad()
    if t == "field":
        if not FIELD_NAME.match(value):
            bad()
        check_field_name(value, what)
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        bad()
    return value


def _check_number(spec: ValueSpec, value, bad):
    if not _is_number(value) or not math.isfinite(float(value)):
        bad()
    if spec.type == "int":
        if float(value) != int(value):
            bad()
        value = int(value)
    else:
        value = float(value)
    if spec.lo is not None and (value < spec.lo or (spec.lo_open and value == spec.lo)):
        bad()
    if spec.hi is not None and (value > spec.hi or (spec.hi_open and value == spec.hi)):
        bad()
    return value
