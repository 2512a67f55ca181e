"""Staging of records that were parsed in Python rather than by a DuckDB reader.

Exports that name other people need each name replaced by a keyed pseudonym
before anything reaches the database, and text needs its style counted while it
is in memory. Both happen in Python. :func:`stage_records` hands such records to
:meth:`ImportJob.stage_files` through a registered Arrow table, so they get the
same record keys, ordinals, all-or-nothing write and summary as reader-based
imports.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import pyarrow as pa

from .common import ImportJob, SourceFile, StagedPart

_view_numbers = itertools.count(1)


def stage_records(
    job: ImportJob,
    sources: Sequence[SourceFile],
    fmt: str,
    table: str,
    records: Sequence[Mapping],
    columns: Mapping[str, str],
    *,
    key_columns: Sequence[str],
    kind: str | None = None,
    kind_sql: str | None = None,
) -> StagedPart:
    """Stage ``records`` (dicts with the keys of ``columns``) for ``table``.

    ``columns`` maps each column to its DuckDB type; values are cast to it, so
    ISO-8601 strings become timestamps. A record's ``_file`` is the index of its
    file in ``sources`` (default 0), and records of one file must be in file
    order, so that identical records are numbered in the order the file has them.
    """
    ordered = sorted(records, key=lambda record: record.get("_file", 0))
    names = list(columns)
    arrays = {
        name: pa.array([_as_text(record.get(name)) for record in ordered], pa.string())
        for name in names
    }
    arrays["_file"] = pa.array([r.get("_file", 0) for r in ordered], pa.int64())
    arrays["_row"] = pa.array(range(1, len(ordered) + 1), pa.int64())
    view = f"_records_{next(_view_numbers)}"
    job.con.register(view, pa.table(arrays))
    try:
        casts = ", ".join(
            f'CAST("{name}" AS {columns[name]}) AS "{name}"' for name in names
        )
        return job.stage_files(
            sources,
            fmt,
            table,
            f"SELECT {casts}, _file, _row FROM {view}",
            key_columns=key_columns,
            kind=kind,
            kind_sql=kind_sql,
        )
    finally:
        job.con.unregister(view)


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
