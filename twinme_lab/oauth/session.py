"""Authorized sessions: API requests with a token that refreshes itself.

A refresh runs under the connection's cross-process lock and re-reads the row
first, so when two processes find the token expired, one refreshes and the other
picks up the stored result. A rotated refresh token is committed to the database
before the new access token is handed to the caller.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import requests
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error
from requests_oauthlib import OAuth2Session

from .. import platforms, store, vault
from ..errors import NotFoundError, UsageError
from ..platforms.config import ConfigError, ResolvedPlatform, resolve
from ..workspace import Workspace
from . import records
from .client import (
    TOKEN_TIMEOUT,
    expires_at_from,
    new_session,
    oauth_error_text,
    refresh_auth_kwargs,
    with_retries,
)
from .errors import OAuthFlowError, ReauthRequired
from .lock import connection_lock

log = logging.getLogger(__name__)

REFRESH_SKEW = timedelta(seconds=60)


def _load(workspace: Workspace, participant_id: str, platform: str):
    with workspace.connect() as con:
        record = records.load(con, participant_id, platform)
    if record is None:
        raise NotFoundError(
            f"{participant_id} has no {platform} connection; run 'twinme-lab connect "
            f"{platform} --participant {participant_id}'."
        )
    return record


def _require_usable(record: records.ConnectionRecord) -> None:
    if record.status == records.REVOKED or record.access_token is None:
        raise ReauthRequired(
            f"The {record.platform} connection of {record.participant_id} was "
            "disconnected; connect again."
        )
    if record.status == records.REQUIRES_REAUTH:
        raise ReauthRequired(
            f"The {record.platform} connection of {record.participant_id} needs "
            f"reconnecting: {record.status_reason}."
        )


def _require_same_origin(
    record: records.ConnectionRecord, resolved: ResolvedPlatform
) -> None:
    if record.origin != resolved.origin():
        raise UsageError(
            f"The {resolved.platform.display_name} connection of "
            f"{record.participant_id} was made against the {record.origin}, but "
            f"this process is set up for the {resolved.origin()}, so its token is "
            "not sent there. Set or unset TWINME_SANDBOX_URL to match."
        )


def _mark_reauth(
    workspace: Workspace, record: records.ConnectionRecord, reason: str
) -> ReauthRequired:
    records.set_status(
        workspace,
        record.participant_id,
        record.platform,
        records.REQUIRES_REAUTH,
        reason,
    )
    log.warning(
        "%s connection of %s requires reauthorization: %s",
        record.platform,
        record.participant_id,
        reason,
    )
    return ReauthRequired(
        f"The {record.platform} connection of {record.participant_id} needs "
        f"reconnecting: {reason}. Run 'twinme-lab connect {record.platform} "
        f"--participant {record.participant_id}'."
    )


def refresh_tokens(
    workspace: Workspace,
    resolved: ResolvedPlatform,
    participant_id: str,
    stale_access_token: str | None = None,
    force: bool = False,
) -> records.Tokens:
    """Refresh a connection's tokens unless another process already did.

    Without ``force`` the tokens are refreshed only when they expire within
    :data:`REFRESH_SKEW`. With ``force`` (after a 401) they are refreshed unless
    the stored access token already differs from ``stale_access_token``.
    """
    key = vault.require_key(workspace.key)
    platform = resolved.platform
    with connection_lock(workspace, participant_id, platform.name):
        record = _load(workspace, participant_id, platform.name)
        _require_usable(record)
        _require_same_origin(record, resolved)
        tokens = record.open_tokens(key)
        now = datetime.now(UTC)
        if not force and (
            tokens.expires_at is None or tokens.expires_at - now > REFRESH_SKEW
        ):
            return tokens
        if force and stale_access_token and tokens.access_token != stale_access_token:
            return tokens
        if not tokens.refresh_token:
            if platform.issues_refresh_tokens:
                reason = "the platform issued no refresh token"
            else:
                reason = (
                    f"the access token expired or was revoked, and "
                    f"{platform.display_name} issues no refresh tokens"
                )
            raise _mark_reauth(workspace, record, reason)

        session = new_session(resolved)

        def post_refresh() -> dict:
            return session.refresh_token(
                resolved.token_url,
                refresh_token=tokens.refresh_token,
                timeout=TOKEN_TIMEOUT,
                verify=resolved.verify,
                **refresh_auth_kwargs(resolved),
            )

        try:
            fresh = with_retries(post_refresh, f"{platform.display_name} token refresh")
        except Warning as changed:
            fresh = dict(changed.token)
        except InvalidGrantError as exc:
            raise _mark_reauth(
                workspace, record, f"refresh rejected ({oauth_error_text(exc)})"
            ) from None
        except OAuth2Error as exc:
            raise OAuthFlowError(
                f"{platform.display_name} rejected the token refresh for "
                f"{participant_id}: {oauth_error_text(exc)}. Check the client id "
                "and secret."
            ) from None

        new_tokens = records.Tokens(
            access_token=fresh["access_token"],
            refresh_token=fresh.get("refresh_token") or tokens.refresh_token,
            token_type=fresh.get("token_type") or tokens.token_type,
            expires_at=expires_at_from(fresh, platform.default_token_lifetime),
        )
        with workspace.connect() as con, store.transaction(con):
            records.update_tokens(con, workspace, record, new_tokens, now)
        log.info("refreshed %s token of %s", platform.name, participant_id)
        return new_tokens


class AuthorizedSession(OAuth2Session):
    """A requests session for one connection's API calls.

    Paths starting with ``/`` are taken relative to the platform's API base, and
    requests to any other origin are rejected, so a token is only ever sent to the
    API that issued it. The token is refreshed shortly before it expires; call
    :meth:`refresh` after a 401 to force one.
    """

    def __init__(
        self,
        workspace: Workspace,
        resolved: ResolvedPlatform,
        participant_id: str,
        tokens: records.Tokens,
    ):
        super().__init__(client_id=resolved.client_id, token=self._token_dict(tokens))
        self.workspace = workspace
        self.resolved = resolved
        self.participant_id = participant_id
        self.platform = resolved.platform
        self.verify = resolved.verify
        self.headers["User-Agent"] = resolved.user_agent
        if self.platform.client_id_header:
            self.headers[self.platform.client_id_header] = resolved.client_id
        self._token_expires_at = tokens.expires_at
        self._validated_monotonic: float | None = None

    def __repr__(self) -> str:
        return (
            f"AuthorizedSession({self.participant_id!r}, {self.platform.name!r}, "
            f"origin={self.resolved.origin()!r})"
        )

    @staticmethod
    def _token_dict(tokens: records.Tokens) -> dict:
        token = {"access_token": tokens.access_token, "token_type": "Bearer"}
        if tokens.expires_at is not None:
            token["expires_at"] = tokens.expires_at.timestamp()
        return token

    def _install(self, tokens: records.Tokens) -> None:
        self.token = self._token_dict(tokens)
        self._token_expires_at = tokens.expires_at

    def refresh(self) -> None:
        """Force a refresh, as after a 401; raise ReauthRequired when it fails."""
        tokens = refresh_tokens(
            self.workspace,
            self.resolved,
            self.participant_id,
            stale_access_token=self.access_token,
            force=True,
        )
        self._install(tokens)

    def _refresh_if_due(self) -> None:
        if self._token_expires_at is None:
            return
        if self._token_expires_at - datetime.now(UTC) > REFRESH_SKEW:
            return
        tokens = refresh_tokens(self.workspace, self.resolved, self.participant_id)
        self._install(tokens)

    def validate(self) -> None:
        """Validate the token at the platform's validation endpoint (Twitch)."""
        url = self.resolved.validate_url
        if not url:
            return
        for attempt in (1, 2):
            response = requests.get(
                url,
                headers={
                    "Authorization": f"OAuth {self.access_token}",
                    "User-Agent": self.resolved.user_agent,
                },
                timeout=TOKEN_TIMEOUT,
                verify=self.resolved.verify,
            )
            if response.status_code == 200:
                self._validated_monotonic = time.monotonic()
                records.set_validated(
                    self.workspace,
                    self.participant_id,
                    self.platform.name,
                    datetime.now(UTC),
                )
                return
            if response.status_code != 401:
                raise OAuthFlowError(
                    f"{self.platform.display_name} token validation returned HTTP "
                    f"{response.status_code}."
                )
            if attempt == 1:
                self.refresh()
        record = _load(self.workspace, self.participant_id, self.platform.name)
        raise _mark_reauth(
            self.workspace, record, "the platform rejected the token at validation"
        )

    def _validate_if_due(self) -> None:
        every = self.platform.validate_every_seconds
        if not self.resolved.validate_url or every is None:
            return
        if (
            self._validated_monotonic is None
            or time.monotonic() - self._validated_monotonic >= every
        ):
            self.validate()

    def _absolute(self, url: str) -> str:
        if url.startswith("/"):
            url = self.resolved.api_url(url)
        base = self.resolved.api_base.rstrip("/")
        if (
            url != base
            and not url.startswith(base + "/")
            and not url.startswith(base + "?")
        ):
            raise UsageError(
                f"Refusing to send the {self.platform.display_name} token to "
                f"{url.split('?')[0]}: it is outside {base}."
            )
        return url

    def request(self, method, url, *args, **kwargs):
        url = self._absolute(url)
        kwargs.setdefault("timeout", TOKEN_TIMEOUT)
        # requests lets REQUESTS_CA_BUNDLE override Session.verify unless verify
        # is passed per request.
        kwargs.setdefault("verify", self.resolved.verify)
        self._refresh_if_due()
        self._validate_if_due()
        return super().request(method, url, *args, **kwargs)


def authorized_session(
    workspace: Workspace, participant_id: str, platform: str
) -> AuthorizedSession:
    """Return an :class:`AuthorizedSession` for one participant's connection.

    Raises ReauthRequired when the connection was revoked or needs reconnecting,
    and TokenDecryptError when its tokens do not decrypt.
    """
    try:
        platform_config = platforms.get(platform)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    try:
        resolved = resolve(platform_config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    record = _load(workspace, participant_id, platform_config.name)
    _require_usable(record)
    _require_same_origin(record, resolved)
    tokens = record.open_tokens(vault.require_key(workspace.key))
    session = AuthorizedSession(workspace, resolved, participant_id, tokens)
    session._refresh_if_due()
    return session
