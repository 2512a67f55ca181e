"""Discord features from API data (``communities`` of kind ``guild``).

The API lists the servers (guilds) a participant belongs to and whether they own
each one. A feature is not measured (NULL) when the latest extraction of the
guilds endpoint did not complete.
"""

from __future__ import annotations

from . import FeatureDefinition

SOURCE = ("communities",)

FEATURES = (
    FeatureDefinition(
        "discord_community_count",
        "Discord servers the participant belongs to.",
        "servers",
        SOURCE,
        1,
    ),
    FeatureDefinition(
        "discord_owned_communities",
        "Discord servers the participant owns.",
        "servers",
        SOURCE,
        1,
    ),
)

SQL = """
WITH latest AS (
    SELECT participant_id, arg_max(status, run_id) AS status
    FROM extract_run_log
    WHERE platform = 'discord' AND endpoint = 'guilds'
    GROUP BY participant_id
), measured AS (
    SELECT s.participant_id
    FROM feature_scope s JOIN latest l USING (participant_id)
    WHERE l.status IN ('ok', 'empty')
), guilds AS (
    SELECT m.participant_id, count(c.community_id) AS n,
           count(c.community_id) FILTER (WHERE c.owned) AS owned
    FROM measured m LEFT JOIN communities c
      ON c.participant_id = m.participant_id AND c.platform = 'discord'
     AND c.kind = 'guild'
    GROUP BY m.participant_id
)
SELECT participant_id, 'discord_community_count' AS feature, n::DOUBLE AS value,
       n AS n_obs, NULL::TIMESTAMPTZ AS window_start,
       NULL::TIMESTAMPTZ AS window_end
FROM guilds
UNION ALL
SELECT participant_id, 'discord_owned_communities', owned::DOUBLE, n, NULL, NULL
FROM guilds
"""
