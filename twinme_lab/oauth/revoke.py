"""Token revocation at the platform (RFC 7009, or GitHub's own endpoint)."""

from __future__ import annotations

import logging

import requests

from ..platforms.config import ResolvedPlatform
from .client import TOKEN_TIMEOUT, TransientTokenError, with_retries
from .records import Tokens

log = logging.getLogger(__name__)


def _revoke_one(resolved: ResolvedPlatform, token: str, hint: str) -> None:
    platform = resolved.platform
    headers = {"User-Agent": resolved.user_agent, "Accept": "application/json"}
    basic = requests.auth.HTTPBasicAuth(resolved.client_id, resolved.client_secret)
    if platform.revoke_style == "github":
        url = resolved.revoke_url.format(client_id=resolved.client_id)
        response = requests.delete(
            url,
            json={"access_token": token},
            auth=basic,
            headers=headers,
            timeout=TOKEN_TIMEOUT,
            verify=resolved.verify,
        )
    else:
        data = {"token": token, "token_type_hint": hint}
        auth = None
        if platform.client_auth == "basic":
            auth = basic
        else:
            data["client_id"] = resolved.client_id
            data["client_secret"] = resolved.client_secret
        response = requests.post(
            resolved.revoke_url,
            data=data,
            auth=auth,
            headers=headers,
            timeout=TOKEN_TIMEOUT,
            verify=resolved.verify,
        )
    if response.status_code >= 500:
        raise TransientTokenError(
            f"The revocation endpoint returned HTTP {response.status_code}."
        )
    # RFC 7009 section 2.2: the server returns HTTP 200 for an invalid or already
    # revoked token.
    if response.status_code not in (200, 204, 404):
        raise RuntimeError(
            f"{platform.display_name} rejected the revocation with HTTP "
            f"{response.status_code}"
        )


def revoke_tokens(resolved: ResolvedPlatform, tokens: Tokens) -> tuple[bool, str]:
    """Revoke a connection's tokens; return (revoked, explanation)."""
    platform = resolved.platform
    if not resolved.revoke_url:
        return False, (
            f"{platform.display_name} has no revocation endpoint; the participant "
            "can remove the app in their account settings."
        )
    pairs = [
        (tokens.refresh_token, "refresh_token"),
        (tokens.access_token, "access_token"),
    ]
    try:
        for token, hint in pairs:
            if token:
                with_retries(
                    lambda token=token, hint=hint: _revoke_one(resolved, token, hint),
                    f"{platform.display_name} token revocation",
                )
    except (TransientTokenError, RuntimeError, requests.RequestException) as exc:
        log.warning("revocation at %s failed: %s", platform.name, type(exc).__name__)
        return False, f"Revocation at {platform.display_name} failed: {exc}"
    return True, f"Revoked at {platform.display_name}."
