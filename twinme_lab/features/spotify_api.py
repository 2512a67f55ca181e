"""Spotify features from Web API data (``music_top_items``, ``artist_genres``).

Genres are those of the participant's top artists over the short, medium and
long term. An artist listed in several time ranges counts once per range, and
its weight is split evenly over its genres. Not measured (NULL) unless the
latest extraction of all three top-artist lists completed.
"""

from __future__ import annotations

from . import FeatureDefinition

FEATURES = (
    FeatureDefinition(
        "spotify_genre_diversity",
        "Shannon entropy of top artists over genres, divided by the log of the "
        "number of genres (0 = one genre, 1 = spread evenly).",
        "ratio 0-1",
        ("music_top_items", "artist_genres"),
        5,
    ),
    FeatureDefinition(
        "spotify_distinct_genres",
        "Distinct genres among the top artists.",
        "genres",
        ("music_top_items", "artist_genres"),
        5,
    ),
)

SQL = """
WITH latest AS (
    SELECT participant_id, endpoint, arg_max(status, run_id) AS status
    FROM extract_run_log
    WHERE platform = 'spotify' AND endpoint LIKE 'top_artists:%'
    GROUP BY ALL
), measured AS (
    SELECT participant_id FROM feature_scope JOIN latest USING (participant_id)
    GROUP BY participant_id
    HAVING count(*) = 3 AND bool_and(status IN ('ok', 'empty'))
), split AS (
    SELECT t.participant_id, unnest(g.genres) AS genre,
           1.0 / len(g.genres) AS share, t.time_range, t.item_id
    FROM music_top_items t
    JOIN measured USING (participant_id)
    JOIN artist_genres g ON g.artist_id = t.item_id
    WHERE t.item_type = 'artist' AND len(g.genres) > 0
), per_genre AS (
    SELECT participant_id, genre, sum(share ORDER BY share) AS n
    FROM split GROUP BY ALL
), artists AS (
    SELECT participant_id, count(DISTINCT (time_range, item_id)) AS n
    FROM split GROUP BY ALL
), diversity AS (
    SELECT participant_id,
           CASE WHEN count(*) = 1 THEN 0.0
                ELSE -sum((n / total) * ln(n / total) ORDER BY genre)
                     / ln(count(*)) END AS value,
           count(*) AS genres
    FROM (SELECT *, sum(n) OVER (PARTITION BY participant_id) AS total
          FROM per_genre)
    GROUP BY ALL
)
SELECT d.participant_id, 'spotify_genre_diversity' AS feature, d.value,
       a.n AS n_obs, NULL::TIMESTAMPTZ AS window_start,
       NULL::TIMESTAMPTZ AS window_end
FROM diversity d JOIN artists a USING (participant_id)
UNION ALL
SELECT d.participant_id, 'spotify_distinct_genres', d.genres::DOUBLE, a.n, NULL, NULL
FROM diversity d JOIN artists a USING (participant_id)
"""
