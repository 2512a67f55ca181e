"""The master key: where it is found, how it is stored, and the keys derived from it.

The master key is 32 random bytes written as 64 hex characters. It is looked up in
order: the ``TWINME_KEY`` environment variable, the file named by
``TWINME_KEY_FILE``, then the per-workspace key file that ``init`` wrote in the user
config directory. Subkeys for the database and for the token vault are derived with
HKDF-SHA256, so that one leaked subkey does not reveal the other.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import WorkspaceKeyError

KEY_ENV = "TWINME_KEY"
KEY_FILE_ENV = "TWINME_KEY_FILE"
DATABASE_KEY_ENV = "TWINME_DATABASE_KEY"
CONFIG_DIR_ENV = "TWINME_CONFIG_DIR"
KEY_BYTES = 32

_DB_KEY_INFO = b"twinme-lab database key v1"
_TOKEN_KEY_INFO = b"twinme-lab token key v1"


@dataclass(frozen=True)
class MasterKey:
    """A master key and a description of where it came from (never the key)."""

    raw: bytes
    origin: str

    def __repr__(self) -> str:
        return f"MasterKey(origin={self.origin!r})"

    @property
    def key_id(self) -> str:
        """Return a short public identifier of the key, safe to store and log."""
        digest = hashes.Hash(hashes.SHA256())
        digest.update(b"twinme-lab key id" + self.raw)
        return digest.finalize()[:6].hex()

    def database_key(self) -> str:
        """Return the DuckDB encryption key, as hex, derived from the master key."""
        return _derive(self.raw, _DB_KEY_INFO).hex()

    def token_key(self) -> bytes:
        """Return the 32-byte AES-GCM key of the token vault."""
        return _derive(self.raw, _TOKEN_KEY_INFO)


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        master
    )


def generate_key() -> str:
    """Return a new master key as 64 hex characters."""
    return secrets.token_hex(KEY_BYTES)


def parse_key(text: str, origin: str) -> MasterKey:
    """Parse 64 hex characters into a :class:`MasterKey`, naming ``origin`` on error."""
    cleaned = text.strip()
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise WorkspaceKeyError(
            f"The key in {origin} is not 64 hexadecimal characters; restore the key "
            "saved when the workspace was created."
        )
    return MasterKey(raw, origin)


def config_dir() -> Path:
    """Return the folder that holds per-workspace key files."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir("twinme-lab"))


def default_key_file(workspace_id: str) -> Path:
    """Return the path of the key file ``init`` writes for a workspace."""
    return config_dir() / "keys" / f"{workspace_id}.key"


def write_key_file(path: Path, key_hex: str) -> None:
    """Write a new key file readable by its owner only; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise WorkspaceKeyError(
            f"A key file already exists at {path}; move it away only if no "
            "workspace uses it."
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key_hex + "\n")


def replace_key_file(path: Path, key_hex: str) -> None:
    """Atomically replace a key file with a new key, keeping mode 0600."""
    temporary = path.with_name(path.name + ".new")
    if temporary.exists():
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key_hex + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_key_file(path: Path) -> MasterKey:
    """Read a key file, rejecting it when group or others can read it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise WorkspaceKeyError(f"The key file {path} does not exist.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WorkspaceKeyError(
            f"The key file {path} is readable by other users (mode "
            f"{stat.S_IMODE(mode):o}); run 'chmod 600 {path}' and try again."
        )
    return parse_key(path.read_text(), f"the key file {path}")


def find_master_key(workspace_id: str | None) -> MasterKey:
    """Find the master key for a workspace, or raise naming every place looked in."""
    value = os.environ.get(KEY_ENV)
    if value:
        return parse_key(value, f"the {KEY_ENV} environment variable")

    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return read_key_file(Path(named))

    looked = [f"{KEY_ENV} (not set)", f"{KEY_FILE_ENV} (not set)"]
    if workspace_id:
        path = default_key_file(workspace_id)
        if path.exists():
            return read_key_file(path)
        looked.append(f"{path} (not found)")
    raise WorkspaceKeyError(
        "No workspace key found; looked in " + ", ".join(looked) + ". Set "
        f"{KEY_ENV} to the 64-character key, or {KEY_FILE_ENV} to the file that "
        "holds it."
    )


@dataclass(frozen=True)
class DatabaseKey:
    """A derived database key handed to a worker process instead of the master key.

    It opens the database and nothing else: the token vault needs the master key,
    so a report kernel or a Dask worker holding only this key cannot read tokens.
    """

    database_key_hex: str
    origin: str = f"the {DATABASE_KEY_ENV} environment variable"

    def __repr__(self) -> str:
        return f"DatabaseKey(origin={self.origin!r})"

    @property
    def key_id(self) -> str:
        raise WorkspaceKeyError(
            "This process has only the database key; key ids and the token vault "
            "need the master key (TWINME_KEY or TWINME_KEY_FILE)."
        )

    def database_key(self) -> str:
        return self.database_key_hex

    def token_key(self) -> bytes:
        raise WorkspaceKeyError(
            "This process has only the database key; reading or writing platform "
            "tokens needs the master key (TWINME_KEY or TWINME_KEY_FILE)."
        )


def find_workspace_key(workspace_id: str | None) -> MasterKey | DatabaseKey:
    """Find the key that opens a workspace: a delegated database key or the master.

    ``TWINME_DATABASE_KEY`` (64 hex characters, as :meth:`MasterKey.database_key`
    returns) comes first, because a process that was given only that key was meant
    to use only that key.
    """
    value = os.environ.get(DATABASE_KEY_ENV)
    if value:
        cleaned = value.strip().lower()
        if len(cleaned) != 2 * KEY_BYTES or any(
            c not in "0123456789abcdef" for c in cleaned
        ):
            raise WorkspaceKeyError(
                f"The {DATABASE_KEY_ENV} environment variable is not 64 hexadecimal "
                "characters; unset it or pass the database key of this workspace."
            )
        return DatabaseKey(cleaned)
    return find_master_key(workspace_id)
