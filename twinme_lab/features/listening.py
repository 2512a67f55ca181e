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
# minute of it. NOTE: two identical account rows matched by one precise row are both
# dropped, so a repeated play can be undercounted by one in that rare case.
SQL = """
WITH scoped AS (
    SELECT e.*, s.timezone
    FROM listening_events e
    JOIN feature_scope s ON s.participant_id = e.participant_id
    WHERE e.kind IN ('music', 'podcast', 'audiobook')
),
precise AS (
    SELECT * FROM scoped WHERE time_precision <> 'minute'
),
unique_plays AS (
    SELECT * FROM precise
    UNION ALL
    SELECT m.* FROM scoped m
    WHERE m.time_precision = 'minute'
      AND NOT EXISTS (
          SELECT 1 FROM precise p
          WHERE p.participant_id = m.participant_id
            AND coalesce(p.track_name, p.episode_name, p.chapter_title)
                = coalesce(m.track_name, m.episode_name, m.chapter_title)
            AND p.ended_at BETWEEN m.ended_at - INTERVAL 1 MINUTE
                               AND m.ended_at + INTERVAL 1 MINUTE
      )
),
plays AS (
    SELECT participant_id, timezone, kind, ended_at, ms_played, artist_name,
           skipped, timezone(coalesce(timezone, 'UTC'), ended_at) AS local_ts
    FROM unique_plays
),
music AS (
    SELECT * FROM plays WHERE kind = 'music'
),
artist_plays AS (
    SELECT participant_id, artist_name, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY participant_id) AS total
    FROM music
    WHERE artist_name IS NOT NULL
    GROUP BY participant_id, artist_name
),
artist_stats AS (
    SELECT participant_id, count(*) AS artists, max(total) AS n_obs,
           max(n) / max(total) AS top_share,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY artist_name)
                     / ln(count(*)) END AS entropy
    FROM artist_plays
    GROUP BY participant_id
),
artist_window AS (
    SELECT participant_id, min(ended_at) AS ws, max(ended_at) AS we
    FROM music WHERE artist_name IS NOT NULL GROUP BY participant_id
),
first_heard AS (
    SELECT participant_id, artist_name,
           min(date_trunc('month', local_ts)) AS first_month
    FROM music WHERE artist_name IS NOT NULL
    GROUP BY participant_id, artist_name
),
month_span AS (
    SELECT participant_id,
           min(date_trunc('month', local_ts)) AS first_month,
           max(date_trunc('month', local_ts)) AS last_month
    FROM music WHERE artist_name IS NOT NULL GROUP BY participant_id
),
new_artists AS (
    SELECT m.participant_id,
           datediff('month', m.first_month, m.last_month) AS months_after,
           count(f.artist_name) FILTER (WHERE f.first_month > m.first_month)
               AS new_count
    FROM month_span m JOIN first_heard f USING (participant_id)
    GROUP BY m.participant_id, m.first_month, m.last_month
),
play_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(ended_at) AS ws,
           max(ended_at) AS we,
           sum(ms_played) / 3600000.0 AS hours,
           count(DISTINCT CAST(local_ts AS DATE)) AS active_days,
           CASE WHEN sum(ms_played) > 0 THEN
               coalesce(sum(ms_played) FILTER (WHERE kind = 'podcast'), 0)
               / sum(ms_played)
           END AS podcast_share,
           any_value(timezone) AS timezone,
           avg(CASE WHEN hour(local_ts) < 6 THEN 1 ELSE 0 END) AS night_share,
           avg(CASE WHEN dayofweek(local_ts) IN (0, 6) THEN 1 ELSE 0 END)
               AS weekend_share
    FROM plays GROUP BY participant_id
),
skip_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(ended_at) AS ws,
           max(ended_at) AS we,
           avg(CASE WHEN skipped THEN 1 ELSE 0 END) AS skip_rate
    FROM music WHERE skipped IS NOT NULL GROUP BY participant_id
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
SELECT a.participant_id, 'listening_distinct_artists', a.artists, a.n_obs,
       w.ws, w.we
FROM artist_stats a JOIN artist_window w USING (participant_id)
UNION ALL
SELECT a.participant_id, 'listening_artist_entropy', a.entropy, a.n_obs, w.ws, w.we
FROM artist_stats a JOIN artist_window w USING (participant_id)
UNION ALL
SELECT a.participant_id, 'listening_top_artist_share', a.top_share, a.n_obs,
       w.ws, w.we
FROM artist_stats a JOIN artist_window w USING (participant_id)
UNION ALL
SELECT n.participant_id, 'listening_new_artist_rate',
       CASE WHEN n.months_after > 0 THEN n.new_count / n.months_after END,
       a.n_obs, w.ws, w.we
FROM new_artists n
JOIN artist_stats a USING (participant_id)
JOIN artist_window w USING (participant_id)
UNION ALL
SELECT participant_id, 'listening_skip_rate', skip_rate, n_obs, ws, we
FROM skip_stats
"""
