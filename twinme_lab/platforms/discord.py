"""Discord API: the user and the servers (guilds) they belong to."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope

PLATFORM = Platform(
    name="discord",
    display_name="Discord",
    authorize_url="https://discord.com/oauth2/authorize",
    token_url="https://discord.com/api/oauth2/token",
    revoke_url="https://discord.com/api/oauth2/token/revoke",
    api_base="https://discord.com/api",
    identity_path="/v10/users/@me",
    scopes=(
        Scope("identify", ("user",)),
        Scope("guilds", ("guilds",)),
        Scope("connections", ("connections",), optional=True),
    ),
    endpoints=(
        Endpoint("user", "/v10/users/@me", "none"),
        Endpoint(
            "guilds",
            "/v10/users/@me/guilds",
            "cursor",
            page_size=200,
            cursor_param="after",
            page_size_param="limit",
        ),
        Endpoint("connections", "/v10/users/@me/connections", "none"),
    ),
    # Discord's global limit is 50 requests a second per token; per-route
    # buckets are announced in X-RateLimit-Bucket headers.
    rate_limit=RateLimit(50, 1, "token", source="Discord rate limit docs"),
    issues_refresh_tokens=True,
    refresh_token_rotates=True,
    pkce=True,
    client_auth="body",
    extra_authorize_params={"prompt": "consent"},
    brand_colour="#5865F2",
    reveals="Username and the list of servers joined, with owner flags.",
    insights="Number of communities and communities owned.",
)
