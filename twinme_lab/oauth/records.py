"""Rows of the ``connections`` table, with tokens sealed and opened at field level."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from .. import vault
from ..keys import MasterKey
from ..workspace import Workspace

CONNECTED = "connected"
REQUIRES_REAUTH = "requires_reauth"
REVOKED = "revoked"

_COLUMNS = (
    "participant_id, platform, origin, account_id, status, status_reason, "
    "granted_scopes, consented_at, key_id, access_token, refresh_token, token_type, "
    "expires_at, refreshed_at, validated_at, last_extraction_at, updated_at"
)


@dataclass
class Tokens:
    """Decrypted tokens of one connection. Never logged or printed."""

    access_token: str | None
    refresh_token: str | None
    token_type: str
    expires_at: datetime | None

    def __repr__(self) -> str:
        return f"Tokens(token_type={self.token_type!r}, expires_at={self.expires_at})"


@dataclass
class ConnectionRecord:
    """One connection row, with its tokens still sealed."""

    participant_id: str
    platform: str
    origin: str
    account_id: str
    status: str
    status_reason: str | None
    granted_scopes: str | None
    consented_at: datetime
    key_id: str
    access_token: bytes | None = field(repr=False)
    refresh_token: bytes | None = field(repr=False)
    token_type: str | None
    expires_at: datetime | None
    refreshed_at: datetime | None
    validated_at: datetime | None
    last_extraction_at: datetime | None
    updated_at: datetime

    def aad(self, key_id: str, field_name: str) -> bytes:
        return vault.associated_data(
            self.participant_id, self.platform, self.account_id, key_id, field_name
        )

    def open_tokens(self, key: MasterKey) -> Tokens:
        """Decrypt the tokens, raising :class:`vault.TokenDecryptError` on failure."""
        description = f"token of {self.participant_id} on {self.platform}"
        if self.key_id != key.key_id:
            raise vault.TokenDecryptError(
                f"The {description} was sealed under key {self.key_id}, not the "
                f"workspace key {key.key_id}; disconnect and connect again."
            )
        access = None
        if self.access_token is not None:
            access = vault.open_sealed(
                key,
                self.access_token,
                self.aad(key.key_id, "access_token"),
                f"access {description}",
            )
        refresh = None
        if self.refresh_token is not None:
            refresh = vault.open_sealed(
                key,
                self.refresh_token,
                self.aad(key.key_id, "refresh_token"),
                f"refresh {description}",
            )
        return Tokens(access, refresh, self.token_type or "Bearer", self.expires_at)

    def public(self) -> dict:
        """Return the row without tokens, with times as ISO strings."""
        record = {
            "participant_id": self.participant_id,
            "platform": self.platform,
            "origin": self.origin,
            "account_id": self.account_id,
            "status": self.status,
            "status_reason": self.status_reason,
            "granted_scopes": self.granted_scopes,
            "has_refresh_token": self.refresh_token is not None,
        }
        for name in (
            "consented_at",
            "expires_at",
            "refreshed_at",
            "validated_at",
            "last_extraction_at",
            "updated_at",
        ):
            value = getattr(self, name)
            record[name] = value.astimezone(UTC).isoformat() if value else None
        return record


def _to_record(row: tuple) -> ConnectionRecord:
    values = list(row)
    for index in (9, 10):
        if values[index] is not None:
            values[index] = bytes(values[index])
    return ConnectionRecord(*values)


def load(con, participant_id: str, platform: str) -> ConnectionRecord | None:
    """Return the connection row, or None."""
    row = con.execute(
        f"SELECT {_COLUMNS} FROM connections WHERE participant_id = ? AND platform = ?",
        [participant_id, platform],
    ).fetchone()
    return _to_record(row) if row else None


def load_all(con, participant_id: str | None = None) -> list[ConnectionRecord]:
    """Return every connection row, or one participant's, ordered."""
    sql = f"SELECT {_COLUMNS} FROM connections"
    params: list = []
    if participant_id is not None:
        sql += " WHERE participant_id = ?"
        params.append(participant_id)
    sql += " ORDER BY participant_id, platform"
    return [_to_record(row) for row in con.execute(sql, params).fetchall()]


def find_account(con, platform: str, origin: str, account_id: str) -> str | None:
    """Return the participant a platform account is connected to, if any."""
    row = con.execute(
        "SELECT participant_id FROM connections WHERE platform = ? AND origin = ? "
        "AND account_id = ?",
        [platform, origin, account_id],
    ).fetchone()
    return row[0] if row else None


def seal_tokens(
    key: MasterKey,
    participant_id: str,
    platform: str,
    account_id: str,
    access_token: str | None,
    refresh_token: str | None,
) -> tuple[bytes | None, bytes | None]:
    """Seal an access and a refresh token for one row under ``key``."""

    def seal(value: str | None, field_name: str) -> bytes | None:
        if value is None:
            return None
        aad = vault.associated_data(
            participant_id, platform, account_id, key.key_id, field_name
        )
        return vault.seal(key, value, aad)

    return seal(access_token, "access_token"), seal(refresh_token, "refresh_token")


def write_connection(
    con,
    workspace: Workspace,
    participant_id: str,
    platform: str,
    origin: str,
    account_id: str,
    tokens: Tokens,
    granted_scopes: str | None,
    now: datetime,
) -> None:
    """Insert or replace a connection row with freshly sealed tokens."""
    key = vault.require_key(workspace.key)
    access, refresh = seal_tokens(
        key,
        participant_id,
        platform,
        account_id,
        tokens.access_token,
        tokens.refresh_token,
    )
    con.execute(
        "DELETE FROM connections WHERE participant_id = ? AND platform = ?",
        [participant_id, platform],
    )
    con.execute(
        f"INSERT INTO connections ({_COLUMNS}) VALUES "
        "(?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?)",
        [
            participant_id,
            platform,
            origin,
            account_id,
            CONNECTED,
            granted_scopes,
            now,
            key.key_id,
            access,
            refresh,
            tokens.token_type,
            tokens.expires_at,
            now,
        ],
    )


def update_tokens(
    con, workspace: Workspace, record: ConnectionRecord, tokens: Tokens, now: datetime
) -> None:
    """Store refreshed tokens on an existing row inside the caller's transaction."""
    key = vault.require_key(workspace.key)
    access, refresh = seal_tokens(
        key,
        record.participant_id,
        record.platform,
        record.account_id,
        tokens.access_token,
        tokens.refresh_token,
    )
    con.execute(
        "UPDATE connections SET access_token = ?, refresh_token = ?, key_id = ?, "
        "token_type = ?, expires_at = ?, refreshed_at = ?, updated_at = ?, "
        "status = ?, status_reason = NULL "
        "WHERE participant_id = ? AND platform = ?",
        [
            access,
            refresh,
            key.key_id,
            tokens.token_type,
            tokens.expires_at,
            now,
            now,
            CONNECTED,
            record.participant_id,
            record.platform,
        ],
    )


def set_status(
    workspace: Workspace,
    participant_id: str,
    platform: str,
    status: str,
    reason: str | None,
    drop_tokens: bool = False,
) -> None:
    """Set a connection's status and reason, optionally deleting its tokens."""
    now = datetime.now(UTC)
    drop = ", access_token = NULL, refresh_token = NULL" if drop_tokens else ""
    with workspace.connect() as con:
        con.execute(
            f"UPDATE connections SET status = ?, status_reason = ?, updated_at = ?"
            f"{drop} WHERE participant_id = ? AND platform = ?",
            [status, reason, now, participant_id, platform],
        )


def set_validated(
    workspace: Workspace, participant_id: str, platform: str, when: datetime
) -> None:
    """Record when a connection's token was last validated at the platform."""
    with workspace.connect() as con:
        con.execute(
            "UPDATE connections SET validated_at = ? "
            "WHERE participant_id = ? AND platform = ?",
            [when, participant_id, platform],
        )
