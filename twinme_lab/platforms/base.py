"""The declarative shape every platform module fills in.

A platform module (``twinme_lab/platforms/<name>.py``) defines ``PLATFORM``, a
:class:`Platform`, and nothing that knows about another platform. Quirks are small
named hooks on the instance, so shared code never branches on a platform's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scope:
    """One OAuth scope and the extractor endpoints that need it."""

    name: str
    used_by: tuple[str, ...]
    optional: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint an extractor reads."""

    name: str
    path: str
    pagination: str  # none | cursor | offset | link
    page_size: int | None = None
    description: str = ""


@dataclass(frozen=True)
class RateLimit:
    """A request budget: ``requests`` per ``per_seconds``, counted per token or app."""

    requests: int
    per_seconds: float
    counted_per: str  # token | app


@dataclass(frozen=True)
class Platform:
    """Everything shared code needs to connect to and read from one platform."""

    name: str
    display_name: str
    authorize_url: str
    token_url: str
    revoke_url: str | None
    api_base: str
    scopes: tuple[Scope, ...]
    endpoints: tuple[Endpoint, ...]
    rate_limit: RateLimit
    issues_refresh_tokens: bool
    pkce: bool
    client_auth: str  # basic | body
    token_type: str = "Bearer"
    extra_authorize_params: dict[str, str] = field(default_factory=dict)
    brand_colour: str = "#444444"
    reveals: str = ""
    insights: str = ""
    essential: bool = False
    doctor_notes: tuple[str, ...] = ()
    # Hooks: each is None or a callable documented where it is used.
    hooks: dict[str, Callable] = field(default_factory=dict)

    def scope_names(self) -> list[str]:
        return [scope.name for scope in self.scopes if not scope.optional]

    def endpoint(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(f"{self.name} has no endpoint {name!r}")
