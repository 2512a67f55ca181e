"""Logging set-up: one logger per module, a NullHandler at the package root.

Libraries that log secrets at DEBUG level (requests-oauthlib prints tokens, urllib3
prints full URLs with codes) are held at WARNING whatever level the user picks, and
every record passes a filter that masks anything shaped like a token or key.
"""

from __future__ import annotations

import logging
import re

logging.getLogger("twinme_lab").addHandler(logging.NullHandler())

_NOISY = (
    "requests_oauthlib",
    "oauthlib",
    "urllib3",
    "papermill",
    "traitlets",
    "asyncio",
    "blib2to3",
    "nbconvert",
)

_SECRET_PATTERNS = [
    re.compile(r"\b[0-9a-fA-F]{32,}\b"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|code|code_verifier|client_secret|"
        r"state|token|password|key)[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+"
    ),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
]


def redact(text: str) -> str:
    """Mask anything in ``text`` shaped like a key, token, code or verifier."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrite each record's message with :func:`redact` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def quiet_noisy_loggers() -> None:
    """Hold third-party loggers that print secrets at WARNING."""
    for name in _NOISY:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.addFilter(RedactingFilter())


def configure(level: str = "WARNING") -> None:
    """Send twinme_lab's log records to stderr at ``level``, redacted."""
    quiet_noisy_loggers()
    root = logging.getLogger("twinme_lab")
    root.setLevel(level.upper())
    if not any(getattr(h, "_twinme", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._twinme = True
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


quiet_noisy_loggers()
