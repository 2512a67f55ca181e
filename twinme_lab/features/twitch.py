"""Twitch features from API data (``communities`` rows of kind ``channel``).

Not measured (NULL) when the latest extraction of followed channels did not
complete.
"""

from __future__ import annotations

from . import FeatureDefinition

FEATURES = (
    FeatureDefinition(
        "twitch_followed_channels",
        "Channels the participant follows on Twitch.",
        "channels",
        ("communities",),
        1,
    ),
)

SQL = """
WITH latest AS (
    SELECT participant_id, arg_max(status, run_id) AS status
    FROM extract_run_log
    WHERE platform = 'twitch' AND endpoint = 'followed_channels'
    GROUP BY ALL
), measured AS (
    SELECT participant_id FROM feature_scope JOIN latest USING (participant_id)
    WHERE status IN ('ok', 'empty')
)
SELECT m.participant_id, 'twitch_followed_channels' AS feature,
       count(c.community_id)::DOUBLE AS value, count(c.community_id) AS n_obs,
       min(c.joined_at) AS window_start, max(c.joined_at) AS window_end
FROM measured m LEFT JOIN communities c
  ON c.participant_id = m.participant_id AND c.platform = 'twitch'
GROUP BY m.participant_id
"""
