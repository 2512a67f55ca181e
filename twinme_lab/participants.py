"""Participants: enrolment, listing, and forgetting everything about one."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import NotFoundError, UsageError
from .workspace import Workspace

log = logging.getLogger(__name__)

PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Tables whose participant rows outlive a forget, holding the pseudonymous id only.
_KEPT_ON_FORGET = {"audit_log", "deletions"}

# Functions run before a participant's rows are deleted, such as revoking their
# platform tokens. Each takes the workspace and the participant id.
before_forget: list[Callable[[Workspace, str], None]] = []


def validate_id(participant_id: str) -> str:
    """Check a participant id: letters, digits, '.', '_' or '-', at most 64."""
    if not PARTICIPANT_ID.match(participant_id or ""):
        raise UsageError(
            f"Invalid participant id {participant_id!r}: use 1 to 64 letters, "
            "digits, '.', '_' or '-', starting with a letter or digit. Use a "
            "pseudonymous code, never a name or e-mail address."
        )
    return participant_id


def validate_timezone(zone: str | None) -> str | None:
    """Check an IANA time zone name such as 'Europe/Berlin'."""
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"Unknown time zone {zone!r}; use an IANA name such as "
            "'Europe/Berlin' or 'America/New_York'."
        ) from None
    return zone


def validate_consent(consent_version: str | None) -> str | None:
    """Check a consent version: None when unknown, else a non-blank string."""
    if consent_version is not None and not consent_version.strip():
        raise UsageError(
            f"Invalid consent version {consent_version!r}: it is blank. Give the "
            "version of the signed consent form, or leave it out if unknown."
        )
    return consent_version


def add(
    workspace: Workspace,
    participant_id: str,
    timezone_name: str | None = None,
    consent_version: str | None = None,
    synthetic: bool = False,
) -> dict:
    """Enrol a participant with their time zone and the consent version they gave."""
    validate_id(participant_id)
    validate_timezone(timezone_name)
    validate_consent(consent_version)
    now = datetime.now(UTC)
    with workspace.connect() as con:
        exists = con.execute(
            "SELECT count(*) FROM participants WHERE participant_id = ?",
            [participant_id],
        ).fetchone()[0]
        if exists:
            raise UsageError(f"Participant {participant_id} is already enrolled.")
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO participants VALUES (?, ?, ?, ?, ?, ?)",
            [
                participant_id,
                timezone_name,
                consent_version,
                now if consent_version else None,
                synthetic,
                now,
            ],
        )
        workspace.audit(con, "participants.add", participant_id)
        con.execute("COMMIT")
    return get(workspace, participant_id)


def _row_to_dict(columns: list[str], row: tuple) -> dict:
    record = dict(zip(columns, row, strict=True))
    for key in ("consent_at", "created_at"):
        if record.get(key) is not None:
            record[key] = record[key].astimezone(UTC).isoformat()
    return record


def list_participants(workspace: Workspace) -> list[dict]:
    """Return every participant, ordered by id."""
    with workspace.connect() as con:
        cursor = con.execute(
            "SELECT participant_id, timezone, consent_version, consent_at, "
            "synthetic, created_at FROM participants ORDER BY participant_id"
        )
        columns = [d[0] for d in cursor.description]
        return [_row_to_dict(columns, row) for row in cursor.fetchall()]


def get(workspace: Workspace, participant_id: str) -> dict:
    """Return one participant, or raise :class:`NotFoundError`."""
    for record in list_participants(workspace):
        if record["participant_id"] == participant_id:
            return record
    raise NotFoundError(
        f"Participant {participant_id} is not enrolled; run 'twinme-lab "
        f"participants add {participant_id}' first."
    )


def require(con, participant_id: str) -> None:
    """Raise :class:`NotFoundError` unless the participant is enrolled."""
    found = con.execute(
        "SELECT count(*) FROM participants WHERE participant_id = ?", [participant_id]
    ).fetchone()[0]
    if not found:
        raise NotFoundError(
            f"Participant {participant_id} is not enrolled; run 'twinme-lab "
            f"participants add {participant_id}' first."
        )


def read_rows(
    workspace: Workspace, select_sql: str, order_by: str, participant_id=None
):
    """Return ``select_sql`` as a DataFrame, for one participant or for all.

    ``select_sql`` is a ``SELECT ... FROM table`` without WHERE or ORDER BY. An
    unknown participant raises :class:`NotFoundError` instead of returning no rows.
    """
    sql = select_sql
    params: list = []
    if participant_id is not None:
        sql += " WHERE participant_id = ?"
        params.append(participant_id)
    sql += f" ORDER BY {order_by}"
    with workspace.connect() as con:
        if participant_id is not None:
            require(con, participant_id)
        return con.execute(sql, params).df()


def tables_with_participants(con) -> list[str]:
    """Return every table of the workspace that has a participant_id column."""
    rows = con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND column_name = 'participant_id' "
        "ORDER BY table_name"
    ).fetchall()
    return [name for (name,) in rows]


def forget(workspace: Workspace, participant_id: str) -> dict:
    """Remove a participant everywhere, then rebuild the file so no trace remains.

    Rows in every table with a participant_id column go, and so does the
    participant's folder under ``reports/``, and every file under ``exports/``
    (run ``export`` again afterwards). The audit table keeps its entries,
    which hold only the pseudonymous id and counts. The deletion is recorded.
    """
    validate_id(participant_id)
    with workspace.connect() as con:
        require(con, participant_id)

    # Importing the OAuth package registers its hook that revokes and deletes the
    # participant's platform tokens, even when no OAuth code has run yet.
    from . import oauth  # noqa: F401

    for hook in before_forget:
        hook(workspace, participant_id)

    deleted: dict[str, int] = {}
    with workspace.connect() as con:
        tables = [t for t in tables_with_participants(con) if t not in _KEPT_ON_FORGET]
        con.execute("BEGIN")
        for table in tables:
            count = con.execute(
                f'DELETE FROM "{table}" WHERE participant_id = ?', [participant_id]
            ).fetchone()[0]
            if count:
                deleted[table] = count
        con.execute("INSERT INTO deletions VALUES (?, now())", [participant_id])
        workspace.audit(con, "forget", participant_id, {"rows": sum(deleted.values())})
        con.execute("COMMIT")

    workspace.rebuild()

    report_dir = workspace.reports_dir / participant_id
    if report_dir.is_dir():
        shutil.rmtree(report_dir)

    # Analyst exports hold every participant's rows; they are derived files, so
    # they are deleted rather than edited, and export writes them again.
    removed_exports = []
    export_dir = workspace.root / "exports"
    if export_dir.is_dir():
        for path in sorted(export_dir.iterdir()):
            if path.is_file():
                path.unlink()
                removed_exports.append(path.name)
    log.info("forgot participant rows in %d tables", len(deleted))
    return {
        "participant": participant_id,
        "rows_deleted": deleted,
        "exports_deleted": removed_exports,
    }
