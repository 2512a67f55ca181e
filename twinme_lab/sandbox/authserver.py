"""The sandbox's OAuth 2.0 authorization server, built on oauthlib's server classes.

oauthlib implements the protocol: RFC 6749 authorization code and refresh grants
with their error responses, RFC 7636 PKCE verification and RFC 7009 revocation.
This module supplies the :class:`SandboxValidator`, which stores codes and tokens
in memory and applies each platform's rules. Codes live 10 minutes and are
single-use; a reused code revokes every token issued from it (RFC 6749 section
4.1.2). Refresh tokens are single-use: each refresh returns a new one and the
old one is rejected with ``invalid_grant`` afterwards.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote_plus, urlsplit

from oauthlib.oauth2 import RequestValidator, WebApplicationServer
from oauthlib.oauth2.rfc6749 import errors

from .settings import PlatformSettings

CODE_LIFETIME = 600.0


@dataclass
class Grant:
    """One consent: a user, a client and scopes; every token derives from it."""

    id: int
    platform: str
    client_id: str
    user_index: int
    scopes: tuple[str, ...]
    issue_refresh: bool
    revoked: bool = False


@dataclass
class AuthorizationCode:
    code: str
    grant: Grant
    redirect_uri: str | None
    challenge: str | None
    challenge_method: str | None
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: float | None
    revoked: bool = False

    def expires_in(self, now: float) -> int | None:
        """Return whole seconds until expiry (0 when past); None: it never expires."""
        if self.expires_at is None:
            return None
        return max(0, int(self.expires_at - now))

    def status(self, now: float) -> str:
        """Return 'valid', 'revoked' or 'expired'."""
        if self.revoked or self.grant.revoked:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "valid"


@dataclass
class RefreshToken:
    token: str
    grant: Grant
    used: bool = False


@dataclass
class TokenStore:
    """Codes, access tokens and refresh tokens of every platform, under one lock."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "codes": 0,
            "tokens": 0,
            "refreshes": 0,
            "revocations": 0,
        }
    )
    _grant_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_grant(self, **fields) -> Grant:
        return Grant(id=next(self._grant_ids), **fields)

    def revoke_grant(self, grant: Grant) -> None:
        with self.lock:
            grant.revoked = True
            self.counters["revocations"] += 1

    def expire_access_tokens(self, platform: str | None = None) -> int:
        """Mark every live access token (of ``platform``) expired; return how many."""
        now = time.time()
        count = 0
        with self.lock:
            for record in self.access.values():
                if (
                    platform in (None, record.grant.platform)
                    and record.status(now) == "valid"
                ):
                    record.expires_at = now - 1
                    count += 1
        return count


def basic_credentials(headers) -> tuple[str, str] | None:
    """Return (client_id, secret) from an HTTP Basic Authorization header, or None."""
    header = headers.get("Authorization") or headers.get("authorization") or ""
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def _is_loopback_host(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class SandboxValidator(RequestValidator):
    """oauthlib request validator for one platform of the sandbox."""

    def __init__(
        self,
        settings: PlatformSettings,
        store: TokenStore,
        token_lifetime: float,
        extra_redirect_uris: tuple[str, ...] = (),
    ):
        self.settings = settings
        self.store = store
        self.token_lifetime = token_lifetime
        self.extra_redirect_uris = extra_redirect_uris

    # Client authentication -------------------------------------------------
    def client_authentication_required(self, request, *args, **kwargs):
        if basic_credentials(request.headers) or request.client_secret:
            return True
        is_revocation = urlsplit(request.uri).path.endswith("/revoke")
        is_pkce_exchange = (
            request.grant_type == "authorization_code" and request.code_verifier
        )
        return not (is_revocation or is_pkce_exchange)

    def authenticate_client(self, request, *args, **kwargs):
        # NOTE: every platform accepts credentials in the Basic header or in the
        # body here, although Reddit requires Basic, so a client that sends
        # Reddit credentials in the body passes here and fails at Reddit.
        credentials = basic_credentials(request.headers)
        if credentials is None:
            credentials = (request.client_id or "", request.client_secret or "")
        client_id, secret = credentials
        valid_id = secrets.compare_digest(client_id, self.settings.client_id)
        valid_secret = secrets.compare_digest(secret, self.settings.client_secret)
        if not (valid_id and valid_secret):
            return False
        request.client_id = client_id
        request.client = self.settings
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        if client_id != self.settings.client_id:
            return False
        request.client = self.settings
        return True

    def validate_client_id(self, client_id, request, *args, **kwargs):
        return client_id == self.settings.client_id

    # Authorization request --------------------------------------------------
    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        if redirect_uri in self.extra_redirect_uris:
            return True
        parts = urlsplit(redirect_uri)
        # As Spotify does, accept loopback IP literals and reject 'localhost'.
        return parts.scheme in ("http", "https") and _is_loopback_host(parts.hostname)

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        return None

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return list(self.settings.default_scopes)

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        return all(scope in self.settings.scopes for scope in scopes)

    def validate_response_type(
        self, client_id, response_type, client, request, *args, **kwargs
    ):
        return response_type == "code"

    def is_pkce_required(self, client_id, request):
        return self.settings.pkce_required

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        issue_refresh = self.settings.issues_refresh_tokens
        # Reddit issues a refresh token only for duration=permanent, Google only
        # for access_type=offline.
        if self.settings.name == "reddit":
            issue_refresh = (
                issue_refresh and getattr(request, "duration", None) == "permanent"
            )
        if self.settings.name == "youtube":
            issue_refresh = (
                issue_refresh and getattr(request, "access_type", None) == "offline"
            )
        with self.store.lock:
            grant = self.store.new_grant(
                platform=self.settings.name,
                client_id=client_id,
                user_index=int(request.user),
                scopes=tuple(request.scopes),
                issue_refresh=issue_refresh,
            )
            self.store.codes[code["code"]] = AuthorizationCode(
                code=code["code"],
                grant=grant,
                redirect_uri=request.redirect_uri,
                challenge=request.code_challenge,
                challenge_method=request.code_challenge_method,
                expires_at=time.time() + CODE_LIFETIME,
            )
            self.store.counters["codes"] += 1

    # Token request ----------------------------------------------------------
    def validate_grant_type(
        self, client_id, grant_type, client, request, *args, **kwargs
    ):
        if grant_type == "refresh_token":
            return True
        return grant_type == "authorization_code"

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        with self.store.lock:
            record = self.store.codes.get(code)
            if record is None or record.grant.client_id != client_id:
                return False
            if record.used:
                # A second use of a code revokes what the first use issued.
                self.store.revoke_grant(record.grant)
                return False
            if time.time() >= record.expires_at or record.grant.revoked:
                return False
            # Claimed here, under the lock, so two concurrent exchanges of one
            # code cannot both pass. An exchange that fails a later check (the
            # PKCE verifier, the redirect URI) still spends the code.
            record.used = True
            request.user = record.grant.user_index
            request.scopes = list(record.grant.scopes)
            request.sandbox_grant = record.grant
            return True

    def confirm_redirect_uri(
        self, client_id, code, redirect_uri, client, request, *args, **kwargs
    ):
        record = self.store.codes.get(code)
        if record is None:
            return False
        return record.redirect_uri == redirect_uri

    def get_code_challenge(self, code, request):
        record = self.store.codes.get(code)
        return record.challenge if record else None

    def get_code_challenge_method(self, code, request):
        record = self.store.codes.get(code)
        return record.challenge_method if record else None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        with self.store.lock:
            record = self.store.codes.get(code)
            if record is not None:
                record.used = True

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        with self.store.lock:
            record = self.store.refresh.get(refresh_token)
            if record is None or record.used or record.grant.revoked:
                return False
            if record.grant.platform != self.settings.name:
                return False
            # Claimed here, under the lock, so two concurrent refreshes with one
            # token cannot both pass. A refresh that fails after this point
            # (an invalid scope) still spends the token.
            record.used = True
            request.user = record.grant.user_index
            request.sandbox_grant = record.grant
            return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        record = self.store.refresh.get(refresh_token)
        return list(record.grant.scopes) if record else []

    def rotate_refresh_token(self, request):
        return True

    def save_bearer_token(self, token, request, *args, **kwargs):
        grant: Grant = request.sandbox_grant
        with self.store.lock:
            if request.grant_type == "refresh_token":
                old = self.store.refresh.get(request.refresh_token)
                if old is not None and "refresh_token" in token:
                    old.used = True
                self.store.counters["refreshes"] += 1
            expires_in = token.get("expires_in")
            self.store.access[token["access_token"]] = AccessToken(
                token=token["access_token"],
                grant=grant,
                expires_at=None if expires_in is None else time.time() + expires_in,
            )
            refresh = token.get("refresh_token")
            if refresh and refresh not in self.store.refresh:
                self.store.refresh[refresh] = RefreshToken(refresh, grant)
            self.store.counters["tokens"] += 1

    # Revocation -------------------------------------------------------------
    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        with self.store.lock:
            record = self.store.access.get(token) or self.store.refresh.get(token)
            if record is not None and record.grant.platform == self.settings.name:
                # Revoking either token ends the whole grant (Google documents
                # this), so a disconnected account keeps no working token.
                self.store.revoke_grant(record.grant)


def _shape_token(settings: PlatformSettings):
    """Return an oauthlib token modifier that applies the platform's response rules."""

    def modify(token, token_handler, request):
        grant: Grant = request.sandbox_grant
        if not grant.issue_refresh:
            token.pop("refresh_token", None)
        if not settings.access_tokens_expire:
            token.pop("expires_in", None)
        if settings.name == "github":
            token["token_type"] = "bearer"
            token["scope"] = ",".join(grant.scopes)
        elif settings.name == "twitch":
            token["token_type"] = "bearer"
            token["scope"] = list(grant.scopes)
        return token

    return modify


def _require_s256(request):
    """Reject PKCE challenges other than S256, which every platform here uses."""
    if request.code_challenge is not None and request.code_challenge_method != "S256":
        raise errors.UnsupportedCodeChallengeMethodError(request=request)
    return {}


def build_server(
    settings: PlatformSettings,
    store: TokenStore,
    token_lifetime: float,
    extra_redirect_uris: tuple[str, ...] = (),
) -> WebApplicationServer:
    """Return an oauthlib server for one platform, sharing ``store``."""
    validator = SandboxValidator(settings, store, token_lifetime, extra_redirect_uris)
    server = WebApplicationServer(
        validator,
        token_expires_in=lambda request: int(validator.token_lifetime),
        token_generator=lambda request: secrets.token_urlsafe(32),
        refresh_token_generator=lambda request: secrets.token_urlsafe(40),
    )
    server.auth_grant.custom_validators.pre_auth.append(_require_s256)
    modifier = _shape_token(settings)
    server.auth_grant.register_token_modifier(modifier)
    server.refresh_grant.register_token_modifier(modifier)
    return server
