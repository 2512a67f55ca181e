"""The authorization code flow: begin, receive the callback, store the connection.

:func:`connect` runs the whole flow; :func:`begin` and :func:`complete` are its two
halves, for callers that deliver the callback themselves.
"""

from __future__ import annotations

import getpass
import logging
import webbrowser
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from .. import participants, platforms, vault
from ..errors import NotFoundError, UsageError
from ..platforms.config import ConfigError, ResolvedPlatform, resolve
from ..workspace import Workspace
from . import records, state
from .client import (
    TOKEN_TIMEOUT,
    client_auth_kwargs,
    expires_at_from,
    new_session,
    oauth_error_text,
    with_retries,
)
from .errors import AccountBoundError, OAuthFlowError
from .revoke import revoke_tokens

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT = 300.0


@dataclass
class PendingAuthorization:
    """An authorization request waiting for its callback. Holds the secrets."""

    resolved: ResolvedPlatform
    participant_id: str
    url: str = field(repr=False)
    state: str = field(repr=False)
    session: OAuth2Session = field(repr=False)
    scopes: list[str]

    @property
    def verifier(self) -> str | None:
        # requests-oauthlib 2.0 keeps the PKCE verifier on this attribute.
        return getattr(self.session, "_code_verifier", None)


def resolve_platform(name: str) -> ResolvedPlatform:
    """Resolve a platform by name, turning lookup problems into usage errors."""
    try:
        platform = platforms.get(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    try:
        return resolve(platform)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def begin(
    workspace: Workspace,
    platform: str,
    participant_id: str,
    optional_scopes: tuple[str, ...] = (),
) -> PendingAuthorization:
    """Create the authorization URL and record its hashed state."""
    vault.require_key(workspace.key)
    resolved = resolve_platform(platform)
    with workspace.connect() as con:
        participants.require(con, participant_id)

    known_optional = {s.name for s in resolved.platform.scopes if s.optional}
    unknown = sorted(set(optional_scopes) - known_optional)
    if unknown:
        raise UsageError(
            f"{resolved.platform.display_name} has no optional scope "
            f"{', '.join(unknown)}; choose from {sorted(known_optional) or 'none'}."
        )
    scopes = resolved.platform.scope_names() + list(optional_scopes)
    session = new_session(resolved, scope=scopes, pkce=resolved.platform.pkce)
    value = state.new_state()
    url, _ = session.authorization_url(
        resolved.authorize_url, state=value, **resolved.platform.extra_authorize_params
    )
    pending = PendingAuthorization(
        resolved, participant_id, url, value, session, scopes
    )
    state.record_state(
        workspace,
        value,
        participant_id,
        resolved.name,
        resolved.origin(),
        pending.verifier,
        resolved.redirect_uri,
    )
    log.info(
        "authorization request started for %s on %s", participant_id, resolved.name
    )
    return pending


def _exchange_code(pending: PendingAuthorization, code: str) -> dict:
    resolved = pending.resolved
    session = pending.session

    def fetch() -> dict:
        return session.fetch_token(
            resolved.token_url,
            code=code,
            timeout=TOKEN_TIMEOUT,
            verify=resolved.verify,
            **client_auth_kwargs(resolved),
        )

    try:
        return with_retries(fetch, f"{resolved.platform.display_name} code exchange")
    except Warning as changed:
        # oauthlib raises Warning when fewer scopes were granted than requested;
        # the granted ones are recorded instead.
        token = dict(changed.token)
        session.token = token
        return token
    except OAuth2Error as exc:
        raise OAuthFlowError(
            f"{resolved.platform.display_name} rejected the authorization code for "
            f"{pending.participant_id}: {oauth_error_text(exc)}. Start again."
        ) from None


def fetch_account_id(resolved: ResolvedPlatform, session: OAuth2Session) -> str:
    """Return the signed-in account's id from the platform's identity endpoint."""
    response = session.get(
        resolved.api_url(resolved.platform.identity_path),
        timeout=TOKEN_TIMEOUT,
        verify=resolved.verify,
    )
    if response.status_code != 200:
        raise OAuthFlowError(
            f"{resolved.platform.display_name}'s identity endpoint returned HTTP "
            f"{response.status_code}; the connection was not stored."
        )
    try:
        return resolved.platform.account_id(response.json())
    except ValueError as exc:
        raise OAuthFlowError(
            f"{resolved.platform.display_name}'s identity response is invalid: {exc}."
        ) from None


def _granted_scopes(token: dict, requested: list[str]) -> str:
    scope = token.get("scope")
    if scope is None:
        # RFC 6749 section 5.1: an omitted scope means the requested scope.
        return " ".join(requested)
    if isinstance(scope, str):
        return " ".join(scope.split())
    return " ".join(scope)


def complete(
    workspace: Workspace, pending: PendingAuthorization, callback: dict | str
) -> dict:
    """Check a callback, exchange its code, and store the connection."""
    from .callback import parse_callback

    params = parse_callback(callback) if isinstance(callback, str) else callback
    resolved = pending.resolved
    display = resolved.platform.display_name
    state.consume_state(
        workspace,
        params.get("state", ""),
        pending.participant_id,
        resolved.name,
        resolved.origin(),
        pending.verifier,
        pending.session.redirect_uri,
    )
    if "error" in params:
        raise OAuthFlowError(
            f"{display} did not grant access for {pending.participant_id}: "
            f"{params['error']}. Start again if the participant wants to connect."
        )
    code = params.get("code")
    if not code:
        raise OAuthFlowError(f"The {display} callback has no code; start again.")

    token = _exchange_code(pending, code)
    now = datetime.now(UTC)
    tokens = records.Tokens(
        access_token=token.get("access_token"),
        refresh_token=token.get("refresh_token"),
        token_type=token.get("token_type") or resolved.platform.token_type,
        expires_at=expires_at_from(token, resolved.platform.default_token_lifetime),
    )
    account_id = fetch_account_id(resolved, pending.session)

    with workspace.connect() as con:
        con.execute("BEGIN")
        owner = records.find_account(con, resolved.name, resolved.origin(), account_id)
        if owner is not None and owner != pending.participant_id:
            con.execute("ROLLBACK")
            revoke_tokens(resolved, tokens)
            raise AccountBoundError(
                f"This {display} account is already connected to participant "
                f"{owner}; the new token was revoked and nothing was stored. Ask "
                "the participant to sign in with their own account."
            )
        records.write_connection(
            con,
            workspace,
            pending.participant_id,
            resolved.name,
            resolved.origin(),
            account_id,
            tokens,
            _granted_scopes(token, pending.scopes),
            now,
        )
        workspace.audit(
            con, "oauth.connect", pending.participant_id, {"connections": 1}
        )
        con.execute("COMMIT")
    log.info("connected %s on %s", pending.participant_id, resolved.name)
    with workspace.connect() as con:
        return records.load(con, pending.participant_id, resolved.name).public()


def _is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname == "127.0.0.1"


def connect(
    workspace: Workspace,
    platform: str,
    participant_id: str,
    open_browser: bool = True,
    timeout: float = CALLBACK_TIMEOUT,
    optional_scopes: tuple[str, ...] = (),
    read_redirect=None,
    open_url=None,
) -> dict:
    """Connect a participant's platform account and store its tokens encrypted.

    With ``open_browser`` the authorization URL opens in the browser that
    Python's ``webbrowser`` module picks (the ``BROWSER`` variable chooses it) and
    a loopback server on the redirect URI's port receives the callback. Without
    it, or when the redirect URI is not ``http://127.0.0.1``, the URL is shown in
    the prompt of ``read_redirect`` (``getpass.getpass`` by default, so the code
    stays out of notebook outputs), which returns the address the browser ended
    on. ``open_url`` replaces ``webbrowser.open`` (see :func:`sandbox_browser`).
    Returns the stored connection without its tokens.
    """
    from .callback import CallbackServer

    pending = begin(workspace, platform, participant_id, optional_scopes)
    if open_browser and _is_loopback_http(pending.resolved.redirect_uri):
        with CallbackServer(pending.resolved.redirect_uri, pending.state) as server:
            if not (open_url or webbrowser.open)(pending.url):
                log.warning("no browser could be opened for the authorization URL")
            params = server.wait(timeout)
        return complete(workspace, pending, params)

    if open_browser:
        (open_url or webbrowser.open)(pending.url)
    prompt = (
        f"Open this address in a browser where the participant signs in to "
        f"{pending.resolved.platform.display_name}:\n\n{pending.url}\n\n"
        "After they approve, paste the full address the browser ends on "
        "(input is hidden): "
    )
    reader = read_redirect or getpass.getpass
    pasted = reader(prompt)
    if not pasted or not pasted.strip():
        raise OAuthFlowError("No address was pasted; the connection was cancelled.")
    return complete(workspace, pending, pasted)


def sandbox_browser():
    """Return an ``open_url`` for :func:`connect` that plays the browser's part.

    It requests the authorization URL and follows the sandbox's redirect to the
    loopback callback, so a sandbox started with auto-consent connects without a
    browser (demos, notebooks, tests). It only works while ``TWINME_SANDBOX_URL``
    is set and only requests URLs under it.
    """
    import requests

    from ..platforms.config import sandbox_ca, sandbox_url

    base = sandbox_url()
    if base is None:
        raise UsageError(
            "sandbox_browser needs TWINME_SANDBOX_URL; it never signs in to a real "
            "platform."
        )
    verify = sandbox_ca()

    def open_url(url: str) -> bool:
        if not url.startswith(base + "/"):
            raise UsageError(f"sandbox_browser only opens URLs under {base}.")
        response = requests.get(url, verify=verify, timeout=TOKEN_TIMEOUT)
        return response.ok

    return open_url


def disconnect(workspace: Workspace, platform: str, participant_id: str) -> dict:
    """Revoke a connection's tokens at the platform where possible and delete them.

    The row stays, with status ``revoked``, so the listing shows what happened.
    """
    try:
        platform_config = platforms.get(platform)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    with workspace.connect() as con:
        record = records.load(con, participant_id, platform_config.name)
    if record is None:
        raise NotFoundError(
            f"{participant_id} has no {platform_config.display_name} connection; "
            "run 'twinme-lab connections' to list the stored ones."
        )

    revoked, message = False, "No tokens were stored."
    try:
        resolved = resolve(platform_config)
    except ConfigError as exc:
        resolved, message = None, f"Not revoked at the platform: {exc}"
    if resolved is not None and record.access_token is not None:
        if record.origin != resolved.origin():
            message = (
                f"Not revoked: the connection was made against the {record.origin}, "
                f"and this process is set up for the {resolved.origin()}."
            )
        else:
            try:
                tokens = record.open_tokens(vault.require_key(workspace.key))
            except vault.TokenDecryptError as exc:
                message = f"Not revoked: {exc}"
            else:
                revoked, message = revoke_tokens(resolved, tokens)

    records.set_status(
        workspace,
        participant_id,
        platform_config.name,
        records.REVOKED,
        "disconnected" + ("" if revoked else "; " + message),
        drop_tokens=True,
    )
    with workspace.connect() as con:
        workspace.audit(con, "oauth.disconnect", participant_id, {"connections": 1})
    log.info("disconnected %s on %s", participant_id, platform_config.name)
    return {
        "participant_id": participant_id,
        "platform": platform_config.name,
        "revoked_at_platform": revoked,
        "message": message,
    }


def revoke_all_for_forget(workspace: Workspace, participant_id: str) -> None:
    """Revoke and delete every connection of a participant (a before_forget hook)."""
    with workspace.connect() as con:
        rows = records.load_all(con, participant_id)
    for record in rows:
        if record.status == records.REVOKED and record.access_token is None:
            continue
        result = disconnect(workspace, record.platform, participant_id)
        if not result["revoked_at_platform"]:
            log.warning(
                "forget: %s token of %s not revoked at the platform: %s",
                record.platform,
                participant_id,
                result["message"],
            )
