"""A local stand-in for seven OAuth platforms, served over HTTPS on 127.0.0.1.

:func:`serve` starts an OAuth 2.0 authorization server (oauthlib's server
classes) and the Spotify, GitHub, Discord, LinkedIn, YouTube, Reddit and Twitch
API endpoints the extractors read, filled with deterministic data generated per
user from a seed. Faults, rate limits and request counters are switched through
the returned :class:`SandboxHandle` or the admin API under ``/_sandbox/``.

Client credentials are public and fixed: ``sandbox-<platform>-client`` /
``sandbox-<platform>-secret``. The consenting user is chosen with the
``sandbox_user`` query parameter of the authorize URL (an index or a login),
else ``login_hint``, else :meth:`SandboxHandle.set_consent_user`, else user 0.
"""

from __future__ import annotations

from .faults import FAULT_KINDS
from .server import BIND_ADDRESS, SandboxError, SandboxHandle, serve
from .settings import PLATFORM_NAMES, client_pair

__all__ = [
    "BIND_ADDRESS",
    "FAULT_KINDS",
    "PLATFORM_NAMES",
    "SandboxError",
    "SandboxHandle",
    "client_pair",
    "serve",
]
