"""The declarative shape every platform module fills in.

A platform module (``twinme_lab/platforms/<name>.py``) defines ``PLATFORM``, a
:class:`Platform`, and nothing that knows about another platform. Quirks are small
named hooks or flags on the instance, so shared code never branches on a
platform's name. This module and the platform modules import only the standard
library, so the sandbox server and the docs can read them cheaply.

URL layout: ``api_base`` is the real API's origin (plus any fixed prefix) and each
endpoint path is appended to it unchanged. A sandbox at ``URL`` serves the same
paths under ``URL/<name>/api``, and the OAuth endpoints under
``URL/<name>/oauth/{authorize,token,revoke,validate}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scope:
    """One OAuth scope and the extractor endpoints that need it."""

    name: str
    used_by: tuple[str, ...]
    optional: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One API endpoint an extractor reads.

    ``path`` may hold ``{placeholders}`` filled from the identity response (for
    example Reddit's ``{name}``). ``cursor_param`` names the query parameter that
    carries the cursor or offset.
    """

    name: str
    path: str
    pagination: str  # none | cursor | offset | link
    page_size: int | None = None
    description: str = ""
    params: tuple[tuple[str, str], ...] = ()
    cursor_param: str | None = None
    page_size_param: str | None = None


@dataclass(frozen=True)
class RateLimit:
    """A request budget: ``requests`` per ``per_seconds``, counted per token or app.

    A budget counted per app (client id) is shared by every participant of a
    cohort, so a run must divide it among them.
    """

    requests: int
    per_seconds: float
    counted_per: str  # token | app
    source: str = ""


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
    # Path of the endpoint that names the signed-in account, under api_base.
    identity_path: str = ""
    # Separator the authorize URL uses between scopes (RFC 6749 uses a space).
    scope_separator: str = " "
    # True when the platform may send a new refresh token on every refresh.
    refresh_token_rotates: bool = False
    # True when the token endpoint can answer HTTP 200 with an ``error`` field.
    token_error_with_200: bool = False
    # rfc7009 (POST token=...) or github (DELETE with the token in a JSON body).
    revoke_style: str = "rfc7009"
    # Header that must carry the client id on every API call, if any.
    client_id_header: str | None = None
    # True when the platform rejects generic User-Agent strings.
    requires_user_agent: bool = False
    # Token validation endpoint, called at start and every validate_every_seconds.
    validate_url: str | None = None
    validate_every_seconds: float | None = None
    # Lifetime of an access token when the token response omits expires_in.
    default_token_lifetime: float | None = None
    # Hooks: each is None or a callable documented where it is used.
    #   account_id(identity_json) -> str: the platform's stable account id.
    #   account_name(identity_json) -> str | None: a display name, never stored.
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def scope_names(self) -> list[str]:
        """Return the scopes requested at connect time (optional ones left out)."""
        return [scope.name for scope in self.scopes if not scope.optional]

    def endpoint(self, name: str) -> Endpoint:
        """Return the endpoint called ``name``, or raise ``KeyError``."""
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(f"{self.name} has no endpoint {name!r}")

    def account_id(self, identity: dict) -> str:
        """Return the account id from the identity endpoint's JSON response."""
        hook = self.hooks.get("account_id")
        value = hook(identity) if hook else identity.get("id")
        if value is None or str(value) == "":
            raise ValueError(f"{self.display_name} returned no account id")
        return str(value)

    def env_prefix(self) -> str:
        """Return the prefix of this platform's environment variables."""
        return f"TWINME_{self.name.upper()}_"
