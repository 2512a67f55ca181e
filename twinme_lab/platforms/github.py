"""GitHub REST API: profile, repositories, languages and public events."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope

PLATFORM = Platform(
    name="github",
    display_name="GitHub",
    authorize_url="https://github.com/login/oauth/authorize",
    token_url="https://github.com/login/oauth/access_token",
    # DELETE /applications/{client_id}/token with Basic client auth.
    revoke_url="https://api.github.com/applications/{client_id}/token",
    revoke_style="github",
    api_base="https://api.github.com",
    identity_path="/user",
    scopes=(
        # read:user grants read access to the profile only; public repositories
        # and events need no scope.
        Scope("read:user", ("user", "repos", "events", "languages")),
    ),
    endpoints=(
        Endpoint("user", "/user", "none"),
        Endpoint(
            "repos",
            "/user/repos",
            "link",
            page_size=100,
            params=(("type", "owner"),),
            page_size_param="per_page",
        ),
        Endpoint(
            "events",
            "/users/{login}/events/public",
            "link",
            page_size=100,
            description="At most 300 events from the last 90 days.",
            page_size_param="per_page",
        ),
        Endpoint("languages", "/repos/{owner}/{repo}/languages", "none"),
    ),
    rate_limit=RateLimit(5000, 3600, "token", source="GitHub REST API docs"),
    # OAuth App tokens do not expire and come without a refresh token; GitHub
    # App user tokens expire after 8 hours and do come with one. Both work.
    issues_refresh_tokens=False,
    token_error_with_200=True,
    pkce=True,
    client_auth="body",
    extra_authorize_params={"prompt": "select_account"},
    brand_colour="#24292F",
    reveals="Public profile, owned repositories and their languages, public "
    "activity of the last 90 days.",
    insights="Programming language diversity, push regularity, weekday rhythm.",
    doctor_notes=(
        "GitHub OAuth App tokens do not refresh; a revoked token means the "
        "participant must connect again.",
    ),
    hooks={"account_name": lambda identity: identity.get("login")},
)
