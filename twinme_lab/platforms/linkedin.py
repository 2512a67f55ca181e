"""LinkedIn through OpenID Connect: the member's basic profile only."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope

PLATFORM = Platform(
    name="linkedin",
    display_name="LinkedIn",
    authorize_url="https://www.linkedin.com/oauth/v2/authorization",
    token_url="https://www.linkedin.com/oauth/v2/accessToken",
    revoke_url="https://www.linkedin.com/oauth/v2/revoke",
    api_base="https://api.linkedin.com",
    identity_path="/v2/userinfo",
    scopes=(
        # r_liteprofile and r_emailaddress are retired; OpenID Connect replaces
        # them.
        Scope("openid", ("userinfo",)),
        Scope("profile", ("userinfo",)),
    ),
    endpoints=(Endpoint("userinfo", "/v2/userinfo", "none"),),
    # NOTE: LinkedIn shows per-app and per-member daily limits only in each
    # app's developer portal; 500 a day is an estimate.
    rate_limit=RateLimit(500, 86400, "token", source="estimate"),
    # Most apps get no refresh token; access tokens last 60 days.
    issues_refresh_tokens=False,
    pkce=False,
    client_auth="body",
    default_token_lifetime=60 * 86400,
    brand_colour="#0A66C2",
    reveals="Name, profile picture and locale from the OpenID userinfo.",
    insights="Profile presence only; the LinkedIn data export holds more.",
    doctor_notes=(
        "LinkedIn issues no refresh token to most apps: when the 60-day access "
        "token expires the participant must connect again.",
        "LinkedIn has no parameter that forces its account chooser; sign the "
        "previous participant out of linkedin.com before each connection.",
    ),
    hooks={"account_id": lambda identity: identity.get("sub")},
)
