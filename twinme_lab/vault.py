"""Field-level token encryption with AES-256-GCM under the workspace token key.

Each ciphertext is stored as ``nonce (12 bytes) || ciphertext || tag`` beside the
id of the master key whose token key sealed it. The associated data binds the
ciphertext to its row and column: participant, platform, account id, key id and
field name, so a ciphertext copied onto another row or column fails to decrypt.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import TwinMeError, WorkspaceKeyError
from .keys import MasterKey

NONCE_BYTES = 12


class TokenDecryptError(TwinMeError):
    """A stored token does not decrypt under the workspace key and its row."""


def associated_data(
    participant_id: str, platform: str, account_id: str, key_id: str, field: str
) -> bytes:
    """Return the associated data that binds a ciphertext to one row and column."""
    parts = (participant_id, platform, account_id, key_id, field)
    for part in parts:
        if "|" in part:
            raise ValueError(f"invalid character '|' in {part!r}")
    return "|".join(parts).encode()


def require_key(key: MasterKey | None) -> MasterKey:
    """Return the key, or raise when the workspace is not encrypted."""
    if key is None:
        raise WorkspaceKeyError(
            "This workspace is not encrypted, so it cannot store platform tokens; "
            "create an encrypted workspace with 'twinme-lab init'."
        )
    return key


def seal(key: MasterKey, plaintext: str, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` under the token key of ``key``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key.token_key()).encrypt(nonce, plaintext.encode(), aad)


def open_sealed(key: MasterKey, blob: bytes, aad: bytes, description: str) -> str:
    """Decrypt a sealed token; the error names it with ``description``."""
    if blob is None or len(blob) <= NONCE_BYTES:
        raise TokenDecryptError(f"The stored {description} is missing or truncated.")
    nonce, body = bytes(blob[:NONCE_BYTES]), bytes(blob[NONCE_BYTES:])
    try:
        return AESGCM(key.token_key()).decrypt(nonce, body, aad).decode()
    except InvalidTag:
        raise TokenDecryptError(
            f"The stored {description} does not decrypt: it was sealed under another "
            "key or belongs to another connection. Disconnect and connect again."
        ) from None
