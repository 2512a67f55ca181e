"""Options and output helpers shared by every command module."""

from __future__ import annotations

import functools
import json
import logging
import math
import numbers
import sys

import click

from ..errors import TwinMeError
from ..logs import configure as configure_logging  # noqa: F401

_state = {"json": False, "exit_code": 0}


def workspace_option(func):
    """Add ``--workspace DIR``; the value is passed on as ``workspace``."""
    return click.option(
        "--workspace",
        "workspace",
        type=click.Path(file_okay=False),
        default=None,
        help="Workspace folder. Default: $TWINME_WORKSPACE, else data/workspace.",
    )(func)


def json_option(func):
    """Add ``--json``: print one JSON object instead of text."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @functools.wraps(func)
    def wrapper(*args, as_json: bool = False, **kwargs):
        _state["json"] = as_json
        return func(*args, **kwargs)

    return wrapper


def wants_json() -> bool:
    return _state["json"]


def emit(data: dict | list, text: str | None = None) -> None:
    """Print ``data`` as JSON under ``--json``, else ``text`` (or a plain dump)."""
    if _state["json"]:
        click.echo(to_json(data, sort_keys=True))
    elif text is not None:
        click.echo(text)
    else:
        click.echo(to_json(data))


def to_json(data, sort_keys: bool = False) -> str:
    """Serialize ``data`` as strict JSON, with NaN and infinities as null.

    Python's json module would write them as the bare words NaN and Infinity,
    which strict JSON parsers reject. NumPy numbers become Python numbers, and
    any other value that JSON has no type for is written as its ``str()``.
    """
    return json.dumps(
        _non_finite_to_none(data),
        indent=2,
        sort_keys=sort_keys,
        default=_json_default,
        allow_nan=False,
    )


def _non_finite_to_none(value):
    """Return ``value`` with every non-finite float in it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _non_finite_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_non_finite_to_none(item) for item in value]
    return value


def _json_default(value):
    # NumPy numbers are registered with the numbers ABCs but are not int or float.
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _non_finite_to_none(float(value))
    return str(value)


def reset_state() -> None:
    """Forget the output format and exit code of an earlier command."""
    _state.update({"json": False, "exit_code": 0})


def set_exit_code(code: int) -> None:
    """Set the exit code a command ends with when it returns normally."""
    _state["exit_code"] = code


def pending_exit_code() -> int:
    return _state["exit_code"]


def print_json_error(message: str, kind: str, exit_code: int) -> None:
    """Print an error as the JSON object ``--json`` promises on stdout."""
    click.echo(json.dumps({"error": message, "kind": kind, "exit_code": exit_code}))


def report_error(exc: TwinMeError) -> None:
    """Print an error as one sentence on stderr, and as JSON under ``--json``."""
    message = str(exc)
    if _state["json"]:
        print_json_error(message, type(exc).__name__, exc.exit_code)
    click.echo(f"Error: {message}", err=True)


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """Format a count with its noun, e.g. ``1 participant``, ``2 participants``.

    ``plural_noun`` is for nouns whose plural is not ``noun + "s"``.
    """
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_noun or noun + 's'}"


def table(rows: list[dict], columns: list[str]) -> str:
    """Format rows as a plain aligned text table."""
    if not rows:
        return "(none)"
    cells = [
        [str("" if row.get(c) is None else row.get(c)) for c in columns] for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for r in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def is_terminal() -> bool:
    return sys.stderr.isatty()


log = logging.getLogger("twinme_lab.cli")
