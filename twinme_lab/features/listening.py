"""Listening features from Spotify plays (``listening_events``).

Plays are audio plays: ``kind`` music, podcast or audiobook. Spotify video plays
(``kind`` video) are left out of every listening feature. Artist features use
music plays with an artist name, counted in plays (not in time).

Local time is ``ended_at`` (the end of playback) in the participant's time zone.
Night is 00:00 to 05:59 local time, the weekend is Saturday and Sunday local time.
Both time-of-day features are NULL for a participant without a time zone. Day and
month boundaries for active days and new artists use the local zone when known,
else UTC.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import FeatureDefinition

SOURCE = ("listening_events",)

FEATURES = (
    FeatureDefinition(
        "listening_hours",
        "Total audio listening time (music, podcasts, audiobooks).",
        "hours",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "listening_active_days",
        "Distinct days with at least one audio play (local date, UTC without a "
        "time zone).",
        "days",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "listening_distinct_artists",
        "Distinct artists among music plays.",
        "artists",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "listening_artist_entropy",
        "Shannon entropy of music plays over artists, divided by the log of the "
        "number of artists (0 = one artist, 1 = plays spread evenly). 0 when all "
        "plays are of one artist.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "listening_top_artist_share",
        "Share of music plays that are of the most-played artist.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "listening_skip_rate",
        "Share of music plays marked skipped, over the plays whose export records "
        "skipping; plays with no skip field are left out. NULL when none has one.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "listening_night_share",
        "Share of audio plays ending between 00:00 and 05:59 local time. NULL "
        "without a time zone.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "listening_weekend_share",
        "Share of audio plays ending on a Saturday or Sunday, local time (2/7 for "
        "evenly spread listening). NULL without a time zone.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "listening_podcast_share",
        "Share of audio listening time spent on podcasts.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "listening_new_artist_rate",
        "Artists first heard after the first calendar month of the history, per "
        "month after the first. NULL when the history spans one month.",
        "artists per month",
        SOURCE,
        1,
    ),
)

# Features read from the per-artist aggregation, and features that need local time.
ARTIST_AGGREGATE_FEATURES = frozenset(
    {
        "listening_artist_entropy",
        "listening_top_artist_share",
        "listening_new_artist_rate",
    }
)
LOCAL_TIME_FEATURES = frozenset(
    {
        "listening_active_days",
        "listening_night_share",
        "listening_weekend_share",
        "listening_new_artist_rate",
    }
)

# The query runs after setup statements that create the temporary tables below,
# and compute_features drops them afterwards. Small inputs are tables, not CTEs,
# so that DuckDB plans the joins with their exact row counts. In a version built
# from CTEs, DuckDB 1.5.5 estimated the zone-hour CTE at 1.8 million rows (it had
# 4,368) and built the join's hash table on the 10 million plays instead. That
# query took 6.6 s, the table version 1.3 s, for five features on the data of
# benchmarks/bench_features.py (2-core VM, shared with other jobs).
TEMP_TABLES = ("listening_scope", "listening_zone_hours", "listening_minute_plays")

_AUDIO_KINDS = "kind IN ('music', 'podcast', 'audiobook')"

# The participants to compute, each zone numbered so that the zone-hour join has
# integer keys. A participant without a time zone uses UTC for calendar days.
_SCOPE = """
CREATE OR REPLACE TEMP TABLE listening_scope AS
SELECT participant_id, timezone, coalesce(timezone, 'UTC') AS zone,
       CAST(dense_rank() OVER (ORDER BY coalesce(timezone, 'UTC')) AS INTEGER)
           AS zone_id
FROM feature_scope
"""

_HOUR_START_US = """epoch_us({t})
           - (epoch_us({t}) % 3600000000 + 3600000000) % 3600000000"""

# ``timezone()`` with a zone taken from a column took about 4 s per million rows on
# a 2-core VM (DuckDB 1.5.5), against 0.4 s with a constant zone. So the offset is
# computed once per zone and UTC hour, at the first and the last microsecond of the
# hour, and added to every play of that hour. An hour whose two offsets differ
# contains a transition, and its plays are converted one by one. This assumes that
# no zone changes its offset twice within one UTC hour and returns to the first
# offset. None of the 598 zones of tzdata 2026f does. NOTE: DuckDB converts with
# the tz database bundled in its ICU extension, which may be another release.
_ZONE_HOURS = f"""
CREATE OR REPLACE TEMP TABLE listening_zone_hours AS
WITH hours AS (
    SELECT DISTINCT s.zone_id,
           {_HOUR_START_US.format(t="e.ended_at")} AS hour_start_us
    FROM listening_events e
    JOIN listening_scope s ON s.participant_id = e.participant_id
    WHERE e.{_AUDIO_KINDS}
),
zones AS (SELECT DISTINCT zone_id, zone FROM listening_scope)
SELECT h.zone_id, h.hour_start_us,
       epoch_us(timezone(z.zone, make_timestamptz(h.hour_start_us)))
           - h.hour_start_us AS start_offset_us,
       epoch_us(timezone(z.zone, make_timestamptz(h.hour_start_us + 3599999999)))
           - (h.hour_start_us + 3599999999) AS end_offset_us
FROM hours h
JOIN zones z ON z.zone_id = h.zone_id
"""

# Spotify's account data and its extended history cover the same plays when a
# participant hands in both. A play counts once: an account-data row (minute
# precision) is dropped when a second-precision row of the same title ends within a
# minute of it. This table keeps the minute rows that are not dropped. The
# anti-join reads only the precise rows of participants that have minute rows, so
# participants without account data add no work to it. NOTE: two identical
# account rows matched by one precise row are both dropped, so a repeated play can
# be undercounted by one in that rare case.
_MINUTE_PLAYS = f"""
CREATE OR REPLACE TEMP TABLE listening_minute_plays AS
WITH minute_rows AS (
    SELECT e.participant_id, e.kind, e.ended_at, e.ms_played, e.artist_name,
           e.skipped, coalesce(e.track_name, e.episode_name, e.chapter_title)
               AS title
    FROM listening_events e
    JOIN listening_scope s ON s.participant_id = e.participant_id
    WHERE e.{_AUDIO_KINDS} AND e.time_precision = 'minute'
),
precise_matches AS (
    SELECT participant_id, ended_at,
           coalesce(track_name, episode_name, chapter_title) AS title
    FROM listening_events
    WHERE {_AUDIO_KINDS} AND time_precision <> 'minute'
      AND participant_id IN (SELECT participant_id FROM minute_rows)
)
SELECT participant_id, kind, ended_at, ms_played, artist_name, skipped
FROM minute_rows m
WHERE NOT EXISTS (
    SELECT 1 FROM precise_matches p
    WHERE p.participant_id = m.participant_id
      AND p.title = m.title
      AND p.ended_at BETWEEN m.ended_at - INTERVAL 1 MINUTE
                         AND m.ended_at + INTERVAL 1 MINUTE
)
"""

# Audio plays, each counted once, with the participant's zone.
_UNIQUE_PLAYS = f"""
unique_plays AS (
    SELECT e.participant_id, s.timezone, s.zone, s.zone_id, e.kind, e.ended_at,
           e.ms_played, e.artist_name, e.skipped
    FROM listening_events e
    JOIN listening_scope s ON s.participant_id = e.participant_id
    WHERE e.{_AUDIO_KINDS} AND e.time_precision <> 'minute'
    UNION ALL
    SELECT m.participant_id, s.timezone, s.zone, s.zone_id, m.kind, m.ended_at,
           m.ms_played, m.artist_name, m.skipped
    FROM listening_minute_plays m
    JOIN listening_scope s ON s.participant_id = m.participant_id
)"""

_PLAYS_LOCAL = f"""
plays AS {{materialized}}(
    SELECT participant_id, timezone, kind, ended_at, ms_played, artist_name,
           skipped, local_ts, CAST(local_ts AS DATE) AS local_day,
           date_trunc('month', local_ts) AS local_month
    FROM (
        SELECT u.*,
               CASE WHEN o.start_offset_us = o.end_offset_us
                    THEN make_timestamp(epoch_us(u.ended_at) + o.start_offset_us)
                    ELSE timezone(u.zone, u.ended_at) END AS local_ts
        FROM unique_plays u
        JOIN listening_zone_hours o
          ON o.zone_id = u.zone_id
         AND o.hour_start_us = {_HOUR_START_US.format(t="u.ended_at")}
    )
)"""

_PLAYS_UTC = """
plays AS {materialized}(
    SELECT participant_id, timezone, kind, ended_at, ms_played, artist_name,
           skipped
    FROM unique_plays
)"""

# Aggregates of ``play_stats`` per feature. Every play feature also gets the
# participant's play count and first and last play (``n_obs, ws, we``).
_MUSIC_SKIP = "kind = 'music' AND skipped IS NOT NULL"
_MUSIC_ARTIST = "kind = 'music' AND artist_name IS NOT NULL"
_PLAY_AGGREGATES = {
    "listening_hours": ["sum(ms_played) / 3600000.0 AS hours"],
    "listening_active_days": ["count(DISTINCT local_day) AS active_days"],
    "listening_podcast_share": [
        """CASE WHEN sum(ms_played) > 0 THEN
               coalesce(sum(ms_played) FILTER (WHERE kind = 'podcast'), 0)
               / sum(ms_played)
           END AS podcast_share"""
    ],
    "listening_night_share": [
        "any_value(timezone) AS timezone",
        "avg(CASE WHEN hour(local_ts) < 6 THEN 1 ELSE 0 END) AS night_share",
    ],
    "listening_weekend_share": [
        "any_value(timezone) AS timezone",
        "avg(CASE WHEN dayofweek(local_ts) IN (0, 6) THEN 1 ELSE 0 END)"
        " AS weekend_share",
    ],
    "listening_skip_rate": [
        f"count(*) FILTER (WHERE {_MUSIC_SKIP}) AS skip_n_obs",
        f"min(ended_at) FILTER (WHERE {_MUSIC_SKIP}) AS skip_ws",
        f"max(ended_at) FILTER (WHERE {_MUSIC_SKIP}) AS skip_we",
        "avg(CASE WHEN skipped THEN 1 ELSE 0 END)"
        f" FILTER (WHERE {_MUSIC_SKIP}) AS skip_rate",
    ],
    # Used only when no per-artist feature is requested. The count and window are
    # those of ``artist_stats``: music plays with an artist name.
    "listening_distinct_artists": [
        f"count(DISTINCT artist_name) FILTER (WHERE {_MUSIC_ARTIST}) AS artists",
        f"count(*) FILTER (WHERE {_MUSIC_ARTIST}) AS artist_n_obs",
        f"min(ended_at) FILTER (WHERE {_MUSIC_ARTIST}) AS artist_ws",
        f"max(ended_at) FILTER (WHERE {_MUSIC_ARTIST}) AS artist_we",
    ],
}

_ARTIST_STATS = f"""
artist_plays AS (
    SELECT participant_id, artist_name, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY participant_id) AS total,
           min(ended_at) AS first_end, max(ended_at) AS last_end{{months}}
    FROM plays
    WHERE {_MUSIC_ARTIST}
    GROUP BY participant_id, artist_name
),
artist_stats AS MATERIALIZED (
    SELECT participant_id, count(*) AS artists, max(total) AS n_obs,
           max(n) / max(total) AS top_share,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY artist_name)
                     / ln(count(*)) END AS entropy,
           min(first_end) AS ws, max(last_end) AS we{{new_artists}}
    FROM artist_plays
    GROUP BY participant_id
)"""

_ARTIST_MONTHS = """,
           min(local_month) AS first_month, max(local_month) AS last_month,
           min(min(local_month)) OVER (PARTITION BY participant_id)
               AS history_first_month"""

_ARTIST_NEW = """,
           datediff('month', min(first_month), max(last_month)) AS months_after,
           count(*) FILTER (WHERE first_month > history_first_month) AS new_count"""

# Per feature: the value expression and the rows it reads. "plays" rows carry the
# audio play count and first and last play, "skips" rows the music plays with a
# skip field, "artists" rows the music plays with an artist name. Distinct artists
# reads "artist_plays" (``play_stats``) only when no per-artist feature is
# requested, else ``artist_stats``; both give the same count and window.
_OUTPUT = {
    "listening_hours": ("hours", "plays"),
    "listening_active_days": ("active_days", "plays"),
    "listening_distinct_artists": ("artists", "artists"),
    "listening_artist_entropy": ("entropy", "artists"),
    "listening_top_artist_share": ("top_share", "artists"),
    "listening_skip_rate": ("skip_rate", "skips"),
    "listening_night_share": (
        "CASE WHEN timezone IS NOT NULL THEN night_share END",
        "plays",
    ),
    "listening_weekend_share": (
        "CASE WHEN timezone IS NOT NULL THEN weekend_share END",
        "plays",
    ),
    "listening_podcast_share": ("podcast_share", "plays"),
    "listening_new_artist_rate": (
        "CASE WHEN months_after > 0 THEN new_count / months_after END",
        "artists",
    ),
}
_ROWS = {
    "plays": ("n_obs", "ws", "we", "play_stats"),
    "skips": ("skip_n_obs", "skip_ws", "skip_we", "play_stats WHERE skip_n_obs > 0"),
    "artists": ("n_obs", "ws", "we", "artist_stats"),
    "artist_plays": (
        "artist_n_obs",
        "artist_ws",
        "artist_we",
        "play_stats WHERE artist_n_obs > 0",
    ),
}


def build_sql(names: Iterable[str]) -> tuple[tuple[str, ...], str]:
    """Build the setup statements and the query for the features in ``names``.

    Returns the statements that create :data:`TEMP_TABLES` (run them first, in
    order) and the query. The query converts to local time only for a feature
    that needs the local date or hour, and aggregates per artist only for
    entropy, top-artist share or new-artist rate. Each feature's expression is
    the same in every query, so a value does not depend on which other features
    are requested. Raises ValueError for an empty or unknown name.
    """
    wanted = set(names)
    declared = [d.name for d in FEATURES]
    unknown = wanted - set(declared)
    if unknown:
        raise ValueError(f"Not a listening feature: {', '.join(sorted(unknown))}.")
    if not wanted:
        raise ValueError("build_sql needs at least one listening feature.")
    requested = [name for name in declared if name in wanted]
    local = bool(wanted & LOCAL_TIME_FEATURES)
    per_artist = bool(wanted & ARTIST_AGGREGATE_FEATURES)
    sources = {name: _OUTPUT[name][1] for name in requested}
    if not per_artist and "listening_distinct_artists" in wanted:
        sources["listening_distinct_artists"] = "artist_plays"
    play_features = [n for n in requested if sources[n] != "artists"]
    artist_features = [n for n in requested if sources[n] == "artists"]

    setup = (_SCOPE, _ZONE_HOURS, _MINUTE_PLAYS) if local else (_SCOPE, _MINUTE_PLAYS)
    # ``plays`` is materialized when both aggregations read it.
    materialized = "MATERIALIZED " if play_features and artist_features else ""
    plays = _PLAYS_LOCAL if local else _PLAYS_UTC
    ctes = [_UNIQUE_PLAYS, plays.format(materialized=materialized)]
    if play_features:
        ctes.append(_play_stats(play_features))
    if artist_features:
        new_rate = "listening_new_artist_rate" in wanted
        ctes.append(
            _ARTIST_STATS.format(
                months=_ARTIST_MONTHS if new_rate else "",
                new_artists=_ARTIST_NEW if new_rate else "",
            )
        )
    selects = []
    for name in requested:
        value = _OUTPUT[name][0]
        n_obs, start, end, rows = _ROWS[sources[name]]
        selects.append(
            f"SELECT participant_id, '{name}' AS feature, {value} AS value, "
            f"{n_obs} AS n_obs, {start} AS window_start, {end} AS window_end "
            f"FROM {rows}"
        )
    query = "WITH" + ",".join(ctes) + "\n" + "\nUNION ALL\n".join(selects)
    return setup, query


def _play_stats(play_features: list[str]) -> str:
    """Return the ``play_stats`` CTE with the aggregates of ``play_features``."""
    aggregates = [
        "participant_id",
        "count(*) AS n_obs",
        "min(ended_at) AS ws",
        "max(ended_at) AS we",
    ]
    for name in play_features:
        for aggregate in _PLAY_AGGREGATES[name]:
            if aggregate not in aggregates:
                aggregates.append(aggregate)
    columns = ",\n           ".join(aggregates)
    return (
        f"\nplay_stats AS MATERIALIZED (\n    SELECT {columns}\n"
        "    FROM plays GROUP BY participant_id\n)"
    )


SETUP_SQL, SQL = build_sql(d.name for d in FEATURES)
