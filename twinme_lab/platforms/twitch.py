"""Twitch Helix API: the user and the channels they follow."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope


def _user_id(identity: dict) -> str | None:
    data = identity.get("data") or []
    return data[0].get("id") if data else None


def _login(identity: dict) -> str | None:
    data = identity.get("data") or []
    return data[0].get("login") if data else None


PLATFORM = Platform(
    name="twitch",
    display_name="Twitch",
    authorize_url="https://id.twitch.tv/oauth2/authorize",
    token_url="https://id.twitch.tv/oauth2/token",
    revoke_url="https://id.twitch.tv/oauth2/revoke",
    api_base="https://api.twitch.tv",
    identity_path="/helix/users",
    scopes=(Scope("user:read:follows", ("followed_channels",)),),
    endpoints=(
        Endpoint("user", "/helix/users", "none"),
        Endpoint(
            "followed_channels",
            "/helix/channels/followed",
            "cursor",
            page_size=100,
            description="Needs user_id from the user endpoint.",
            cursor_param="after",
            page_size_param="first",
        ),
    ),
    # Helix gives each user token a bucket of 800 points a minute.
    rate_limit=RateLimit(800, 60, "token", source="Twitch API docs"),
    issues_refresh_tokens=True,
    refresh_token_rotates=True,
    pkce=False,
    client_auth="body",
    client_id_header="Client-Id",
    # Twitch requires apps to validate user tokens at start and every hour.
    validate_url="https://id.twitch.tv/oauth2/validate",
    validate_every_seconds=3600,
    extra_authorize_params={"force_verify": "true"},
    brand_colour="#9146FF",
    reveals="Username and followed channels.",
    insights="Followed channel count and categories.",
    doctor_notes=(
        "Twitch requires apps to validate user tokens at start and every hour; "
        "authorized sessions do this themselves.",
    ),
    hooks={"account_id": _user_id, "account_name": _login},
)
