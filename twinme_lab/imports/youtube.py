"""YouTube watch and search history from Google Takeout (JSON format).

Takeout writes ``watch-history.json`` and ``search-history.json`` as arrays of
entries with ``header`` (product: "YouTube", "YouTube Music"), ``title`` ("Watched
...", "Searched for ...", "Visited YouTube Music"), ``titleUrl``, ``subtitles``
(the channel), ``time`` (ISO-8601 UTC, with or without milliseconds) and, for ads,
``details`` naming "From Google Ads". Removed videos have neither URL nor channel.
The files are read with DuckDB's JSON reader.

Ads are stored with kind ``ad`` and never count as watching.
NOTE: Takeout writes titles in the account's language ("Watched ...", "Menonton
...", "观看了 ..."). Only English "Visited" rows are told apart from watches, and
only the English "Watched " prefix is removed from video titles. Search text is stored
only with ``keep_text``; without it a search row keeps its time and product.
"""

from __future__ import annotations

from .common import ImportJob, SourceFile, register

FORMATS = (
    ("youtube_watch_history", r"watch-history\.json"),
    ("youtube_search_history", r"search-history\.json"),
)
_HTML_NAMES = ("watch-history.html", "search-history.html")

HTML_PROBLEM = (
    "this is the HTML version of the Takeout history, which has no stable "
    "structure to read"
)
HTML_FIX = (
    "export again at takeout.google.com, choose JSON as the format of 'history' "
    "in the options of 'YouTube and YouTube Music', and import the "
    "watch-history.json and search-history.json files"
)

AD_DETAIL = "From Google Ads"

_COLUMNS = (
    "{header: 'VARCHAR', title: 'VARCHAR', titleUrl: 'VARCHAR', "
    "subtitles: 'STRUCT(name VARCHAR, url VARCHAR)[]', "
    "details: 'STRUCT(name VARCHAR)[]', time: 'VARCHAR'}"
)


def _refuse_html(job: ImportJob) -> None:
    """Reject HTML history files that have no JSON file beside them."""
    json_names = {s.name for s in job.files if s.name.endswith(".json")}
    for source in job.files:
        if source.name not in _HTML_NAMES:
            continue
        if source.name.replace(".html", ".json") not in json_names:
            raise job.reject(source, HTML_PROBLEM, fix=HTML_FIX)


def _check_json_array(job: ImportJob, source: SourceFile) -> None:
    head = source.head(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise job.reject(source, "the file is empty")
    if head.startswith(b"<"):
        raise job.reject(source, HTML_PROBLEM, fix=HTML_FIX)
    if not head.startswith(b"["):
        raise job.reject(
            source,
            "expected a JSON array of history entries, as Takeout writes it",
        )
    job.require_complete_json(source, "[")


def _select_sql(fmt: str, keep_text: bool) -> str:
    is_search = fmt == "youtube_search_history"
    # "Visited YouTube Music" rows carry recommendation notes (location, weather)
    # in subtitles, not a channel; those are not stored.
    is_visit = "(title LIKE 'Visited %' AND titleUrl IS NULL)"
    if is_search:
        kind = "'search'"
    else:
        kind = f"CASE WHEN {is_visit} THEN 'visit' ELSE 'watch' END"
    query = (
        "regexp_extract(title, '^Searched for (.*)$', 1, 's')"
        if is_search and keep_text
        else "NULL"
    )
    video = (
        "NULL"
        if is_search
        else ("nullif(regexp_extract(titleUrl, '[?&]v=([A-Za-z0-9_-]+)', 1), '')")
    )
    video_title = (
        "NULL"
        if is_search
        else (
            "CASE WHEN titleUrl IS NULL THEN NULL "
            "ELSE regexp_replace(title, '^Watched ', '') END"
        )
    )
    return f"""
        SELECT
            CASE WHEN list_contains(
                     list_transform(coalesce(details, []), d -> d.name),
                     '{AD_DETAIL}')
                 THEN 'ad' ELSE {kind} END AS kind,
            TRY_CAST(time AS TIMESTAMPTZ) AS occurred_at,
            CASE WHEN regexp_matches(time, '\\.[0-9]+') THEN 'millisecond'
                 ELSE 'second' END AS time_precision,
            header AS product,
            {video} AS video_id,
            {video_title} AS video_title,
            CASE WHEN {is_visit} THEN NULL ELSE nullif(regexp_extract(
                subtitles[1].url, '/channel/([^/?#]+)', 1), '') END AS channel_id,
            CASE WHEN {is_visit} THEN NULL ELSE subtitles[1].name END
                AS channel_name,
            {"false" if is_search else f"(titleUrl IS NULL AND NOT {is_visit})"}
                AS removed,
            {query} AS search_query,
            time AS _time_text,
            title AS _title,
            titleUrl AS _url,
            _row
        FROM (
            SELECT *, row_number() OVER () AS _row
            FROM read_json(?, format = 'array', columns = {_COLUMNS})
        )
    """


@register("youtube")
def import_youtube(job: ImportJob) -> None:
    """Stage Takeout watch and search history; see the module docstring."""
    keep_text = bool(job.options.get("keep_text"))
    _refuse_html(job)
    for source, fmt in job.match(FORMATS):
        _check_json_array(job, source)
        with source.disk_path() as path:
            part = job.stage(
                source,
                fmt,
                "youtube_events",
                _select_sql(fmt, keep_text),
                [str(path)],
                key_columns=("kind", "_time_text", "product", "_title", "_url"),
                kind_sql="kind",
                disk_path=path,
            )
        job.check(part, "_time_text IS NULL", "the entry has no 'time'")
        job.check(
            part,
            "occurred_at IS NULL",
            "the 'time' value is not an ISO-8601 timestamp",
        )
        job.check(part, "_title IS NULL", "the entry has no 'title'")
        job.check(part, "product IS NULL", "the entry has no 'header'")
    if keep_text:
        job.audit_notes["keep_text"] = True
