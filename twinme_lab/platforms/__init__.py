"""Platform registry: one module per platform, found by name.

``PLATFORM_NAMES`` lists the modules with an OAuth connector. Adding a platform
means adding its module here and in ``tests/test_platforms.py``.
"""

from __future__ import annotations

from importlib import import_module

from .base import Endpoint, Platform, RateLimit, Scope

PLATFORM_NAMES = (
    "spotify",
    "github",
    "discord",
    "linkedin",
    "youtube",
    "reddit",
    "twitch",
)

# Platforms users ask for that have no API, with the message that explains why.
NO_API = ("netflix",)
NO_API_MESSAGES = {
    "netflix": (
        "Netflix has no API to connect to. Ask the participant for their Netflix "
        "viewing activity export and import it with 'twinme-lab import netflix "
        "PATH --participant ID' (the CSV, its folder or the ZIP)."
    ),
}

__all__ = [
    "Endpoint",
    "NO_API",
    "NO_API_MESSAGES",
    "PLATFORM_NAMES",
    "Platform",
    "RateLimit",
    "Scope",
    "all_platforms",
    "get",
]


def get(name: str) -> Platform:
    """Return the platform called ``name``, or raise ``KeyError`` with the choices."""
    key = (name or "").strip().lower()
    if key in NO_API:
        raise KeyError(NO_API_MESSAGES[key])
    if key not in PLATFORM_NAMES:
        raise KeyError(
            f"Unknown platform {name!r}; choose one of {', '.join(PLATFORM_NAMES)}."
        )
    return import_module(f"{__name__}.{key}").PLATFORM


def all_platforms() -> list[Platform]:
    """Return every platform with an OAuth connector, in a fixed order."""
    return [get(name) for name in PLATFORM_NAMES]
