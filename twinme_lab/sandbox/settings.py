"""Per-platform sandbox settings, read from the platform modules.

The sandbox imports only ``twinme_lab.platforms`` from the library, so scopes,
PKCE, refresh-token and rate-limit rules follow what the connectors declare.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import platforms

PLATFORM_NAMES: tuple[str, ...] = tuple(platforms.PLATFORM_NAMES)


@dataclass(frozen=True)
class PlatformSettings:
    """The rules the sandbox authorization server enforces for one platform."""

    name: str
    client_id: str
    client_secret: str
    scopes: frozenset[str]
    default_scopes: tuple[str, ...]
    pkce_required: bool
    issues_refresh_tokens: bool
    token_error_with_200: bool
    revoke_supported: bool
    validate_supported: bool
    rate_limit: tuple[int, float, str]
    # False for GitHub OAuth App tokens, which never expire.
    access_tokens_expire: bool


def client_pair(name: str) -> tuple[str, str]:
    """Return the public sandbox client id and secret of platform ``name``."""
    return f"sandbox-{name}-client", f"sandbox-{name}-secret"


def load(name: str, refresh_override: bool | None = None) -> PlatformSettings:
    """Build the sandbox settings of platform ``name`` from its module."""
    platform = platforms.get(name)
    client_id, client_secret = client_pair(name)
    issues_refresh = (
        platform.issues_refresh_tokens if refresh_override is None else refresh_override
    )
    limit = platform.rate_limit
    return PlatformSettings(
        name=name,
        client_id=client_id,
        client_secret=client_secret,
        scopes=frozenset(scope.name for scope in platform.scopes),
        default_scopes=tuple(platform.scope_names()),
        pkce_required=platform.pkce,
        issues_refresh_tokens=issues_refresh,
        token_error_with_200=platform.token_error_with_200,
        revoke_supported=platform.revoke_url is not None,
        validate_supported=platform.validate_url is not None,
        rate_limit=(limit.requests, float(limit.per_seconds), limit.counted_per),
        access_tokens_expire=issues_refresh or name != "github",
    )
