"""The ``posetrack`` command line.

Each module of this package adds its subcommands through a
``register(subparsers)`` function; handlers import heavy dependencies lazily so
that ``posetrack --help`` stays fast. A handler signals bad input by raising
:class:`fiftyone_posetrack.types.BadInputError` (or ``FileNotFoundError``):
it is printed as ``posetrack: error: ...`` with exit status 2, never as a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from fiftyone_posetrack.types import BadInputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posetrack",
        description="Multi-person pose tracking for FiftyOne video datasets.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # __main__ and private helpers
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (BadInputError, FileNotFoundError, NotADirectoryError) as e:
        print(f"posetrack: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("posetrack: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
