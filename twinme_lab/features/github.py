"""GitHub features from API data (``code_repositories``, ``code_languages``,
``code_activity``).

Languages count only repositories the participant owns, forks excluded, weighted
by bytes of code. Event features use the public events the API still served, at
most 300 from the last 90 days. Push events no longer list their commits, so
pushes are counted, not commits. Local time is the event time in the
participant's time zone; the weekday share is NULL without one.

A feature whose endpoint's latest extraction failed, was restricted or needs
reconnecting is not measured (NULL), rather than computed from what is missing.
"""

from __future__ import annotations

from . import FeatureDefinition

SOURCE = ("code_repositories", "code_languages", "code_activity")

FEATURES = (
    FeatureDefinition(
        "github_owned_repos",
        "Repositories the participant owns, forks excluded.",
        "repositories",
        ("code_repositories",),
        1,
    ),
    FeatureDefinition(
        "github_language_diversity",
        "Shannon entropy of code bytes over languages in owned non-fork "
        "repositories, divided by the log of the number of languages (0 = one "
        "language, 1 = bytes spread evenly).",
        "ratio 0-1",
        ("code_repositories", "code_languages"),
        1,
    ),
    FeatureDefinition(
        "github_push_day_share",
        "Share of days with at least one push, from the first to the last public "
        "event served (local dates, UTC without a time zone).",
        "ratio 0-1",
        ("code_activity",),
        5,
    ),
    FeatureDefinition(
        "github_weekday_push_share",
        "Share of pushes made Monday to Friday in local time. NULL without a "
        "time zone.",
        "ratio 0-1",
        ("code_activity",),
        5,
    ),
    FeatureDefinition(
        "github_activity_mix",
        "Shannon entropy of public events over event types, divided by the log "
        "of the number of types seen (0 = one type only).",
        "ratio 0-1",
        ("code_activity",),
        5,
    ),
)

SQL = """
WITH latest AS (
    SELECT participant_id, endpoint, arg_max(status, run_id) AS status
    FROM extract_run_log WHERE platform = 'github'
    GROUP BY participant_id, endpoint
), measured AS (
    SELECT s.participant_id, s.timezone,
           bool_and(l.status IN ('ok', 'empty'))
               FILTER (WHERE l.endpoint = 'repos') AS repos_ok,
           bool_and(l.status IN ('ok', 'empty'))
               FILTER (WHERE l.endpoint = 'languages') AS languages_ok,
           bool_and(l.status IN ('ok', 'empty'))
               FILTER (WHERE l.endpoint = 'events') AS events_ok
    FROM feature_scope s JOIN latest l USING (participant_id)
    GROUP BY s.participant_id, s.timezone
), owned AS (
    SELECT r.participant_id, count(*) AS repos
    FROM code_repositories r JOIN measured m USING (participant_id)
    WHERE m.repos_ok AND r.owned AND NOT r.fork
    GROUP BY r.participant_id
), bytes AS (
    SELECT l.participant_id, l.language, sum(l.bytes) AS n,
           count(DISTINCT l.repo_id) AS repos
    FROM code_languages l
    JOIN code_repositories r USING (participant_id, platform, repo_id)
    JOIN measured m USING (participant_id)
    WHERE m.repos_ok AND m.languages_ok AND r.owned AND NOT r.fork AND l.bytes > 0
    GROUP BY l.participant_id, l.language
), diversity AS (
    SELECT participant_id,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY language)
                     / ln(count(*)) END AS value
    FROM (SELECT *, sum(n) OVER (PARTITION BY participant_id) AS total FROM bytes)
    GROUP BY participant_id
), language_repos AS (
    SELECT l.participant_id, count(DISTINCT l.repo_id) AS n
    FROM code_languages l
    JOIN code_repositories r USING (participant_id, platform, repo_id)
    WHERE r.owned AND NOT r.fork AND l.bytes > 0
    GROUP BY l.participant_id
), events AS (
    SELECT a.participant_id, m.timezone, a.kind, a.occurred_at,
           timezone(coalesce(m.timezone, 'UTC'), a.occurred_at) AS local_ts
    FROM code_activity a JOIN measured m USING (participant_id)
    WHERE m.events_ok AND a.platform = 'github'
), spans AS (
    SELECT participant_id, any_value(timezone) AS timezone,
           min(occurred_at) AS ws, max(occurred_at) AS we,
           date_diff('day', min(local_ts)::DATE, max(local_ts)::DATE) + 1 AS days,
           count(DISTINCT local_ts::DATE) FILTER (WHERE kind = 'PushEvent')
               AS push_days,
           count(*) FILTER (WHERE kind = 'PushEvent') AS pushes,
           count(*) FILTER (WHERE kind = 'PushEvent' AND isodow(local_ts) <= 5)
               AS weekday_pushes,
           count(*) AS n_events
    FROM events GROUP BY participant_id
), mix AS (
    SELECT participant_id,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY kind)
                     / ln(count(*)) END AS value
    FROM (
        SELECT participant_id, kind, count(*)::DOUBLE AS n,
               sum(count(*)) OVER (PARTITION BY participant_id) AS total
        FROM events GROUP BY participant_id, kind
    )
    GROUP BY participant_id
)
SELECT participant_id, 'github_owned_repos' AS feature, repos::DOUBLE AS value,
       repos AS n_obs, NULL::TIMESTAMPTZ AS window_start,
       NULL::TIMESTAMPTZ AS window_end
FROM owned
UNION ALL
SELECT d.participant_id, 'github_language_diversity', d.value, r.n, NULL, NULL
FROM diversity d JOIN language_repos r USING (participant_id)
UNION ALL
SELECT participant_id, 'github_push_day_share',
       CASE WHEN pushes > 0 THEN push_days / days END, pushes, ws, we
FROM spans
UNION ALL
SELECT participant_id, 'github_weekday_push_share',
       CASE WHEN timezone IS NOT NULL AND pushes > 0
            THEN weekday_pushes / pushes END,
       pushes, ws, we
FROM spans
UNION ALL
SELECT s.participant_id, 'github_activity_mix', x.value, s.n_events, s.ws, s.we
FROM spans s JOIN mix x USING (participant_id)
"""
