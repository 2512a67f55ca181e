"""Spotify export importer: account data, extended streaming history, library.

Formats, detected by file name:

- Account data, ``StreamingHistory_music_N.json`` (and the older mixed
  ``StreamingHistoryN.json``), ``StreamingHistory_podcast_N.json`` and
  ``StreamingHistory_audiobook_N.json``: a JSON array of plays. ``endTime`` is the
  end of playback in UTC as ``YYYY-MM-DD HH:MM`` (minute precision). These files do
  not record skipping, so ``skipped`` is stored as NULL.
- Extended streaming history, ``Streaming_History_Audio_*.json``,
  ``Streaming_History_Video_*.json`` and the older ``endsong_N.json``: a JSON array
  of plays whose ``ts`` is the end of the stream in UTC (``...T..:..:..Z``, second
  precision). ``skipped`` is true, false or null (unknown) and is stored as such.
- ``YourLibrary.json``: a JSON object of arrays (tracks, albums, artists, shows,
  episodes, bannedTracks, bannedArtists), stored in ``library_items``.

Every file is read with DuckDB's ``read_json`` and declared columns, so a key
outside the declaration is ignored and never read: ``ip_addr``, ``username``,
``user_agent_decrypted``, ``conn_country`` and ``platform`` are not stored.
"""

from __future__ import annotations

from .common import (
    ImportJob,
    SourceFile,
    disk_paths,
    numbered_json_files_sql,
    register,
)

PLATFORM = "spotify"

FILE_PATTERNS = (
    ("spotify_account_music", r"StreamingHistory_music_\d+\.json"),
    ("spotify_account_podcast", r"StreamingHistory_podcast_\d+\.json"),
    ("spotify_account_audiobook", r"StreamingHistory_audiobook_\d+\.json"),
    ("spotify_account_mixed", r"StreamingHistory\d+\.json"),
    ("spotify_extended_audio", r"Streaming_History_Audio_[\w-]+\.json"),
    ("spotify_extended_video", r"Streaming_History_Video_[\w-]+\.json"),
    ("spotify_extended_endsong", r"endsong_\d+\.json"),
    ("spotify_library", r"YourLibrary\.json"),
)

# Declared keys of each account-data variant and the listening_events columns they
# fill. Files of the older mixed format list podcasts with the show in artistName
# and the episode in trackName, so their rows are all stored as kind 'music'.
ACCOUNT_VARIANTS = {
    "spotify_account_music": {
        "kind": "music",
        "select": (("artistName", "artist_name"), ("trackName", "track_name")),
    },
    "spotify_account_mixed": {
        "kind": "music",
        "select": (("artistName", "artist_name"), ("trackName", "track_name")),
    },
    "spotify_account_podcast": {
        "kind": "podcast",
        "select": (("podcastName", "show_name"), ("episodeName", "episode_name")),
    },
    "spotify_account_audiobook": {
        "kind": "audiobook",
        "select": (
            ("audiobookName", "audiobook_title"),
            ("chapterName", "chapter_title"),
            ("authorName", "artist_name"),
        ),
    },
}
ACCOUNT_KEYS = {
    "spotify_account_music": ("endTime", "artistName", "trackName", "msPlayed"),
    "spotify_account_mixed": ("endTime", "artistName", "trackName", "msPlayed"),
    "spotify_account_podcast": ("endTime", "podcastName", "episodeName", "msPlayed"),
    "spotify_account_audiobook": (
        "endTime",
        "audiobookName",
        "chapterName",
        "authorName",
        "msPlayed",
    ),
}

# Extended-history keys read; everything else in a record is ignored. Booleans
# are read as text and checked in SQL, so an unexpected value is rejected with
# its record number instead of silently becoming NULL.
EXTENDED_COLUMNS = {
    "ts": "VARCHAR",
    "ms_played": "BIGINT",
    "master_metadata_track_name": "VARCHAR",
    "master_metadata_album_artist_name": "VARCHAR",
    "master_metadata_album_album_name": "VARCHAR",
    "spotify_track_uri": "VARCHAR",
    "episode_name": "VARCHAR",
    "episode_show_name": "VARCHAR",
    "spotify_episode_uri": "VARCHAR",
    "audiobook_title": "VARCHAR",
    "audiobook_uri": "VARCHAR",
    "audiobook_chapter_uri": "VARCHAR",
    "audiobook_chapter_title": "VARCHAR",
    "reason_start": "VARCHAR",
    "reason_end": "VARCHAR",
    "shuffle": "VARCHAR",
    "skipped": "VARCHAR",
    "offline": "VARCHAR",
}
BOOLEAN_KEYS = ("shuffle", "skipped", "offline")

ACCOUNT_TIME_FORMAT = "%Y-%m-%d %H:%M"
EXTENDED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# Columns every account-data play sets the same way, whatever the variant.
ACCOUNT_FIXED_COLUMNS = ("source", "kind", "ended_at", "ms_played", "skipped")

# Identifying fields of a play; record keys are digests of these stored columns.
PLAY_KEY_COLUMNS = (
    "source",
    "kind",
    "ended_at",
    "ms_played",
    "track_name",
    "artist_name",
    "album_name",
    "track_uri",
    "show_name",
    "episode_name",
    "episode_uri",
    "audiobook_title",
    "audiobook_uri",
    "chapter_title",
    "chapter_uri",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
)

# YourLibrary.json sections: (key, item_type, struct of the declared fields,
# SQL for name, SQL for artist_name). The 'other' section has no documented
# layout and is not read.
LIBRARY_SECTIONS = (
    (
        "tracks",
        "track",
        "STRUCT(artist VARCHAR, album VARCHAR, track VARCHAR, uri VARCHAR)",
        "item.track",
        "item.artist",
    ),
    (
        "albums",
        "album",
        "STRUCT(artist VARCHAR, album VARCHAR, uri VARCHAR)",
        "item.album",
        "item.artist",
    ),
    ("artists", "artist", "STRUCT(name VARCHAR, uri VARCHAR)", "item.name", "NULL"),
    (
        "shows",
        "show",
        "STRUCT(name VARCHAR, publisher VARCHAR, uri VARCHAR)",
        "item.name",
        "item.publisher",
    ),
    (
        "episodes",
        "episode",
        'STRUCT(name VARCHAR, "show" VARCHAR, uri VARCHAR)',
        "item.name",
        'item."show"',
    ),
    (
        "bannedTracks",
        "banned_track",
        "STRUCT(artist VARCHAR, album VARCHAR, track VARCHAR, uri VARCHAR)",
        "item.track",
        "item.artist",
    ),
    (
        "bannedArtists",
        "banned_artist",
        "STRUCT(name VARCHAR, uri VARCHAR)",
        "item.name",
        "NULL",
    ),
)


def _columns_sql(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"


def _boolean_sql(key: str) -> str:
    return (
        f"CASE lower({key}) WHEN 'true' THEN true WHEN '1' THEN true "
        f"WHEN 'false' THEN false WHEN '0' THEN false END"
    )


def _stage_account(job: ImportJob, sources: list[SourceFile], fmt: str) -> None:
    variant = ACCOUNT_VARIANTS[fmt]
    keys = ACCOUNT_KEYS[fmt]
    declared = {k: ("BIGINT" if k == "msPlayed" else "VARCHAR") for k in keys}
    given = {alias for _, alias in variant["select"]}
    # Columns of the other variants, NULL here, so every play has the same key.
    absent = ", ".join(
        f"NULL AS {column}"
        for column in PLAY_KEY_COLUMNS
        if column not in given and column not in ACCOUNT_FIXED_COLUMNS
    )
    missing_names = " AND ".join(f"{key} IS NULL" for key, _ in variant["select"])
    for source in sources:
        job.require_content(source, "[")
    with disk_paths(sources) as paths:
        names = [str(path) for path in paths]
        select = (
            "SELECT 'spotify_account' AS source, "
            f"'{variant['kind']}' AS kind, "
            "timezone('UTC', try_strptime(endTime, ?)) AS ended_at, "
            "'minute' AS time_precision, msPlayed AS ms_played, "
            + ", ".join(f"{key} AS {alias}" for key, alias in variant["select"])
            + f", {absent}, CAST(NULL AS BOOLEAN) AS skipped, "
            "endTime IS NULL AS _no_time, "
            f"{missing_names} AS _no_names, "
            f"_file, _row FROM {numbered_json_files_sql(declared)}"
        )
        part = job.stage_files(
            sources,
            fmt,
            "listening_events",
            select,
            [ACCOUNT_TIME_FORMAT, names, names, len(names)],
            key_columns=PLAY_KEY_COLUMNS,
            kind=variant["kind"],
            disk_paths=paths,
        )
    job.check(
        part,
        "_no_time",
        "the record has no endTime, so this is not a Spotify StreamingHistory file",
        fix="check that the file is the one Spotify sent",
    )
    job.check(
        part,
        "ended_at IS NULL",
        f"endTime is not a time in the format {ACCOUNT_TIME_FORMAT}",
    )
    job.check(part, "ms_played IS NULL", "msPlayed is missing")
    job.check(part, "ms_played < 0", "msPlayed is negative")
    keys_text = ", ".join(key for key, _ in variant["select"])
    job.check(
        part,
        "_no_names",
        f"the record has none of the keys {keys_text}, so the file does not "
        "match its name",
        fix="check that the file was not renamed",
    )


def _stage_extended(job: ImportJob, sources: list[SourceFile], fmt: str) -> None:
    default_kind = "video" if fmt == "spotify_extended_video" else "music"
    for source in sources:
        job.require_content(source, "[")
    kind_sql = (
        "CASE WHEN spotify_episode_uri IS NOT NULL OR episode_name IS NOT NULL "
        "THEN 'podcast' "
        "WHEN audiobook_uri IS NOT NULL OR audiobook_title IS NOT NULL "
        "OR audiobook_chapter_uri IS NOT NULL THEN 'audiobook' "
        f"ELSE '{default_kind}' END"
    )
    booleans = ", ".join(f"{_boolean_sql(k)} AS {k}" for k in BOOLEAN_KEYS)
    bad_boolean = (
        "CASE "
        + " ".join(
            f"WHEN {k} IS NOT NULL AND ({_boolean_sql(k)}) IS NULL THEN '{k}'"
            for k in BOOLEAN_KEYS
        )
        + " END"
    )
    with disk_paths(sources) as paths:
        names = [str(path) for path in paths]
        select = (
            "SELECT 'spotify_extended' AS source, "
            f"{kind_sql} AS kind, "
            "timezone('UTC', try_strptime(ts, ?)) AS ended_at, "
            "'second' AS time_precision, ms_played, "
            "master_metadata_track_name AS track_name, "
            "master_metadata_album_artist_name AS artist_name, "
            "master_metadata_album_album_name AS album_name, "
            "spotify_track_uri AS track_uri, "
            "episode_show_name AS show_name, episode_name, "
            "spotify_episode_uri AS episode_uri, audiobook_title, audiobook_uri, "
            "audiobook_chapter_title AS chapter_title, "
            "audiobook_chapter_uri AS chapter_uri, reason_start, reason_end, "
            f"{booleans}, ts IS NULL AS _no_time, {bad_boolean} AS _bad_boolean, "
            f"_file, _row FROM {numbered_json_files_sql(EXTENDED_COLUMNS)}"
        )
        part = job.stage_files(
            sources,
            fmt,
            "listening_events",
            select,
            [EXTENDED_TIME_FORMAT, names, names, len(names)],
            key_columns=PLAY_KEY_COLUMNS,
            kind_sql="kind",
            disk_paths=paths,
        )
    job.check(
        part,
        "_no_time",
        "the record has no ts, so this is not a Spotify extended streaming "
        "history file",
        fix="check that the file is the one Spotify sent",
    )
    job.check(
        part,
        "ended_at IS NULL",
        "ts is not an ISO-8601 UTC time such as 2024-01-31T18:05:09Z",
    )
    job.check(part, "ms_played IS NULL", "ms_played is missing")
    job.check(part, "ms_played < 0", "ms_played is negative")
    job.check(
        part,
        "_bad_boolean IS NOT NULL",
        "shuffle, skipped or offline is neither true, false nor null",
    )


def _stage_library(job: ImportJob, source: SourceFile, fmt: str) -> None:
    job.require_content(source, "{")
    declared = {key: f"{struct}[]" for key, _, struct, _, _ in LIBRARY_SECTIONS}
    parts = []
    for key, item_type, _, name_sql, artist_sql in LIBRARY_SECTIONS:
        parts.append(
            f"SELECT '{item_type}' AS item_type, {name_sql} AS name, "
            f"{artist_sql} AS artist_name, item.uri AS uri, "
            f"'{key}' AS _section, _position "
            f"FROM (SELECT unnest({key}) AS item, "
            f"generate_subscripts({key}, 1) AS _position FROM doc)"
        )
    with source.disk_path() as path:
        select = (
            "WITH doc AS (SELECT * FROM read_json(?, format = 'unstructured', "
            f"records = true, columns = {_columns_sql(declared)})) "
            "SELECT *, row_number() OVER (ORDER BY _section, _position) AS _row "
            f"FROM ({' UNION ALL '.join(parts)})"
        )
        part = job.stage(
            source,
            fmt,
            "library_items",
            select,
            [str(path)],
            key_columns=("item_type", "name", "artist_name", "uri"),
            kind="library",
            disk_path=path,
        )
    job.check(
        part,
        "name IS NULL AND uri IS NULL",
        "a library item has neither a name nor a uri",
    )


def _drop_api_duplicates(con, participant_id: str) -> None:
    """Delete plays fetched from the Spotify API that this export also holds.

    The export is the fuller record (it has the play duration), so a play seen in
    both counts once, as the export's row.
    """
    from ..extract.spotify import drop_api_duplicates

    drop_api_duplicates(con, participant_id)


@register(PLATFORM)
def import_spotify(job: ImportJob) -> None:
    """Stage every Spotify export file found in ``job.files``.

    Files of one format are read together, so DuckDB parses them in parallel.
    """
    job.after_write.append(lambda con: _drop_api_duplicates(con, job.participant_id))
    by_format: dict[str, list[SourceFile]] = {}
    for source, fmt in job.match(FILE_PATTERNS):
        by_format.setdefault(fmt, []).append(source)
    for fmt, sources in by_format.items():
        if fmt in ACCOUNT_VARIANTS:
            _stage_account(job, sources, fmt)
        elif fmt == "spotify_library":
            for source in sources:
                _stage_library(job, source, fmt)
        else:
            _stage_extended(job, sources, fmt)
