"""LinkedIn: the OpenID Connect userinfo, the only member data an app can read."""

from __future__ import annotations

from .spec import EndpointSpec

IDENTITY_ENDPOINT = "userinfo"

ENDPOINTS = (
    EndpointSpec(
        name="userinfo",
        items=lambda body: [body] if body else [],
        item_id=lambda info: info["sub"],
        # Name, picture and e-mail feed no feature, so only the account id stays.
        trim=lambda info: {"sub": info.get("sub"), "locale": info.get("locale")},
    ),
)
