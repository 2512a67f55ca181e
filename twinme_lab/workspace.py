"""Workspaces: a folder holding one encrypted DuckDB file and its reports.

A workspace is found as ``--workspace DIR``, else ``TWINME_WORKSPACE``, else
``data/workspace``. The folder holds ``workspace.json`` (the workspace id, which
names its key file, and nothing personal), ``twinme.duckdb``, DuckDB's encrypted
temp folder ``tmp/``, and ``reports/``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import duckdb

from . import keys, store
from .errors import StoreError, WorkspaceError

log = logging.getLogger(__name__)

WORKSPACE_ENV = "TWINME_WORKSPACE"
DEFAULT_WORKSPACE = Path("data") / "workspace"
DB_NAME = "twinme.duckdb"
META_NAME = "workspace.json"


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """Return the workspace folder from an argument, the environment or the default."""
    if path:
        return Path(path)
    env = os.environ.get(WORKSPACE_ENV)
    if env:
        return Path(env)
    return DEFAULT_WORKSPACE


@dataclass
class Workspace:
    """An initialised workspace folder. Open it with :func:`open_workspace`.

    With ``read_only``, :meth:`connect` attaches the database read-only unless
    called with ``read_only=False``, so any number of processes can read it at once.
    """

    root: Path
    workspace_id: str
    key: keys.MasterKey | keys.DatabaseKey | None = field(repr=False)
    read_only: bool = False
    # Connections kept open by keep_open(), by thread id.
    _kept_connections: dict = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def encrypted(self) -> bool:
        return self.key is not None

    def _database_key(self) -> str | None:
        return self.key.database_key() if self.key else None

    def _key_origin(self) -> str:
        return self.key.origin if self.key else "no key (unencrypted workspace)"

    def worker_environment(self) -> dict[str, str]:
        """Return the variables a worker process needs to open this workspace.

        Only the derived database key is passed, never the master key, so the
        worker can read the database but not the token vault.
        """
        if self.key is None:
            return {}
        return {keys.DATABASE_KEY_ENV: self.key.database_key()}

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def temp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @contextmanager
    def connect(
        self, read_only: bool | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the database for one call; the file is closed when the block ends.

        ``read_only`` defaults to the workspace's own setting. Inside
        :meth:`keep_open` in the same thread, the kept connection is returned
        instead and stays open, in the mode it was opened with.
        """
        kept_connection = self._kept_connections.get(threading.get_ident())
        if kept_connection is not None:
            try:
                yield kept_connection
            except (duckdb.Error, RuntimeError) as exc:
                self._raise_store_error(exc)
            return
        if read_only is None:
            read_only = self.read_only
        con = store.new_connection(self.temp_dir)
        try:
            store.attach(
                con,
                self.db_path,
                self._database_key(),
                key_origin=self._key_origin(),
                read_only=read_only,
            )
            con.execute(f"USE {store.ALIAS}")
            yield con
        except (duckdb.Error, RuntimeError) as exc:
            self._raise_store_error(exc)
        finally:
            con.close()

    def _raise_store_error(self, exc: Exception) -> NoReturn:
        """Raise a DuckDB error of a block as :class:`StoreError`, key scrubbed.

        Ctrl-C during a query, which DuckDB reports as an error of its own,
        becomes KeyboardInterrupt again, so callers that stop on it do. Other
        RuntimeErrors are not DuckDB's and are raised unchanged.
        """
        if store.is_interrupt(exc):
            raise KeyboardInterrupt from None
        if not isinstance(exc, duckdb.Error):
            raise exc
        raise StoreError(store.scrub(str(exc), self._database_key() or "")) from None

    @contextmanager
    def keep_open(self, read_only: bool | None = None) -> Iterator[None]:
        """Keep one connection open for the block; :meth:`connect` calls reuse it.

        Each new connection loads and verifies DuckDB's cipher extension, which
        took about 80 ms against 3 ms for the ATTACH itself (DuckDB 1.5.5, on a
        2-core Linux machine), so a run of reads is cheaper on one connection.
        The file stays locked for the whole block, in the mode that
        ``read_only`` sets (default: the workspace's setting). Only calls from
        this thread reuse the connection, and a nested ``keep_open`` does nothing.
        """
        ident = threading.get_ident()
        if ident in self._kept_connections:
            yield
            return
        with self.connect(read_only) as con:
            self._kept_connections[ident] = con
            try:
                yield
            finally:
                del self._kept_connections[ident]

    def audit(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: str,
        participant_id: str | None = None,
        counts: dict | None = None,
    ) -> None:
        """Record a command in the audit table: its kind, participant and counts."""
        con.execute(
            "INSERT INTO audit_log (occurred_at, kind, participant_id, counts) "
            "VALUES (now(), ?, ?, ?)",
            [kind, participant_id, json.dumps(counts or {}, sort_keys=True)],
        )

    def rebuild(self, new_key: keys.MasterKey | None = None) -> None:
        """Copy the database into a fresh encrypted file and swap it in atomically.

        Deleted rows survive in a DuckDB file's freed pages until they are reused;
        copying leaves them behind. With ``new_key`` the copy is encrypted under it.
        """
        target_key = new_key or self.key
        target_hex = target_key.database_key() if target_key else None
        fresh = self.root / (DB_NAME + ".rebuild")
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)

        con = store.new_connection(self.temp_dir)
        try:
            store.attach(
                con, self.db_path, self._database_key(), key_origin=self._key_origin()
            )
            store.attach(con, fresh, target_hex, alias="fresh")
            con.execute(f"COPY FROM DATABASE {store.ALIAS} TO fresh")
            con.execute("CHECKPOINT fresh")
            con.execute("DETACH fresh")
            con.execute(f"DETACH {store.ALIAS}")
        except duckdb.Error as exc:
            fresh.unlink(missing_ok=True)
            raise StoreError(
                store.scrub(str(exc), self._database_key() or "", target_hex or "")
            ) from None
        finally:
            con.close()

        with open(fresh, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(fresh, self.db_path)
        self.db_path.with_name(DB_NAME + ".wal").unlink(missing_ok=True)
        store.fsync_directory(self.root)
        if new_key is not None:
            self.key = new_key


def read_meta(root: Path) -> dict:
    """Read ``workspace.json``, raising a clear error when the folder is not one."""
    meta_path = root / META_NAME
    if not meta_path.is_file():
        raise WorkspaceError(
            f"{root} is not a Twin Me Lab workspace (no {META_NAME}); run "
            f"'twinme-lab init --workspace {root}' first."
        )
    try:
        meta = json.loads(meta_path.read_text())
        meta["workspace_id"]
    except (ValueError, KeyError, TypeError):
        raise WorkspaceError(
            f"{meta_path} is damaged: it has no workspace_id."
        ) from None
    return meta


def init_workspace(
    path: str | os.PathLike | None = None, encrypted: bool = True
) -> tuple[Workspace, str]:
    """Create a workspace and its encrypted database.

    Returns the workspace and a description of where its key lives. The key comes
    from ``TWINME_KEY`` or ``TWINME_KEY_FILE`` when either is set; otherwise a new
    key is written to the user config directory with mode 0600. ``encrypted=False``
    makes a plain DuckDB file with no key, for tests and benchmarks that inspect the
    raw bytes; it cannot hold platform tokens.
    """
    root = resolve_path(path)
    if (root / META_NAME).exists() or (root / DB_NAME).exists():
        raise WorkspaceError(
            f"{root} already contains a workspace; nothing was changed."
        )

    workspace_id = uuid.uuid4().hex
    key_path = None
    key: keys.MasterKey | None
    if not encrypted:
        key = None
    elif os.environ.get(keys.KEY_ENV) or os.environ.get(keys.KEY_FILE_ENV):
        key = keys.find_master_key(None)
    else:
        key_hex = keys.generate_key()
        key_path = keys.default_key_file(workspace_id)
        keys.write_key_file(key_path, key_hex)
        key = keys.parse_key(key_hex, f"the key file {key_path}")

    root.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(root, workspace_id, key)
    try:
        with workspace.connect() as con:
            store.migrate(con)
            con.execute(
                "INSERT INTO workspace_settings VALUES ('workspace_id', ?), "
                "('key_id', ?)",
                [workspace_id, key.key_id if key else "none"],
            )
            workspace.audit(con, "init")
    except BaseException:
        # A half-created workspace would be mistaken for a real one later.
        for leftover in (workspace.db_path, root / (DB_NAME + ".wal")):
            leftover.unlink(missing_ok=True)
        if key_path is not None:
            key_path.unlink(missing_ok=True)
        raise
    (root / META_NAME).write_text(
        json.dumps(
            {"workspace_id": workspace_id, "format": 1, "encrypted": encrypted},
            indent=2,
        )
        + "\n"
    )
    log.info("initialised workspace %s", root)
    return workspace, workspace._key_origin()


def _finish_interrupted_rotation(root: Path, workspace_id: str) -> None:
    """Complete a key rotation that was interrupted, before the key is looked up.

    A rotation whose key lives in a file is finished here. One whose key came from
    ``TWINME_KEY`` is left to ``rotate-key``, the only command that prints the new
    key, because no file holds it.
    """
    pending = keys.config_dir() / "keys" / f"{workspace_id}.rotation"
    if not pending.is_file():
        return
    if os.environ.get(keys.KEY_ENV):
        raise keys.WorkspaceKeyError(
            f"A key rotation of {root} was interrupted; run 'twinme-lab rotate-key "
            f"--workspace {root}' to finish it and print the new key."
        )
    from . import rotation

    rotation.recover(root)


def open_workspace(
    path: str | os.PathLike | None = None, read_only: bool = False
) -> Workspace:
    """Open an existing workspace, check its key, and apply pending migrations.

    With ``read_only``, the workspace's connections are read-only (see
    :class:`Workspace`). The check for pending migrations then opens the
    database read-only too, and only when a migration is pending is it opened
    read-write once to apply it.
    """
    root = resolve_path(path)
    meta = read_meta(root)
    if not (root / DB_NAME).is_file():
        raise WorkspaceError(f"{root} has no {DB_NAME}; the workspace is incomplete.")
    _finish_interrupted_rotation(root, meta["workspace_id"])
    if meta.get("encrypted", True):
        key = keys.find_workspace_key(meta["workspace_id"])
    else:
        key = None
    workspace = Workspace(root, meta["workspace_id"], key, read_only=read_only)
    if read_only:
        latest = max(version for version, _, _ in store.migration_files())
        with workspace.connect() as con:
            if store.schema_version(con) >= latest:
                return workspace
    with workspace.connect(read_only=False) as con:
        store.migrate(con)
    return workspace
