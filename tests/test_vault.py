"""AES-GCM token fields: round trip, binding to the row, and key separation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from twinme_lab import keys, participants, vault
from twinme_lab.errors import WorkspaceKeyError
from twinme_lab.oauth import records

KEY = keys.parse_key("11" * 32, "test key")
OTHER_KEY = keys.parse_key("22" * 32, "other test key")


def aad(**changes) -> bytes:
    parts = {
        "participant_id": "P1",
        "platform": "spotify",
        "account_id": "acct-1",
        "key_id": KEY.key_id,
        "field": "access_token",
    }
    parts.update(changes)
    return vault.associated_data(**parts)


def test_seal_round_trip():
    blob = vault.seal(KEY, "token-value", aad())
    assert vault.open_sealed(KEY, blob, aad(), "token") == "token-value"
    assert b"token-value" not in blob


def test_seal_uses_fresh_nonces():
    first = vault.seal(KEY, "token-value", aad())
    second = vault.seal(KEY, "token-value", aad())
    assert first[: vault.NONCE_BYTES] != second[: vault.NONCE_BYTES]
    assert first != second


@pytest.mark.parametrize(
    "changes",
    [
        {"participant_id": "P2"},
        {"platform": "github"},
        {"account_id": "acct-2"},
        {"key_id": "000000000000"},
        {"field": "refresh_token"},
    ],
)
def test_other_row_fails_to_decrypt(changes):
    blob = vault.seal(KEY, "token-value", aad())
    with pytest.raises(vault.TokenDecryptError, match="does not decrypt"):
        vault.open_sealed(KEY, blob, aad(**changes), "token")


def test_other_key_fails_to_decrypt():
    blob = vault.seal(KEY, "token-value", aad())
    with pytest.raises(vault.TokenDecryptError):
        vault.open_sealed(OTHER_KEY, blob, aad(), "token")


def test_flipped_bit_fails_to_decrypt():
    blob = bytearray(vault.seal(KEY, "token-value", aad()))
    blob[-1] ^= 1
    with pytest.raises(vault.TokenDecryptError):
        vault.open_sealed(KEY, bytes(blob), aad(), "token")


def test_truncated_blob_rejected():
    with pytest.raises(vault.TokenDecryptError, match="truncated"):
        vault.open_sealed(KEY, b"short", aad(), "token")


def test_separator_in_identity_rejected():
    with pytest.raises(ValueError, match="invalid character"):
        aad(account_id="a|b")


def test_token_key_differs_from_database_key():
    assert KEY.token_key().hex() != KEY.database_key()
    assert KEY.token_key() != OTHER_KEY.token_key()


def test_unencrypted_workspace_refused():
    with pytest.raises(WorkspaceKeyError, match="not encrypted"):
        vault.require_key(None)


def _store(workspace, participant_id, account_id, access, refresh):
    now = datetime.now(UTC)
    tokens = records.Tokens(access, refresh, "Bearer", None)
    with workspace.connect() as con:
        records.write_connection(
            con,
            workspace,
            participant_id,
            "spotify",
            "sandbox",
            account_id,
            tokens,
            "user-top-read",
            now,
        )


def test_stored_row_round_trip(workspace):
    participants.add(workspace, "P1")
    _store(workspace, "P1", "acct-1", "access-1", "refresh-1")
    with workspace.connect() as con:
        record = records.load(con, "P1", "spotify")
        raw = con.execute(
            "SELECT access_token, refresh_token, key_id FROM connections"
        ).fetchone()
    tokens = record.open_tokens(workspace.key)
    assert tokens.access_token == "access-1"
    assert tokens.refresh_token == "refresh-1"
    assert raw[2] == workspace.key.key_id
    assert b"access-1" not in bytes(raw[0])
    assert "access-1" not in repr(record)
    assert "access-1" not in repr(tokens)


def test_ciphertext_copied_to_other_row_fails(workspace):
    participants.add(workspace, "P1")
    participants.add(workspace, "P2")
    _store(workspace, "P1", "acct-1", "access-1", "refresh-1")
    _store(workspace, "P2", "acct-2", "access-2", "refresh-2")
    with workspace.connect() as con:
        con.execute(
            "UPDATE connections SET access_token = (SELECT access_token FROM "
            "connections WHERE participant_id = 'P1') WHERE participant_id = 'P2'"
        )
        first = records.load(con, "P1", "spotify")
        second = records.load(con, "P2", "spotify")
    assert first.open_tokens(workspace.key).access_token == "access-1"
    with pytest.raises(vault.TokenDecryptError, match="P2 on spotify"):
        second.open_tokens(workspace.key)


def test_access_ciphertext_in_refresh_column_fails(workspace):
    participants.add(workspace, "P1")
    _store(workspace, "P1", "acct-1", "access-1", "refresh-1")
    with workspace.connect() as con:
        con.execute("UPDATE connections SET refresh_token = access_token")
        record = records.load(con, "P1", "spotify")
    with pytest.raises(vault.TokenDecryptError, match="refresh"):
        record.open_tokens(workspace.key)
