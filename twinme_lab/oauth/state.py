"""Authorization request state: random, single-use, hashed, and short-lived.

The state sent to the platform is 32 random bytes. Only its SHA-256 is stored,
with the participant, platform, origin, redirect URI and the SHA-256 of the PKCE
verifier it was issued with. A callback is accepted once, within
``STATE_LIFETIME`` of the request, and only by the request it was issued for.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from ..workspace import Workspace
from .errors import StateError

STATE_LIFETIME = timedelta(minutes=10)


def sha256_hex(text: str) -> str:
    """Return the hex SHA-256 of a text."""
    return hashlib.sha256(text.encode()).hexdigest()


def new_state() -> str:
    """Return a new random state value (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def record_state(
    workspace: Workspace,
    state: str,
    participant_id: str,
    platform: str,
    origin: str,
    verifier: str | None,
    redirect_uri: str,
    now: datetime | None = None,
) -> None:
    """Store the hash of a new state and what it is bound to; drop expired ones."""
    now = now or datetime.now(UTC)
    with workspace.connect() as con:
        con.execute("BEGIN")
        con.execute(
            "DELETE FROM oauth_states WHERE expires_at < ?", [now - STATE_LIFETIME]
        )
        con.execute(
            "INSERT INTO oauth_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                sha256_hex(state),
                participant_id,
                platform,
                origin,
                sha256_hex(verifier) if verifier else None,
                redirect_uri,
                now,
                now + STATE_LIFETIME,
            ],
        )
        con.execute("COMMIT")


def consume_state(
    workspace: Workspace,
    state: str,
    participant_id: str,
    platform: str,
    origin: str,
    verifier: str | None,
    redirect_uri: str,
    now: datetime | None = None,
) -> None:
    """Mark a state used, raising :class:`StateError` unless it matches the request.

    The state is marked used before any check, so a state that fails once cannot
    be tried again.
    """
    now = now or datetime.now(UTC)
    digest = sha256_hex(state or "")
    with workspace.connect() as con:
        con.execute("BEGIN")
        row = con.execute(
            "SELECT participant_id, platform, origin, verifier_sha256, redirect_uri, "
            "expires_at, used_at FROM oauth_states WHERE state_sha256 = ?",
            [digest],
        ).fetchone()
        if row is not None and row[6] is None:
            con.execute(
                "UPDATE oauth_states SET used_at = ? WHERE state_sha256 = ?",
                [now, digest],
            )
        con.execute("COMMIT")

    where = f"for {participant_id} on {platform}"
    if row is None:
        raise StateError(
            f"The callback's state is unknown {where}; start the connection again."
        )
    bound_to = tuple(row[:3])
    verifier_hash, uri, expires, used = row[3:]
    if used is not None:
        raise StateError(
            f"The callback's state was already used {where}; a callback is accepted "
            "once. Start the connection again."
        )
    if bound_to != (participant_id, platform, origin):
        raise StateError(
            f"The callback's state was issued for another request, not {where}; "
            "start the connection again."
        )
    if expires < now:
        raise StateError(
            f"The callback's state expired {where} (states last "
            f"{int(STATE_LIFETIME.total_seconds() // 60)} minutes); start again."
        )
    expected_verifier = sha256_hex(verifier) if verifier else None
    if verifier_hash != expected_verifier:
        raise StateError(
            f"The PKCE verifier does not match the request {where}; start again."
        )
    if uri != redirect_uri:
        raise StateError(
            f"The redirect URI differs from the one the request used {where}; "
            "start again."
        )
