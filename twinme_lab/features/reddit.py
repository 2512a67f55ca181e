"""Reddit features from API data (``community_posts``, ``communities``).

Listings stop near 1,000 items, so for very active accounts the features rest on
the most recent 1,000 posts and 1,000 comments. A feature whose endpoint's latest
extraction did not complete is not measured (NULL).
"""

from __future__ import annotations

from . import FeatureDefinition

FEATURES = (
    FeatureDefinition(
        "reddit_subscribed_subreddits",
        "Subreddits the participant subscribes to.",
        "subreddits",
        ("communities",),
        1,
    ),
    FeatureDefinition(
        "reddit_subreddit_diversity",
        "Shannon entropy of posts and comments over subreddits, divided by the "
        "log of the number of subreddits (0 = one subreddit).",
        "ratio 0-1",
        ("community_posts",),
        5,
    ),
    FeatureDefinition(
        "reddit_comment_share",
        "Comments as a share of posts plus comments (the comment-to-post "
        "balance, bounded 0-1).",
        "ratio 0-1",
        ("community_posts",),
        5,
    ),
)

SQL = """
WITH latest AS (
    SELECT participant_id, endpoint, arg_max(status, run_id) AS status
    FROM extract_run_log WHERE platform = 'reddit'
    GROUP BY participant_id, endpoint
), measured AS (
    SELECT s.participant_id,
           bool_and(l.status IN ('ok', 'empty'))
               FILTER (WHERE l.endpoint = 'subreddits') AS subs_ok,
           coalesce(bool_and(l.status IN ('ok', 'empty'))
               FILTER (WHERE l.endpoint IN ('submitted', 'comments')), false)
           AND count(*) FILTER (WHERE l.endpoint IN ('submitted', 'comments')) = 2
               AS posts_ok
    FROM feature_scope s JOIN latest l USING (participant_id)
    GROUP BY s.participant_id
), subs AS (
    SELECT m.participant_id, count(c.community_id) AS n
    FROM measured m LEFT JOIN communities c
      ON c.participant_id = m.participant_id AND c.platform = 'reddit'
    WHERE m.subs_ok
    GROUP BY m.participant_id
), acts AS (
    SELECT p.participant_id, p.kind, p.community, p.created_at
    FROM community_posts p JOIN measured m USING (participant_id)
    WHERE m.posts_ok AND p.platform = 'reddit'
), per_sub AS (
    SELECT participant_id, community, count(*)::DOUBLE AS n,
           sum(count(*)) OVER (PARTITION BY participant_id) AS total
    FROM acts WHERE community IS NOT NULL GROUP BY participant_id, community
), diversity AS (
    SELECT participant_id,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY community)
                     / ln(count(*)) END AS value,
           any_value(total)::BIGINT AS n_obs
    FROM per_sub GROUP BY participant_id
), totals AS (
    SELECT participant_id, count(*) AS n,
           count(*) FILTER (WHERE kind = 'comment') AS comments,
           min(created_at) AS ws, max(created_at) AS we
    FROM acts GROUP BY participant_id
)
SELECT participant_id, 'reddit_subscribed_subreddits' AS feature,
       n::DOUBLE AS value, n AS n_obs, NULL::TIMESTAMPTZ AS window_start,
       NULL::TIMESTAMPTZ AS window_end
FROM subs
UNION ALL
SELECT d.participant_id, 'reddit_subreddit_diversity', d.value, d.n_obs, t.ws, t.we
FROM diversity d JOIN totals t USING (participant_id)
UNION ALL
SELECT participant_id, 'reddit_comment_share', comments / n, n, ws, we
FROM totals
"""
