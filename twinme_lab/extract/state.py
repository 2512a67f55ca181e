"""Database side of extraction: runs, run log, cursors, page validators, records.

Every function takes an open connection and leaves transactions to the caller, so
the engine can commit a page's items, its validators and its cursor together.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from .. import store
from ..errors import StoreError
from ..workspace import Workspace

OK_STATUSES = ("ok", "empty")
STATUSES = ("ok", "empty", "failed", "restricted", "requires_reauth")


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunDatabase:
    """The workspace file, attached only for the length of each write.

    One in-memory DuckDB connection with the cipher extension loaded serves the
    whole run. The workspace file is attached for each block and detached after
    it, which releases the file lock, so the OAuth layer can store a rotated
    token between two pages. Loading the extension once instead of per page
    makes each write several times cheaper.
    """

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._con: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is None:
            self._con = store.new_connection(self.workspace.temp_dir)
        con = self._con
        key = self.workspace.key.database_key()
        store.attach(
            con, self.workspace.db_path, key, key_origin=self.workspace.key.origin
        )
        try:
            con.execute(f"USE {store.ALIAS}")
            yield con
        except duckdb.Error as exc:
            raise StoreError(store.scrub(str(exc), key)) from None
        finally:
            con.execute("USE memory")
            con.execute(f"DETACH {store.ALIAS}")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def insert_values(con, head: str, rows: list[list], tail: str = "") -> None:
    """Run ``head VALUES (...), (...) tail`` with every row in one statement.

    DuckDB binds one multi-row VALUES statement far faster than executemany.
    Rows must not repeat a primary key, which one statement cannot upsert twice.
    """
    if not rows:
        return
    width = len(rows[0])
    group = "(" + ", ".join("?" for _ in range(width)) + ")"
    # Batches keep the parameter count moderate for pages of a few hundred rows.
    for start in range(0, len(rows), 500):
        batch = rows[start : start + 500]
        values = ", ".join(group for _ in batch)
        con.execute(
            f"{head} VALUES {values} {tail}", [value for row in batch for value in row]
        )


def start_run(con: duckdb.DuckDBPyConnection) -> int:
    """Insert a run row and return its id."""
    return con.execute(
        "INSERT INTO extract_runs (started_at) VALUES (?) RETURNING run_id", [utcnow()]
    ).fetchone()[0]


def finish_run(con: duckdb.DuckDBPyConnection, run_id: int, exit_code: int) -> None:
    con.execute(
        "UPDATE extract_runs SET finished_at = ?, exit_code = ? WHERE run_id = ?",
        [utcnow(), exit_code, run_id],
    )


@dataclass
class Cursor:
    """Stream state of one participant, platform and endpoint."""

    high_water: float | None = None
    resume_url: str | None = None
    walk_high_water: float | None = None
    window_start: datetime | None = None


def read_cursor(con, participant_id: str, platform: str, endpoint: str) -> Cursor:
    row = con.execute(
        "SELECT high_water, resume_url, walk_high_water, window_start "
        "FROM extract_cursors WHERE participant_id = ? AND platform = ? "
        "AND endpoint = ?",
        [participant_id, platform, endpoint],
    ).fetchone()
    return Cursor(*row) if row else Cursor()


def write_cursor(
    con, participant_id: str, platform: str, endpoint: str, cursor: Cursor
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO extract_cursors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            participant_id,
            platform,
            endpoint,
            cursor.high_water,
            cursor.resume_url,
            cursor.walk_high_water,
            cursor.window_start,
            utcnow(),
        ],
    )


@dataclass
class PageState:
    """Stored validators of one page URL."""

    etag: str | None
    last_modified: str | None
    next_page: str | None
    item_count: int


def read_page(con, participant_id, platform, endpoint, page_url) -> PageState | None:
    row = con.execute(
        "SELECT etag, last_modified, next_page, item_count FROM extract_pages "
        "WHERE participant_id = ? AND platform = ? AND endpoint = ? AND page_url = ?",
        [participant_id, platform, endpoint, page_url],
    ).fetchone()
    return PageState(*row) if row else None


def write_page(
    con, participant_id, platform, endpoint, page_url, state: PageState
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO extract_pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            participant_id,
            platform,
            endpoint,
            page_url,
            state.etag,
            state.last_modified,
            state.next_page,
            state.item_count,
            utcnow(),
        ],
    )


def upsert_records(
    con,
    participant_id: str,
    platform: str,
    endpoint: str,
    records: list[tuple[str, int | None, dict]],
    seen_at: datetime,
) -> int:
    """Upsert (item_id, rank, payload) rows and return how many ids were new."""
    if not records:
        return 0
    ids = [item_id for item_id, _, _ in records]
    known = {
        row[0]
        for row in con.execute(
            "SELECT item_id FROM api_records WHERE participant_id = ? AND platform = ? "
            "AND endpoint = ? AND item_id IN (SELECT unnest(?::VARCHAR[]))",
            [participant_id, platform, endpoint, ids],
        ).fetchall()
    }
    insert_values(
        con,
        "INSERT INTO api_records",
        [
            [
                participant_id,
                platform,
                endpoint,
                item_id,
                rank,
                json.dumps(payload, sort_keys=True, default=str),
                seen_at,
                seen_at,
            ]
            for item_id, rank, payload in records
        ],
        "ON CONFLICT (participant_id, platform, endpoint, item_id) DO UPDATE SET "
        "rank = excluded.rank, payload = excluded.payload, "
        "last_seen_at = excluded.last_seen_at",
    )
    return len(set(ids) - known)


def count_records(con, participant_id: str, platform: str, endpoint: str) -> int:
    return con.execute(
        "SELECT count(*) FROM api_records WHERE participant_id = ? AND platform = ? "
        "AND endpoint = ?",
        [participant_id, platform, endpoint],
    ).fetchone()[0]


def write_log(con, row: dict[str, Any]) -> None:
    """Insert one run log row; ``row`` has every column of extract_run_log."""
    columns = [
        "run_id",
        "participant_id",
        "platform",
        "endpoint",
        "status",
        "pages",
        "items",
        "items_stored",
        "requests",
        "not_modified",
        "unchanged",
        "rate_limited",
        "retries",
        "duration_s",
        "window_start",
        "note",
        "error",
        "finished_at",
    ]
    if row["status"] not in STATUSES:
        raise ValueError(f"invalid run log status {row['status']!r}")
    if row["status"] not in OK_STATUSES and row.get("items") is not None:
        raise ValueError("a failed endpoint must record items as NULL, not a count")
    placeholders = ", ".join("?" for _ in columns)
    con.execute(
        f"INSERT OR REPLACE INTO extract_run_log ({', '.join(columns)}) "
        f"VALUES ({placeholders})",
        [row.get(column) for column in columns],
    )


def latest_status(con, participant_id: str, platform: str, endpoint: str) -> str | None:
    """Return the newest run log status of an endpoint, or None if never run."""
    row = con.execute(
        "SELECT status FROM extract_run_log WHERE participant_id = ? "
        "AND platform = ? AND endpoint = ? ORDER BY run_id DESC LIMIT 1",
        [participant_id, platform, endpoint],
    ).fetchone()
    return row[0] if row else None


def fresh_unvalidated(
    con, participant_id: str, platform: str, endpoint: str, max_age: float
) -> tuple[str, datetime] | None:
    """Return the last status and finish time of an endpoint read completely
    within ``max_age`` seconds whose pages carry no validators, else None."""
    row = con.execute(
        "SELECT status, finished_at FROM extract_run_log WHERE participant_id = ? "
        "AND platform = ? AND endpoint = ? ORDER BY run_id DESC, finished_at DESC "
        "LIMIT 1",
        [participant_id, platform, endpoint],
    ).fetchone()
    if row is None or row[0] not in OK_STATUSES:
        return None
    age = (utcnow() - row[1]).total_seconds()
    if age > max_age:
        return None
    validated = con.execute(
        "SELECT count(*) FROM extract_pages WHERE participant_id = ? AND "
        "platform = ? AND endpoint = ? AND (etag IS NOT NULL OR "
        "last_modified IS NOT NULL)",
        [participant_id, platform, endpoint],
    ).fetchone()[0]
    return None if validated else (row[0], row[1])


def run_log(con, run_id: int | None = None) -> list[dict]:
    """Return the run log of one run (the latest when ``run_id`` is None)."""
    if run_id is None:
        found = con.execute("SELECT max(run_id) FROM extract_run_log").fetchone()[0]
        if found is None:
            return []
        run_id = found
    cursor = con.execute(
        "SELECT * FROM extract_run_log WHERE run_id = ? "
        "ORDER BY participant_id, platform, endpoint",
        [run_id],
    )
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
