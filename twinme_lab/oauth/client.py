"""requests-oauthlib sessions set up for one platform: auth, hooks and trust.

The token endpoint's responses pass through compliance hooks that turn a 5xx
into :class:`TransientTokenError` (retried with backoff, never a reason to
reconnect) and rewrite comma-separated scopes (GitHub) into RFC 6749's spaces.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from ..platforms.config import ResolvedPlatform
from .errors import TransientTokenError

log = logging.getLogger(__name__)

TOKEN_TIMEOUT = 30.0
RETRY_ATTEMPTS = 4
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 8.0

T = TypeVar("T")


def _transient_hook(response: requests.Response) -> requests.Response:
    if response.status_code >= 500:
        raise TransientTokenError(
            f"The token endpoint returned HTTP {response.status_code}."
        )
    return response


def _scope_hook(response: requests.Response) -> requests.Response:
    try:
        body = response.json()
    except ValueError:
        return response
    if isinstance(body, dict) and isinstance(body.get("scope"), str):
        if "," in body["scope"]:
            body["scope"] = " ".join(
                part.strip() for part in body["scope"].split(",") if part.strip()
            )
            response._content = json.dumps(body).encode()
    return response


def new_session(
    resolved: ResolvedPlatform,
    scope: list[str] | None = None,
    token: dict | None = None,
    pkce: bool = False,
) -> OAuth2Session:
    """Return an OAuth2Session for a platform, with its hooks, headers and trust."""
    session = OAuth2Session(
        client_id=resolved.client_id,
        scope=scope,
        redirect_uri=resolved.redirect_uri,
        token=token,
        pkce="S256" if pkce else None,
    )
    session.verify = resolved.verify
    session.headers["User-Agent"] = resolved.user_agent
    if resolved.platform.client_id_header:
        session.headers[resolved.platform.client_id_header] = resolved.client_id
    for kind in ("access_token_response", "refresh_token_response"):
        session.register_compliance_hook(kind, _transient_hook)
        session.register_compliance_hook(kind, _scope_hook)
    return session


def client_auth_kwargs(resolved: ResolvedPlatform) -> dict:
    """Return fetch_token/refresh_token arguments for the platform's client auth."""
    if resolved.platform.client_auth == "basic":
        return {
            "auth": requests.auth.HTTPBasicAuth(
                resolved.client_id, resolved.client_secret
            )
        }
    return {
        "include_client_id": True,
        "client_secret": resolved.client_secret,
    }


def refresh_auth_kwargs(resolved: ResolvedPlatform) -> dict:
    """Return refresh_token arguments for the platform's client auth."""
    if resolved.platform.client_auth == "basic":
        return client_auth_kwargs(resolved)
    return {
        "client_id": resolved.client_id,
        "client_secret": resolved.client_secret,
    }


def with_retries(
    action: Callable[[], T], what: str, attempts: int = RETRY_ATTEMPTS
) -> T:
    """Run ``action``, retrying 5xx, timeouts and network errors with backoff."""
    delay = RETRY_BASE_DELAY
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (TransientTokenError, requests.Timeout, requests.ConnectionError) as exc:
            if attempt == attempts:
                raise TransientTokenError(
                    f"{what} failed after {attempts} attempts: "
                    f"{type(exc).__name__}. Check the network and try again."
                ) from None
            log.warning(
                "%s failed (%s), retrying in %.1f s (attempt %d of %d)",
                what,
                type(exc).__name__,
                delay,
                attempt,
                attempts,
            )
            time.sleep(delay + random.uniform(0, delay / 2))
            delay = min(delay * 2, RETRY_MAX_DELAY)
    raise AssertionError("unreachable")


def expires_at_from(token: dict, default_lifetime: float | None) -> datetime | None:
    """Return a token's expiry time from expires_at/expires_in, or None."""
    if token.get("expires_at"):
        return datetime.fromtimestamp(float(token["expires_at"]), UTC)
    if token.get("expires_in"):
        return datetime.fromtimestamp(time.time() + float(token["expires_in"]), UTC)
    if default_lifetime:
        return datetime.fromtimestamp(time.time() + default_lifetime, UTC)
    return None


def oauth_error_text(exc: OAuth2Error) -> str:
    """Return an OAuth error's code and description, which carry no secrets."""
    text = exc.error or type(exc).__name__
    if exc.description:
        text += f" ({exc.description})"
    return text
