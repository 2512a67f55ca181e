"""Master key rotation that survives an interruption at any point.

Order of steps, each durable before the next starts:

1. A pending-rotation file (mode 0600, in the key folder, never the workspace)
   records the old and the new key.
2. :meth:`Workspace.rebuild` copies the database into a new file encrypted under
   the new key and renames it over the old file.
3. Every token is re-wrapped in the new file (opened with the old token key,
   sealed with the new one) in one transaction.
4. The new key replaces the old one in the key file it was found in.
5. The pending file is deleted.

:func:`recover` finishes or abandons an interrupted rotation from the pending
file: when the database opens with the new key the remaining steps are redone,
otherwise the database is still the old one and the pending file is dropped.
Until step 5 the old key opens the database before step 2 and the new key after
it, so nothing is lost.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from . import keys, store, vault
from .errors import UsageError, WorkspaceKeyError
from .oauth import records
from .workspace import DB_NAME, Workspace, open_workspace, read_meta, resolve_path

log = logging.getLogger(__name__)

# Fault injection for the crash tests: the process exits at the named step.
CRASH_ENV = "TWINME_ROTATE_CRASH_AT"
CHECKPOINTS = (
    "pending_written",
    "database_swapped",
    "tokens_rewrapped",
    "key_swapped",
    "done",
)


def _checkpoint(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(70)


def pending_path(workspace_id: str) -> Path:
    """Return the pending-rotation file of a workspace (in the key folder)."""
    return keys.config_dir() / "keys" / f"{workspace_id}.rotation"


def key_file_in_use(workspace_id: str) -> Path | None:
    """Return the key file the key was read from, or None for ``TWINME_KEY``."""
    if os.environ.get(keys.KEY_ENV):
        return None
    named = os.environ.get(keys.KEY_FILE_ENV)
    if named:
        return Path(named)
    return keys.default_key_file(workspace_id)


def _write_pending(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    store.fsync_directory(path.parent)


def _rewrap(workspace: Workspace, old: keys.MasterKey, new: keys.MasterKey) -> dict:
    """Re-seal every token sealed under ``old`` with ``new``, in one transaction."""
    counts = {"rewrapped": 0, "unreadable": 0}
    with workspace.connect() as con, store.transaction(con):
        for record in records.load_all(con):
            if record.key_id == new.key_id:
                continue
            if record.key_id != old.key_id:
                counts["unreadable"] += 1
                continue
            if record.access_token is None and record.refresh_token is None:
                con.execute(
                    "UPDATE connections SET key_id = ? "
                    "WHERE participant_id = ? AND platform = ?",
                    [new.key_id, record.participant_id, record.platform],
                )
                continue
            try:
                tokens = record.open_tokens(old)
            except vault.TokenDecryptError:
                log.warning(
                    "rotation: %s token of %s does not decrypt; left as it was",
                    record.platform,
                    record.participant_id,
                )
                counts["unreadable"] += 1
                continue
            access, refresh = records.seal_tokens(
                new,
                record.participant_id,
                record.platform,
                record.account_id,
                tokens.access_token,
                tokens.refresh_token,
            )
            con.execute(
                "UPDATE connections SET access_token = ?, refresh_token = ?, "
                "key_id = ? WHERE participant_id = ? AND platform = ?",
                [access, refresh, new.key_id, record.participant_id, record.platform],
            )
            counts["rewrapped"] += 1
        con.execute(
            "INSERT OR REPLACE INTO workspace_settings VALUES ('key_id', ?)",
            [new.key_id],
        )
    return counts


def _finish(
    workspace: Workspace,
    old: keys.MasterKey,
    new: keys.MasterKey,
    new_hex: str,
    key_file: Path | None,
    pending: Path,
) -> dict:
    counts = _rewrap(workspace, old, new)
    _checkpoint("tokens_rewrapped")
    if key_file is not None:
        keys.replace_key_file(key_file, new_hex)
        store.fsync_directory(key_file.parent)
    _checkpoint("key_swapped")
    pending.unlink()
    store.fsync_directory(pending.parent)
    _checkpoint("done")
    return counts


def rotate_key(workspace: Workspace) -> dict:
    """Rotate the master key of a workspace; see the module docs for the order.

    Returns the old and new key ids, where the new key was written, the token
    counts, and ``new_key`` (the key itself) only when the old key came from
    ``TWINME_KEY``, because then the caller must show it once.
    """
    old = vault.require_key(workspace.key)
    pending = pending_path(workspace.workspace_id)
    if pending.exists():
        raise UsageError(
            f"An interrupted key rotation is pending ({pending}); open the "
            "workspace with any twinme-lab command to finish it first."
        )
    key_file = key_file_in_use(workspace.workspace_id)
    new_hex = keys.generate_key()
    origin = f"the key file {key_file}" if key_file else "the new key"
    new = keys.parse_key(new_hex, origin)
    _write_pending(
        pending,
        {
            "workspace_id": workspace.workspace_id,
            "old": old.raw.hex(),
            "new": new_hex,
            "key_file": str(key_file) if key_file else None,
        },
    )
    _checkpoint("pending_written")

    workspace.rebuild(new)
    _checkpoint("database_swapped")

    counts = _finish(workspace, old, new, new_hex, key_file, pending)
    with workspace.connect() as con:
        workspace.audit(con, "rotate-key", None, counts)
    log.info("rotated the workspace key from %s to %s", old.key_id, new.key_id)
    return {
        "old_key_id": old.key_id,
        "new_key_id": new.key_id,
        "key_file": str(key_file) if key_file else None,
        "new_key": None if key_file else new_hex,
        **counts,
    }


def recover(path=None) -> dict | None:
    """Finish or abandon an interrupted rotation; return what was done, or None.

    The result has ``new_key`` set when the rotation finished and the key came
    from ``TWINME_KEY``: the caller must show it, because no file contains it.
    """
    root = resolve_path(path)
    meta = read_meta(root)
    pending = pending_path(meta["workspace_id"])
    if not pending.is_file():
        return None
    record = json.loads(pending.read_text())
    old = keys.parse_key(record["old"], f"the pending rotation {pending}")
    new = keys.parse_key(record["new"], f"the pending rotation {pending}")
    key_file = Path(record["key_file"]) if record.get("key_file") else None
    candidate = Workspace(root, meta["workspace_id"], new)
    try:
        with candidate.connect():
            pass
    except WorkspaceKeyError:
        # The new file was never swapped in: the old key still opens everything.
        with Workspace(root, meta["workspace_id"], old).connect():
            pass
        (root / (DB_NAME + ".rebuild")).unlink(missing_ok=True)
        pending.unlink()
        log.warning("an interrupted key rotation was abandoned; the old key stays")
        return {"state": "abandoned", "key_id": old.key_id, "new_key": None}

    counts = _finish(candidate, old, new, record["new"], key_file, pending)
    log.warning("an interrupted key rotation was completed")
    return {
        "state": "completed",
        "key_id": new.key_id,
        "key_file": str(key_file) if key_file else None,
        "new_key": None if key_file else record["new"],
        **counts,
    }


def open_recovering(path=None) -> tuple[Workspace, dict | None]:
    """Open a workspace after finishing any interrupted rotation.

    When the key came from ``TWINME_KEY`` and a rotation was completed here, the
    environment still contains the old key, so the workspace is opened with the new
    one from the result.
    """
    result = recover(path)
    if result and result.get("new_key"):
        root = resolve_path(path)
        meta = read_meta(root)
        key = keys.parse_key(result["new_key"], "the rotated key")
        workspace = Workspace(root, meta["workspace_id"], key)
        with workspace.connect() as con:
            store.migrate(con)
        return workspace, result
    return open_workspace(path), result
