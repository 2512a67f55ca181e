"""Netflix export importer: ViewingActivity.csv and NetflixViewingHistory.csv.

``ViewingActivity.csv`` (from the full data request) has ten columns, declared in
:data:`ACTIVITY_COLUMNS`. One account's file contains every profile of the account,
and profiles are different people, so with more than one profile the caller must
choose one (``profile=``) and only that profile's rows are read. ``Start Time`` is
UTC (``YYYY-MM-DD HH:MM:SS``) and ``Duration`` is ``H:MM:SS``. Rows with a
``Supplemental Video Type`` (HOOK, TRAILER, TEASER_TRAILER, RECAP, CINEMAGRAPH,
...) are stored with ``is_supplemental`` true and summarised as kind
``supplemental``, never as viewing. Profile names, devices, bookmarks and
countries are read for validation and filtering only and are not stored.

``NetflixViewingHistory.csv`` (the short download) has ``Title`` and ``Date``, a
date without time in the account's locale order. The order (``mdy``, ``dmy`` or
``ymd``) is decided from the whole column: a day above 12 in one position settles
it, and a column where both readings stay possible is rejected unless
``date_order=`` is given. Two-digit years are read as 20YY, because Netflix
streaming began in 2007.
"""

from __future__ import annotations

import codecs
import csv
import io

from ..errors import InputError, UsageError
from .common import READER_ERRORS, ImportJob, SourceFile, register

PLATFORM = "netflix"

FILE_PATTERNS = (
    ("netflix_activity", r"ViewingActivity\.csv"),
    ("netflix_history", r"NetflixViewingHistory\.csv"),
)

ACTIVITY_COLUMNS = (
    "Profile Name",
    "Start Time",
    "Duration",
    "Attributes",
    "Title",
    "Supplemental Video Type",
    "Device Type",
    "Bookmark",
    "Latest Bookmark",
    "Country",
)
HISTORY_COLUMNS = ("Title", "Date")

START_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DURATION_PATTERN = r"^(\d+):([0-5]\d):([0-5]\d)$"
DATE_PATTERN = r"^(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})$"
DATE_ORDERS = ("mdy", "dmy", "ymd")

# Second title parts that name a season in the languages of the samples and other
# common Netflix locales; 'Series: <season>: Episode' marks an episode.
SEASON_PATTERN = (
    r"^(Season|Series|Limited Series|Volume|Part|Chapter|Collection|Book|Sezon|"
    r"Część|Temporada|Staffel|Saison|Stagione|Seizoen|Säsong|Sæson|Sesong|Kausi|"
    r"Série|Řada|Séria)\b|^\d+\. (řada|série|séria)\b"
)
# Episode markers Netflix appends in ViewingActivity titles, e.g. '(Episode 4)'.
EPISODE_SUFFIX_PATTERN = (
    r"\((Episode|Odcinek|Épisode|Folge|Episodio|Episódio|Aflevering|Epizoda|"
    r"Díl|Avsnitt|Afsnit|Jakso|Bölüm) \d+\)$"
)


def _read_header(job: ImportJob, source: SourceFile, expected: tuple) -> None:
    """Reject the file unless its first CSV row is exactly ``expected``."""
    if not source.first_char():
        raise job.reject(source, "the file is empty")
    header_text = _decode_head(source.head(64 * 1024))
    try:
        header = next(csv.reader(io.StringIO(header_text)))
    except (csv.Error, StopIteration):
        header = []
    if tuple(header) != expected:
        raise job.reject(
            source,
            f"the header is {', '.join(header)!r} but a Netflix {source.name} has "
            f"the columns {', '.join(expected)!r}",
            fix="check that this file is the one Netflix sent",
        )


def _decode_head(data: bytes) -> str:
    """Return the first line of a file's first bytes, which may end mid-character."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="ignore")
    else:
        text = data.decode("utf-8-sig", errors="ignore")
    lines = text.splitlines()
    return lines[0] if lines else ""


def _csv_relation(columns: tuple) -> str:
    declared = ", ".join(f"'{c}': 'VARCHAR'" for c in columns)
    return (
        "read_csv(?, header = true, auto_detect = false, delim = ',', "
        "quote = '\"', escape = '\"', strict_mode = true, "
        f"columns = {{{declared}}})"
    )


def _title_sql(title: str) -> str:
    """Return SQL for series_title, season, episode_title and is_episode.

    NOTE: titles are split on ': ', so a film whose name has two ': ' counts as
    an episode, and 'Show: Episode' without a season or '(Episode N)' marker
    (common in NetflixViewingHistory.csv) counts as a film.
    """
    parts = f"string_split({title}, ': ')"
    is_episode = (
        f"(len({parts}) >= 3 OR regexp_matches({title}, '{EPISODE_SUFFIX_PATTERN}') "
        f"OR (len({parts}) = 2 AND regexp_matches({parts}[2], '{SEASON_PATTERN}')))"
    )
    return (
        f"CASE WHEN {is_episode} THEN {parts}[1] END AS series_title, "
        f"CASE WHEN {is_episode} AND len({parts}) >= 3 THEN {parts}[2] END "
        "AS season, "
        f"CASE WHEN {is_episode} AND len({parts}) >= 3 "
        f"THEN array_to_string({parts}[3:], ': ') "
        f"WHEN {is_episode} AND len({parts}) = 2 THEN {parts}[2] END "
        "AS episode_title, "
        f"{is_episode} AS is_episode"
    )


def _profile_counts(job: ImportJob, source: SourceFile, path) -> list[tuple]:
    try:
        return job.con.execute(
            f'SELECT "Profile Name", count(*) FROM {_csv_relation(ACTIVITY_COLUMNS)} '
            "GROUP BY 1 ORDER BY 1",
            [str(path)],
        ).fetchall()
    except READER_ERRORS as exc:
        raise job.duckdb_error(source, exc, path) from None


def _choose_profile(job: ImportJob, source: SourceFile, counts: list[tuple]) -> str:
    requested = job.options.get("profile")
    listing = "; ".join(f"{name!r} ({rows} rows)" for name, rows in counts)
    names = [name for name, _ in counts]
    if requested is not None:
        if requested not in names:
            raise UsageError(
                f"{source.label} has no profile {requested!r}; its profiles are "
                f"{listing}. Pass one of them with --profile."
            )
        return requested
    if len(names) > 1:
        raise InputError(
            f"{source.label} contains {len(names)} profiles: {listing}. Profiles "
            "are different people, so choose the participant's profile with "
            "--profile NAME; nothing was imported."
        )
    if not names:
        raise job.reject(source, "the file has a header but no rows")
    if names[0] is None:
        raise job.reject(source, "no row has a Profile Name")
    return names[0]


def _stage_activity(job: ImportJob, source: SourceFile, fmt: str) -> None:
    _read_header(job, source, ACTIVITY_COLUMNS)
    with source.disk_path() as path:
        profile = _choose_profile(job, source, _profile_counts(job, source, path))
        rows = (
            "SELECT *, row_number() OVER () AS _row "
            f"FROM {_csv_relation(ACTIVITY_COLUMNS)}"
        )
        parsed = (
            "SELECT *, timezone('UTC', try_strptime(\"Start Time\", ?)) "
            "AS _started, "
            "regexp_extract(Duration, ?, ['h', 'm', 's']) AS _duration, "
            "nullif(trim(\"Supplemental Video Type\"), '') AS _supplemental, "
            f"{_title_sql('Title')} "
            f'FROM ({rows}) WHERE "Profile Name" = ?'
        )
        select = (
            "SELECT 'netflix_activity' AS source, _started AS started_at, "
            "CAST(timezone('UTC', _started) AS DATE) AS watched_on, "
            "'second' AS time_precision, "
            "CAST(nullif(_duration.h, '') AS INTEGER) * 3600 "
            "+ CAST(nullif(_duration.m, '') AS INTEGER) * 60 "
            "+ CAST(nullif(_duration.s, '') AS INTEGER) AS duration_s, "
            "Title AS title, "
            "CASE WHEN _supplemental IS NULL THEN series_title END AS series_title, "
            "CASE WHEN _supplemental IS NULL THEN season END AS season, "
            "CASE WHEN _supplemental IS NULL THEN episode_title END "
            "AS episode_title, "
            "coalesce(_supplemental IS NULL AND is_episode, false) AS is_episode, "
            "_supplemental AS supplemental_type, "
            "_supplemental IS NOT NULL AS is_supplemental, "
            "nullif(Attributes, '') AS attributes, "
            '"Start Time" AS _raw_time, Duration AS _raw_duration, '
            "Bookmark AS _bookmark, _row "
            f"FROM ({parsed})"
        )
        part = job.stage(
            source,
            fmt,
            "viewing_events",
            select,
            [START_TIME_FORMAT, DURATION_PATTERN, str(path), profile],
            key_columns=(
                "source",
                "started_at",
                "duration_s",
                "title",
                "supplemental_type",
                "attributes",
                "_bookmark",
            ),
            kind_sql="CASE WHEN is_supplemental THEN 'supplemental' ELSE 'viewing' END",
            disk_path=path,
        )
    job.check(part, "title IS NULL OR title = ''", "the Title is empty")
    job.check(
        part,
        "started_at IS NULL",
        f"Start Time is missing or not a UTC time in the format {START_TIME_FORMAT}",
    )
    job.check(
        part,
        "duration_s IS NULL",
        "Duration is missing or not a duration in the format H:MM:SS",
    )


def _date_parts_sql(order: str) -> tuple[str, str, str]:
    """Return SQL for (year, month, day) of the matched date parts p1, p2, p3."""
    positions = {
        "mdy": ("p3", "p1", "p2"),
        "dmy": ("p3", "p2", "p1"),
        "ymd": ("p1", "p2", "p3"),
    }[order]
    year, month, day = positions
    year_sql = (
        f"CASE WHEN length({year}) = 2 THEN 2000 + CAST({year} AS INTEGER) "
        f"WHEN length({year}) = 4 THEN CAST({year} AS INTEGER) END"
    )
    return year_sql, f"CAST({month} AS INTEGER)", f"CAST({day} AS INTEGER)"


def _valid_date_sql(order: str) -> str:
    year, month, day = _date_parts_sql(order)
    return (
        f"({year}) IS NOT NULL AND {month} BETWEEN 1 AND 12 "
        f"AND {day} BETWEEN 1 AND 31 "
        f"AND try_cast(printf('%04d-%02d-%02d', {year}, {month}, {day}) AS DATE) "
        "IS NOT NULL"
    )


def detect_date_order(
    job: ImportJob, source: SourceFile, relation: str, params: list
) -> str:
    """Decide the date order of a NetflixViewingHistory Date column.

    An order is possible when every date in the column is a valid calendar date
    read that way. Returns the only possible order, or raises :class:`InputError`
    when none or more than one is possible.
    """
    checks = ", ".join(f"bool_and({_valid_date_sql(order)})" for order in DATE_ORDERS)
    possible = job.con.execute(
        f"SELECT {checks}, count(*) FROM ({relation})", params
    ).fetchone()
    rows = possible[-1]
    orders = [o for o, ok in zip(DATE_ORDERS, possible[:-1], strict=True) if ok]
    if rows == 0:
        raise job.reject(source, "the file has a header but no rows")
    if not orders:
        raise job.reject(
            source,
            "the Date column cannot be read as month/day/year, day/month/year or "
            "year/month/day for every row",
            fix="pass --date-order mdy, dmy or ymd to find the row that fails",
        )
    if len(orders) > 1:
        raise InputError(
            f"{source.label}: the Date column fits {' and '.join(orders)} (no day "
            "above 12 settles it), so the dates are ambiguous; nothing was "
            "imported. Pass --date-order with the order of the account's locale "
            "(mdy for US English, dmy for most of Europe)."
        )
    return orders[0]


def _stage_history(job: ImportJob, source: SourceFile, fmt: str) -> None:
    _read_header(job, source, HISTORY_COLUMNS)
    order = job.options.get("date_order")
    if order is not None and order not in DATE_ORDERS:
        raise UsageError(
            f"Invalid date order {order!r}; use one of {', '.join(DATE_ORDERS)}."
        )
    with source.disk_path() as path:
        relation = (
            "SELECT *, regexp_extract(trim(Date), ?, ['p1', 'p2', 'p3']) AS _parts "
            "FROM (SELECT *, row_number() OVER () AS _row "
            f"FROM {_csv_relation(HISTORY_COLUMNS)})"
        )
        relation = (
            "SELECT *, _parts.p1 AS p1, _parts.p2 AS p2, _parts.p3 AS p3 "
            f"FROM ({relation})"
        )
        params = [DATE_PATTERN, str(path)]
        if order is None:
            try:
                order = detect_date_order(job, source, relation, params)
            except READER_ERRORS as exc:
                raise job.duckdb_error(source, exc, path) from None
        year, month, day = _date_parts_sql(order)
        select = (
            "SELECT 'netflix_history' AS source, CAST(NULL AS TIMESTAMPTZ) "
            "AS started_at, "
            f"CASE WHEN {_valid_date_sql(order)} THEN make_date({year}, {month}, "
            f"{day}) END AS watched_on, 'day' AS time_precision, "
            "CAST(NULL AS INTEGER) AS duration_s, Title AS title, "
            f"{_title_sql('Title')}, NULL AS supplemental_type, "
            "false AS is_supplemental, NULL AS attributes, Date AS _raw_date, _row "
            f"FROM ({relation})"
        )
        part = job.stage(
            source,
            fmt,
            "viewing_events",
            select,
            params,
            key_columns=("source", "watched_on", "title"),
            kind="viewing",
            disk_path=path,
        )
    job.check(part, "title IS NULL OR title = ''", "the Title is empty")
    job.check(
        part,
        "watched_on IS NULL",
        f"Date is missing or not a valid date in the order {order}",
        fix="check the --date-order value against the account's locale",
    )


@register(PLATFORM)
def import_netflix(job: ImportJob) -> None:
    """Stage every Netflix export file found in ``job.files``.

    Options: ``profile`` (a ViewingActivity profile name) and ``date_order``
    (``mdy``, ``dmy`` or ``ymd`` for NetflixViewingHistory.csv).
    """
    for source, fmt in job.match(FILE_PATTERNS):
        if fmt == "netflix_activity":
            _stage_activity(job, source, fmt)
        else:
            _stage_history(job, source, fmt)
