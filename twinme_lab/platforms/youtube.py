"""YouTube Data API (Google OAuth): subscriptions and liked videos."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope


def _channel_id(identity: dict) -> str | None:
    items = identity.get("items") or []
    return items[0].get("id") if items else None


PLATFORM = Platform(
    name="youtube",
    display_name="YouTube",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    revoke_url="https://oauth2.googleapis.com/revoke",
    api_base="https://www.googleapis.com",
    identity_path="/youtube/v3/channels?part=id&mine=true",
    scopes=(
        Scope(
            "https://www.googleapis.com/auth/youtube.readonly",
            ("subscriptions", "liked_videos", "channel_topics"),
        ),
    ),
    endpoints=(
        Endpoint(
            "subscriptions",
            "/youtube/v3/subscriptions",
            "cursor",
            page_size=50,
            params=(("part", "snippet"), ("mine", "true")),
            cursor_param="pageToken",
            page_size_param="maxResults",
        ),
        Endpoint(
            "liked_videos",
            "/youtube/v3/videos",
            "cursor",
            page_size=50,
            params=(("part", "snippet,topicDetails"), ("myRating", "like")),
            cursor_param="pageToken",
            page_size_param="maxResults",
        ),
        Endpoint(
            "channel_topics",
            "/youtube/v3/channels",
            "none",
            params=(("part", "topicDetails"),),
            description="Topic categories of up to 50 channel ids per call.",
        ),
    ),
    # A project's default quota is 10,000 units a day; a list call costs 1 unit.
    rate_limit=RateLimit(10000, 86400, "app", source="YouTube Data API quota"),
    issues_refresh_tokens=True,
    pkce=True,
    client_auth="body",
    extra_authorize_params={
        "access_type": "offline",
        "prompt": "select_account consent",
    },
    brand_colour="#FF0000",
    reveals="Channel subscriptions and liked videos with their topics.",
    insights="Video topic diversity.",
    doctor_notes=(
        "A Google app left in 'Testing' publishing status gets refresh tokens "
        "that expire after 7 days; publish the app or reconnect weekly.",
    ),
    hooks={"account_id": _channel_id},
)
