"""Reddit API: identity, subscribed subreddits, posts and comments."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope

PLATFORM = Platform(
    name="reddit",
    display_name="Reddit",
    authorize_url="https://www.reddit.com/api/v1/authorize",
    token_url="https://www.reddit.com/api/v1/access_token",
    revoke_url="https://www.reddit.com/api/v1/revoke_token",
    api_base="https://oauth.reddit.com",
    identity_path="/api/v1/me",
    scopes=(
        Scope("identity", ("me",)),
        Scope("history", ("submitted", "comments")),
        Scope("mysubreddits", ("subreddits",)),
        Scope("read", ("submitted", "comments")),
    ),
    endpoints=(
        Endpoint("me", "/api/v1/me", "none"),
        Endpoint(
            "subreddits",
            "/subreddits/mine/subscriber",
            "cursor",
            page_size=100,
            cursor_param="after",
            page_size_param="limit",
        ),
        Endpoint(
            "submitted",
            "/user/{name}/submitted",
            "cursor",
            page_size=100,
            description="Listings stop near 1,000 items.",
            cursor_param="after",
            page_size_param="limit",
        ),
        Endpoint(
            "comments",
            "/user/{name}/comments",
            "cursor",
            page_size=100,
            description="Listings stop near 1,000 items.",
            cursor_param="after",
            page_size_param="limit",
        ),
    ),
    rate_limit=RateLimit(100, 60, "app", source="Reddit Data API terms"),
    issues_refresh_tokens=True,
    pkce=False,
    client_auth="basic",
    requires_user_agent=True,
    extra_authorize_params={"duration": "permanent"},
    brand_colour="#FF4500",
    reveals="Username, subscribed subreddits, submitted posts and comments.",
    insights="Subreddit diversity and the comment-to-post ratio.",
    doctor_notes=(
        "Reddit API access needs Reddit's approval, and its 100 requests a "
        "minute are shared by every participant of the app.",
    ),
    hooks={"account_name": lambda identity: identity.get("name")},
)
