"""Viewing features from Netflix (``viewing_events``).

Supplemental rows (trailers, hooks, recaps and the like) are excluded from every
feature. A title is the series title for an episode and the title otherwise.

Time of day uses ``started_at`` in the participant's time zone, so late-night share
is NULL without a time zone and for date-only sources (NetflixViewingHistory.csv).
A day for binge sessions is the local date of ``started_at`` when both the time and
the zone are known, else the export's ``watched_on`` date. Late night is 00:00 to
05:59 local time, the same window as listening night share.
"""

from __future__ import annotations

from . import FeatureDefinition

SOURCE = ("viewing_events",)

FEATURES = (
    FeatureDefinition(
        "viewing_hours",
        "Total viewing time over viewings with a recorded duration. NULL when no "
        "viewing has one (NetflixViewingHistory.csv records none).",
        "hours",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "viewing_distinct_titles",
        "Distinct titles viewed, counting a series once.",
        "titles",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "viewing_series_share",
        "Share of viewings that are episodes of a series.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "viewing_binge_sessions",
        "Number of (series, day) pairs with three or more distinct episodes of that "
        "series viewed on that day.",
        "sessions",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "viewing_late_night_share",
        "Share of timed viewings starting between 00:00 and 05:59 local time. NULL "
        "without a time zone or when the source has dates only.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
)

SQL = """
WITH views AS (
    SELECT v.participant_id, s.timezone, v.started_at, v.watched_on,
           v.time_precision, v.duration_s, v.title, v.series_title, v.is_episode,
           coalesce(v.started_at, CAST(v.watched_on AS TIMESTAMPTZ)) AS seen_at,
           CASE WHEN v.started_at IS NOT NULL AND s.timezone IS NOT NULL
                THEN CAST(timezone(s.timezone, v.started_at) AS DATE)
                ELSE v.watched_on END AS view_day
    FROM viewing_events v
    JOIN feature_scope s ON s.participant_id = v.participant_id
    WHERE NOT v.is_supplemental
),
view_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(seen_at) AS ws,
           max(seen_at) AS we,
           count(DISTINCT coalesce(series_title, title)) AS titles,
           avg(CASE WHEN is_episode THEN 1 ELSE 0 END) AS series_share
    FROM views GROUP BY participant_id
),
duration_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(seen_at) AS ws,
           max(seen_at) AS we, sum(duration_s) / 3600.0 AS hours
    FROM views WHERE duration_s IS NOT NULL GROUP BY participant_id
),
binge_days AS (
    SELECT participant_id, series_title, view_day
    FROM views
    WHERE is_episode AND series_title IS NOT NULL
    GROUP BY participant_id, series_title, view_day
    HAVING count(DISTINCT title) >= 3
),
binge_counts AS (
    SELECT participant_id, count(*) AS sessions
    FROM binge_days GROUP BY participant_id
),
timed_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(started_at) AS ws,
           max(started_at) AS we, any_value(timezone) AS timezone,
           avg(CASE WHEN hour(timezone(coalesce(timezone, 'UTC'), started_at)) < 6
                    THEN 1 ELSE 0 END) AS late_share
    FROM views
    WHERE started_at IS NOT NULL AND time_precision <> 'day'
    GROUP BY participant_id
)
SELECT participant_id, 'viewing_hours' AS feature, hours AS value, n_obs,
       ws AS window_start, we AS window_end
FROM duration_stats
UNION ALL
SELECT participant_id, 'viewing_distinct_titles', titles, n_obs, ws, we
FROM view_stats
UNION ALL
SELECT participant_id, 'viewing_series_share', series_share, n_obs, ws, we
FROM view_stats
UNION ALL
SELECT v.participant_id, 'viewing_binge_sessions', coalesce(b.sessions, 0),
       v.n_obs, v.ws, v.we
FROM view_stats v LEFT JOIN binge_counts b USING (participant_id)
UNION ALL
SELECT participant_id, 'viewing_late_night_share',
       CASE WHEN timezone IS NOT NULL THEN late_share END, n_obs, ws, we
FROM timed_stats
"""
