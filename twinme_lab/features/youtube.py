"""YouTube features from Takeout watch and search history (``youtube_events``).

Watches are rows of kind ``watch``, removed videos included. Ads (kind ``ad``)
and "Visited YouTube Music" rows (kind ``visit``) are left out of every feature.
Takeout records no watch durations, so watch hours are NULL for Takeout data and
``youtube_watches`` gives the count. Topics come from ``channel_topics``, the
YouTube Data API topic categories of channels that the extractor caches, so topic
diversity is known only for watches of channels it has looked up.
Night is 00:00 to 05:59 in the participant's time zone, NULL without one.
"""

from __future__ import annotations

from . import FeatureDefinition

SOURCE = ("youtube_events",)

FEATURES = (
    FeatureDefinition(
        "youtube_watches",
        "Videos watched (Takeout rows 'Watched ...', ads and visits excluded).",
        "videos",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "youtube_watch_hours",
        "Watch time over the watches whose duration is known. Takeout history "
        "has no durations, so this is NULL for it: use youtube_watches.",
        "hours",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "youtube_distinct_channels",
        "Distinct channels among watches that name their channel.",
        "channels",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "youtube_channel_entropy",
        "Shannon entropy of watches over channels divided by the log of the "
        "number of channels (0 = one channel, 1 = spread evenly).",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "youtube_music_share",
        "Share of watches made in YouTube Music (Takeout header 'YouTube Music').",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "youtube_night_share",
        "Share of watches between 00:00 and 05:59 local time. NULL without a "
        "time zone.",
        "ratio 0-1",
        SOURCE,
        5,
    ),
    FeatureDefinition(
        "youtube_search_watch_ratio",
        "Searches per watch over the same history. NULL unless a "
        "search-history.json was imported for the participant.",
        "searches per watch",
        SOURCE + ("imports",),
        5,
    ),
    FeatureDefinition(
        "youtube_topic_diversity",
        "Shannon entropy of watches over the topic categories of their channels "
        "(YouTube Data API topicDetails, a watch counting once for each topic of "
        "its channel) divided by the log of the number of topics, over watches "
        "whose channel topics are known.",
        "ratio 0-1",
        SOURCE + ("channel_topics",),
        5,
    ),
)

SQL = """
WITH rows AS (
    SELECT e.participant_id, s.timezone, e.kind, e.occurred_at, e.product,
           e.duration_s, e.channel_id,
           coalesce(e.channel_id, e.channel_name) AS channel,
           timezone(coalesce(s.timezone, 'UTC'), e.occurred_at) AS local_ts
    FROM youtube_events e
    JOIN feature_scope s ON s.participant_id = e.participant_id
    WHERE e.kind IN ('watch', 'search')
),
watches AS (
    SELECT * FROM rows WHERE kind = 'watch'
),
watch_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(occurred_at) AS ws,
           max(occurred_at) AS we, any_value(timezone) AS timezone,
           avg(CASE WHEN product = 'YouTube Music' THEN 1 ELSE 0 END) AS music,
           avg(CASE WHEN hour(local_ts) < 6 THEN 1 ELSE 0 END) AS night
    FROM watches GROUP BY participant_id
),
duration_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(occurred_at) AS ws,
           max(occurred_at) AS we, sum(duration_s) / 3600.0 AS hours
    FROM watches WHERE duration_s IS NOT NULL GROUP BY participant_id
),
channel_counts AS (
    SELECT participant_id, channel, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY participant_id) AS total
    FROM watches WHERE channel IS NOT NULL GROUP BY participant_id, channel
),
channel_stats AS (
    SELECT participant_id, count(*) AS channels, max(total) AS n_obs,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY channel)
                     / ln(count(*)) END AS entropy
    FROM channel_counts GROUP BY participant_id
),
channel_window AS (
    SELECT participant_id, min(occurred_at) AS ws, max(occurred_at) AS we
    FROM watches WHERE channel IS NOT NULL GROUP BY participant_id
),
topic_watches AS (
    SELECT w.participant_id, w.occurred_at, unnest(t.topics) AS topic
    FROM watches w
    JOIN channel_topics t ON t.platform = 'youtube' AND t.channel_id = w.channel_id
),
category_counts AS (
    SELECT participant_id, topic AS category, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY participant_id) AS total
    FROM topic_watches GROUP BY participant_id, topic
),
topic_window AS (
    SELECT w.participant_id, count(*) AS n_obs, min(w.occurred_at) AS ws,
           max(w.occurred_at) AS we
    FROM watches w
    SEMI JOIN channel_topics t
      ON t.platform = 'youtube' AND t.channel_id = w.channel_id
         AND len(t.topics) > 0
    GROUP BY w.participant_id
),
category_stats AS (
    SELECT participant_id,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY category)
                     / ln(count(*)) END AS entropy
    FROM category_counts GROUP BY participant_id
),
searched AS (
    SELECT DISTINCT participant_id FROM imports
    WHERE platform = 'youtube' AND format LIKE '%youtube_search_history%'
),
search_stats AS (
    SELECT r.participant_id, count(*) AS n_obs, min(r.occurred_at) AS ws,
           max(r.occurred_at) AS we,
           count(*) FILTER (WHERE r.kind = 'search') AS searches,
           count(*) FILTER (WHERE r.kind = 'watch') AS watches
    FROM rows r JOIN searched USING (participant_id)
    GROUP BY r.participant_id
)
SELECT participant_id, 'youtube_watches' AS feature, n_obs AS value, n_obs,
       ws AS window_start, we AS window_end
FROM watch_stats
UNION ALL
SELECT participant_id, 'youtube_watch_hours', hours, n_obs, ws, we
FROM duration_stats
UNION ALL
SELECT participant_id, 'youtube_music_share', music, n_obs, ws, we
FROM watch_stats
UNION ALL
SELECT participant_id, 'youtube_night_share',
       CASE WHEN timezone IS NOT NULL THEN night END, n_obs, ws, we
FROM watch_stats
UNION ALL
SELECT c.participant_id, 'youtube_distinct_channels', c.channels, c.n_obs, w.ws, w.we
FROM channel_stats c JOIN channel_window w USING (participant_id)
UNION ALL
SELECT c.participant_id, 'youtube_channel_entropy', c.entropy, c.n_obs, w.ws, w.we
FROM channel_stats c JOIN channel_window w USING (participant_id)
UNION ALL
SELECT c.participant_id, 'youtube_topic_diversity', c.entropy, w.n_obs, w.ws, w.we
FROM category_stats c JOIN topic_window w USING (participant_id)
UNION ALL
SELECT participant_id, 'youtube_search_watch_ratio',
       CASE WHEN watches > 0 THEN searches / watches END, n_obs, ws, we
FROM search_stats
"""
