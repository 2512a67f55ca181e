"""Discord features from a data package (``written_items``, ``discord_channels``).

A package holds only the participant's own messages, so every feature counts
what they sent. Direct messages are channels of kind ``dm`` or ``group_dm``, and
servers are channels of kind ``guild`` or ``thread``. Messages in channels of
unknown kind (no channel.json) are left out of the direct-message share. Days
and hours are in the participant's time zone. Without one, days fall back to UTC
and the night share is NULL.

The package marks no replies (messages carry no reference to the message they
answer), so there is no reply rate.
"""

from __future__ import annotations

from . import FeatureDefinition

SOURCE = ("written_items", "discord_channels")

FEATURES = (
    FeatureDefinition(
        "discord_messages_per_active_day",
        "Messages sent per day with at least one message (local date, UTC "
        "without a time zone).",
        "messages per day",
        SOURCE,
        10,
    ),
    FeatureDefinition(
        "discord_dm_share",
        "Share of messages sent in direct messages and group DMs, over messages "
        "in channels of known kind.",
        "ratio 0-1",
        SOURCE,
        10,
    ),
    FeatureDefinition(
        "discord_distinct_partners",
        "Distinct people the participant wrote to in one-to-one direct messages.",
        "people",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "discord_distinct_servers",
        "Distinct servers the participant wrote in.",
        "servers",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "discord_mention_rate",
        "Share of messages that mention at least one user (<@id>).",
        "ratio 0-1",
        SOURCE,
        10,
    ),
    FeatureDefinition(
        "discord_night_share",
        "Share of messages sent between 00:00 and 05:59 local time. NULL without "
        "a time zone.",
        "ratio 0-1",
        SOURCE,
        10,
    ),
)

SQL = """
WITH messages AS (
    SELECT w.participant_id, s.timezone, w.written_at, w.mentions,
           c.channel_kind, c.guild_id, c.partner_key,
           timezone(coalesce(s.timezone, 'UTC'), w.written_at) AS local_ts
    FROM written_items w
    JOIN feature_scope s ON s.participant_id = w.participant_id
    LEFT JOIN discord_channels c
      ON c.participant_id = w.participant_id AND c.channel_id = w.conversation_key
    WHERE w.platform = 'discord' AND w.is_own
),
stats AS (
    SELECT participant_id, count(*) AS n_obs, min(written_at) AS ws,
           max(written_at) AS we, any_value(timezone) AS timezone,
           count(*) / count(DISTINCT CAST(local_ts AS DATE)) AS per_day,
           avg(CASE WHEN mentions > 0 THEN 1 ELSE 0 END) AS mention_rate,
           avg(CASE WHEN hour(local_ts) < 6 THEN 1 ELSE 0 END) AS night,
           count(DISTINCT partner_key) FILTER (WHERE channel_kind = 'dm')
               AS partners,
           count(DISTINCT guild_id) FILTER (WHERE channel_kind IN
               ('guild', 'thread')) AS servers
    FROM messages GROUP BY participant_id
),
kind_stats AS (
    SELECT participant_id, count(*) AS n_obs, min(written_at) AS ws,
           max(written_at) AS we,
           avg(CASE WHEN channel_kind IN ('dm', 'group_dm') THEN 1 ELSE 0 END)
               AS dm_share
    FROM messages
    WHERE channel_kind IN ('dm', 'group_dm', 'guild', 'thread')
    GROUP BY participant_id
)
SELECT participant_id, 'discord_messages_per_active_day' AS feature,
       per_day AS value, n_obs, ws AS window_start, we AS window_end
FROM stats
UNION ALL
SELECT participant_id, 'discord_mention_rate', mention_rate, n_obs, ws, we
FROM stats
UNION ALL
SELECT participant_id, 'discord_night_share',
       CASE WHEN timezone IS NOT NULL THEN night END, n_obs, ws, we
FROM stats
UNION ALL
SELECT participant_id, 'discord_distinct_partners', partners, n_obs, ws, we
FROM stats
UNION ALL
SELECT participant_id, 'discord_distinct_servers', servers, n_obs, ws, we
FROM stats
UNION ALL
SELECT participant_id, 'discord_dm_share', dm_share, n_obs, ws, we
FROM kind_stats
"""
