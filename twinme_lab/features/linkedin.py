"""LinkedIn features from an export: network, career, skills and activity.

Activity rates (posts, comments, reactions per month) are over the activity
window: the calendar months from the first to the last share, comment or
reaction, both included. Each rate is NULL unless the participant's export had
the file it counts (``Shares.csv``, ``Comments.csv``, ``Reactions.csv``), so a
missing file is never read as zero activity.
"""

from __future__ import annotations

from . import FeatureDefinition

FEATURES = (
    FeatureDefinition(
        "linkedin_connections",
        "Connections listed in Connections.csv.",
        "connections",
        ("linkedin_connections",),
        1,
    ),
    FeatureDefinition(
        "linkedin_connections_per_year",
        "Connections per calendar year, from the year of the first connection to "
        "the year of the last, both included.",
        "connections per year",
        ("linkedin_connections",),
        5,
    ),
    FeatureDefinition(
        "linkedin_career_moves",
        "Changes of position: positions listed in Positions.csv minus one.",
        "moves",
        ("linkedin_positions",),
        1,
    ),
    FeatureDefinition(
        "linkedin_skills",
        "Skills listed in Skills.csv.",
        "skills",
        ("linkedin_skills",),
        1,
    ),
    FeatureDefinition(
        "linkedin_posts_per_month",
        "Shares (posts) per month of the activity window.",
        "posts per month",
        ("written_items", "imports"),
        1,
    ),
    FeatureDefinition(
        "linkedin_comments_per_month",
        "Comments per month of the activity window.",
        "comments per month",
        ("written_items", "imports"),
        1,
    ),
    FeatureDefinition(
        "linkedin_reactions_per_month",
        "Reactions (likes and others) per month of the activity window.",
        "reactions per month",
        ("linkedin_reactions", "imports"),
        1,
    ),
)

SQL = """
WITH connections AS (
    SELECT c.participant_id, count(*) AS n, min(c.connected_on) AS first_on,
           max(c.connected_on) AS last_on
    FROM linkedin_connections c
    JOIN feature_scope s ON s.participant_id = c.participant_id
    GROUP BY c.participant_id
),
positions AS (
    SELECT p.participant_id, count(*) AS n, min(p.started_on) AS first_on,
           max(coalesce(p.finished_on, p.started_on)) AS last_on
    FROM linkedin_positions p
    JOIN feature_scope s ON s.participant_id = p.participant_id
    GROUP BY p.participant_id
),
skills AS (
    SELECT k.participant_id, count(*) AS n
    FROM linkedin_skills k
    JOIN feature_scope s ON s.participant_id = k.participant_id
    GROUP BY k.participant_id
),
activity AS (
    SELECT w.participant_id, w.kind, w.written_at AS acted_at
    FROM written_items w
    JOIN feature_scope s ON s.participant_id = w.participant_id
    WHERE w.platform = 'linkedin' AND w.kind IN ('share', 'comment')
    UNION ALL
    SELECT r.participant_id, 'reaction', r.reacted_at
    FROM linkedin_reactions r
    JOIN feature_scope s ON s.participant_id = r.participant_id
),
activity_window AS (
    SELECT participant_id, count(*) AS n_obs, min(acted_at) AS ws, max(acted_at) AS we,
           datediff('month', min(acted_at), max(acted_at)) + 1 AS months,
           count(*) FILTER (WHERE kind = 'share') AS shares,
           count(*) FILTER (WHERE kind = 'comment') AS comments,
           count(*) FILTER (WHERE kind = 'reaction') AS reactions
    FROM activity GROUP BY participant_id
),
files AS (
    SELECT participant_id,
           bool_or(format LIKE '%linkedin_shares%') AS has_shares,
           bool_or(format LIKE '%linkedin_comments%') AS has_comments,
           bool_or(format LIKE '%linkedin_reactions%') AS has_reactions
    FROM imports WHERE platform = 'linkedin' GROUP BY participant_id
)
SELECT participant_id, 'linkedin_connections' AS feature, n AS value, n AS n_obs,
       CAST(first_on AS TIMESTAMPTZ) AS window_start,
       CAST(last_on AS TIMESTAMPTZ) AS window_end
FROM connections
UNION ALL
SELECT participant_id, 'linkedin_connections_per_year',
       n / (year(last_on) - year(first_on) + 1), n,
       CAST(first_on AS TIMESTAMPTZ), CAST(last_on AS TIMESTAMPTZ)
FROM connections
UNION ALL
SELECT participant_id, 'linkedin_career_moves', n - 1, n,
       CAST(first_on AS TIMESTAMPTZ), CAST(last_on AS TIMESTAMPTZ)
FROM positions
UNION ALL
SELECT participant_id, 'linkedin_skills', n, n, NULL, NULL
FROM skills
UNION ALL
SELECT a.participant_id, 'linkedin_posts_per_month',
       CASE WHEN f.has_shares THEN a.shares / a.months END, a.n_obs, a.ws, a.we
FROM activity_window a JOIN files f USING (participant_id)
UNION ALL
SELECT a.participant_id, 'linkedin_comments_per_month',
       CASE WHEN f.has_comments THEN a.comments / a.months END, a.n_obs, a.ws, a.we
FROM activity_window a JOIN files f USING (participant_id)
UNION ALL
SELECT a.participant_id, 'linkedin_reactions_per_month',
       CASE WHEN f.has_reactions THEN a.reactions / a.months END, a.n_obs,
       a.ws, a.we
FROM activity_window a JOIN files f USING (participant_id)
"""
