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

# Spotify's account data and its extended history cover the same plays when a
# participant hands in both. A play counts once: an account-data row (minute
# precision) is dropped when a second-precision row of the same title ends within a
# minute of it. The anti-join reads only the precise rows of participants that have
# minute rows, so participants without account data add no work to it. NOTE: two
# identical account rows matched by one precise row are both dropped, so a repeated
# play can be undercounted by one in that rare case.
#
# ``timezone()`` with a zone taken from a column took about 4 s per million rows on
# a 2-core VM (DuckDB 1.5.5), against 0.4 s with a constant zone. So the offset is
# computed once per zone and UTC hour, at the first and the last microsecond of the
# hour, and added to every play of that hour. An hour whose two offsets differ
# contains a transition, and its plays are converted one by one. This assumes that
# no zone changes its offset twice within one UTC hour and returns to the first
# offset. None of the 598 zones of tzdata 2026f does. NOTE: DuckDB converts with
# the tz database bundled in its ICU extension, which may be another release.
#
# ``plays`` is materialized because two aggregations read it: one per
# participant and one per participant and artist.
SQL = """
WITH audio AS (
    SELECT e.participant_id, s.timezone, coalesce(s.timezone, 'UTC') AS zone,
           e.kind, e.ended_at, e.time_precision, e.ms_played, e.artist_name,
           e.skipped, coalesce(e.track_name, e.episode_name, e.chapter_title) AS title,
           epoch_us(e.ended_at)
               - (epoch_us(e.ended_at) % 3600000000 + 3600000000) % 3600000000
               AS hour_start_us
    FROM listening_events e
    JOIN feature_scope s ON s.participant_id = e.participant_id
    WHERE e.kind IN ('music', 'podcast', 'audiobook')
),
minute_rows AS MATERIALIZED (
    SELECT * FROM audio WHERE time_precision = 'minute'
),
precise_matches AS (
    SELECT participant_id, title, ended_at FROM audio
    WHERE time_precision <> 'minute'
      AND participant_id IN (SELECT participant_id FROM minute_rows)
),
unique_plays AS (
    SELECT * FROM audio WHERE time_precision <> 'minute'
    UNION ALL
    SELECT m.* FROM minute_rows m
    WHERE NOT EXISTS (
        SELECT 1 FROM precise_matches p
        WHERE p.participant_id = m.participant_id
          AND p.title = m.title
          AND p.ended_at BETWEEN m.ended_at - INTERVAL 1 MINUTE
                             AND m.ended_at + INTERVAL 1 MINUTE
    )
),
zone_offsets AS (
    SELECT zone, hour_start_us,
           epoch_us(timezone(zone, make_timestamptz(hour_start_us)))
               - hour_start_us AS start_offset_us,
           epoch_us(timezone(zone, make_timestamptz(hour_start_us + 3599999999)))
               - (hour_start_us + 3599999999) AS end_offset_us
    FROM (SELECT DISTINCT zone, hour_start_us FROM audio)
),
plays AS MATERIALIZED (
    SELECT participant_id, timezone, kind, ended_at, ms_played, artist_name,
           skipped, local_ts, CAST(local_ts AS DATE) AS local_day,
           date_trunc('month', local_ts) AS local_month
    FROM (
        SELECT u.*,
               CASE WHEN o.start_offset_us = o.end_offset_us
                    THEN make_timestamp(epoch_us(u.ended_at) + o.start_offset_us)
                    ELSE timezone(u.zone, u.ended_at) END AS local_ts
        FROM unique_plays u
        JOIN zone_offsets o USING (zone, hour_start_us)
    )
),
play_stats AS MATERIALIZED (
    SELECT participant_id, count(*) AS n_obs, min(ended_at) AS ws,
           max(ended_at) AS we,
           sum(ms_played) / 3600000.0 AS hours,
           count(DISTINCT local_day) AS active_days,
           CASE WHEN sum(ms_played) > 0 THEN
               coalesce(sum(ms_played) FILTER (WHERE kind = 'podcast'), 0)
               / sum(ms_played)
           END AS podcast_share,
           any_value(timezone) AS timezone,
           avg(CASE WHEN hour(local_ts) < 6 THEN 1 ELSE 0 END) AS night_share,
           avg(CASE WHEN dayofweek(local_ts) IN (0, 6) THEN 1 ELSE 0 END)
               AS weekend_share,
           count(*) FILTER (WHERE kind = 'music' AND skipped IS NOT NULL)
               AS skip_n_obs,
           min(ended_at) FILTER (WHERE kind = 'music' AND skipped IS NOT NULL)
               AS skip_ws,
           max(ended_at) FILTER (WHERE kind = 'music' AND skipped IS NOT NULL)
               AS skip_we,
           avg(CASE WHEN skipped THEN 1 ELSE 0 END)
               FILTER (WHERE kind = 'music' AND skipped IS NOT NULL) AS skip_rate
    FROM plays GROUP BY participant_id
),
artist_plays AS (
    SELECT participant_id, artist_name, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY participant_id) AS total,
           min(ended_at) AS first_end, max(ended_at) AS last_end,
           min(local_month) AS first_month, max(local_month) AS last_month,
           min(min(local_month)) OVER (PARTITION BY participant_id)
               AS history_first_month
    FROM plays
    WHERE kind = 'music' AND artist_name IS NOT NULL
    GROUP BY participant_id, artist_name
),
artist_stats AS MATERIALIZED (
    SELECT participant_id, count(*) AS artists, max(total) AS n_obs,
           max(n) / max(total) AS top_share,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY artist_name)
                     / ln(count(*)) END AS entropy,
           min(first_end) AS ws, max(last_end) AS we,
           datediff('month', min(first_month), max(last_month)) AS months_after,
           count(*) FILTER (WHERE first_month > history_first_month) AS new_count
    FROM artist_plays
    GROUP BY participant_id
)
SELECT participant_id, 'listening_hours' AS feature, hours AS value, n_obs,
       ws AS window_start, we AS window_end
FROM play_stats
UNION ALL
SELECT participant_id, 'listening_active_days', active_days, n_obs, ws, we
FROM play_stats
UNION ALL
SELECT participant_id, 'listening_podcast_share', podcast_share, n_obs, ws, we
FROM play_stats
UNION ALL
SELECT participant_id, 'listening_night_share',
       CASE WHEN timezone IS NOT NULL THEN night_share END, n_obs, ws, we
FROM play_stats
UNION ALL
SELECT participant_id, 'listening_weekend_share',
       CASE WHEN timezone IS NOT NULL THEN weekend_share END, n_obs, ws, we
FROM play_stats
UNION ALL
SELECT participant_id, 'listening_skip_rate', skip_rate, skip_n_obs, skip_ws,
       skip_we
FROM play_stats WHERE skip_n_obs > 0
UNION ALL
SELECT participant_id, 'listening_distinct_artists', artists, n_obs, ws, we
FROM artist_stats
UNION ALL
SELECT participant_id, 'listening_artist_entropy', entropy, n_obs, ws, we
FROM artist_stats
UNION ALL
SELECT participant_id, 'listening_top_artist_share', top_share, n_obs, ws, we
FROM artist_stats
UNION ALL
SELECT participant_id, 'listening_new_artist_rate',
       CASE WHEN months_after > 0 THEN new_count / months_after END,
       n_obs, ws, we
FROM artist_stats
"""
