"""Interests profile per participant, weighted by engagement, from API data.

Categories and what one unit of engagement is:

- ``music_genre``: one appearance of an artist in a top-artists list (any time
  range) or among followed artists, split evenly over the artist's genres;
- ``video_topic``: one liked video or one subscription, split evenly over its
  topic categories (the last part of the Wikipedia topic URL is the label);
- ``subreddit``: one post or comment in it, plus one for subscribing;
- ``language``: bytes of code in repositories the participant owns, forks
  excluded;
- ``community``: one Discord server or followed Twitch channel (the APIs give
  no engagement, so each counts once).

Weights are shares within a category (they sum to 1 per participant and
category); ``n_obs`` counts the items behind a label. Interests can reveal
sensitive categories (health, religion, politics), so the profile is computed
only when a study opts in, with ``--interests`` or :func:`set_enabled`, and is
never part of an export unless asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from .store import transaction
from .workspace import Workspace

SETTING = "interests_profile"

CATEGORIES = ("music_genre", "video_topic", "subreddit", "language", "community")

# One query per category, each returning (participant_id, label, engagement,
# n_obs) for the participants in the temp table interest_scope.
_SOURCES = {
    "music_genre": """
        WITH seen AS (
            SELECT participant_id, item_id AS artist_id FROM music_top_items
            WHERE item_type = 'artist'
            UNION ALL
            SELECT participant_id, item_id FROM api_records
            WHERE platform = 'spotify' AND endpoint = 'followed_artists'
        ), split AS (
            SELECT s.participant_id, unnest(g.genres) AS label,
                   1.0 / len(g.genres) AS share
            FROM seen s JOIN artist_genres g USING (artist_id)
            WHERE len(g.genres) > 0
        )
        SELECT participant_id, label, sum(share ORDER BY share), count(*)
        FROM split GROUP BY ALL
    """,
    "video_topic": """
        WITH tagged AS (
            SELECT participant_id, topics FROM video_likes
            UNION ALL
            SELECT s.participant_id, t.topics FROM video_subscriptions s
            JOIN channel_topics t ON t.platform = s.platform
             AND t.channel_id = s.channel_id
        ), split AS (
            SELECT participant_id,
                   regexp_extract(unnest(topics), '[^/]+$') AS label,
                   1.0 / len(topics) AS share
            FROM tagged WHERE len(topics) > 0
        )
        SELECT participant_id, replace(label, '_', ' '), sum(share ORDER BY share),
               count(*)
        FROM split GROUP BY ALL
    """,
    "subreddit": """
        WITH acts AS (
            SELECT participant_id, community AS label FROM community_posts
            WHERE platform = 'reddit' AND community IS NOT NULL
            UNION ALL
            SELECT participant_id, name FROM communities
            WHERE platform = 'reddit' AND name IS NOT NULL
        )
        SELECT participant_id, label, count(*)::DOUBLE, count(*) FROM acts
        GROUP BY ALL
    """,
    "language": """
        SELECT l.participant_id, l.language, sum(l.bytes)::DOUBLE, count(*)
        FROM code_languages l JOIN code_repositories r
          ON r.participant_id = l.participant_id AND r.platform = l.platform
         AND r.repo_id = l.repo_id
        WHERE r.owned AND NOT r.fork AND l.bytes > 0
        GROUP BY ALL
    """,
    "community": """
        SELECT participant_id, name, count(*)::DOUBLE, count(*) FROM communities
        WHERE kind IN ('guild', 'channel') AND name IS NOT NULL GROUP BY ALL
    """,
}


def enabled(workspace: Workspace) -> bool:
    """Return True when the workspace computes interests after every extraction."""
    with workspace.connect() as con:
        row = con.execute(
            "SELECT value FROM workspace_settings WHERE key = ?", [SETTING]
        ).fetchone()
    return row is not None and row[0] == "on"


def set_enabled(workspace: Workspace, on: bool) -> None:
    """Switch the interests profile on or off for this workspace's study."""
    with workspace.connect() as con, transaction(con):
        con.execute(
            "INSERT OR REPLACE INTO workspace_settings VALUES (?, ?)",
            [SETTING, "on" if on else "off"],
        )
        workspace.audit(con, "interests.setting", None, {"on": int(on)})


def compute_interests(
    workspace: Workspace, participant_ids: Iterable[str] | None = None
) -> dict:
    """Recompute the interests of the given participants (default: all).

    Each participant's previous rows are replaced in one transaction. Returns the
    number of labels stored per category.
    """
    now = datetime.now(UTC)
    with workspace.connect() as con:
        if participant_ids is None:
            chosen = [
                pid
                for (pid,) in con.execute(
                    "SELECT participant_id FROM participants ORDER BY 1"
                ).fetchall()
            ]
        else:
            chosen = sorted(set(participant_ids))
        con.execute(
            "CREATE OR REPLACE TEMP TABLE interest_scope AS "
            "SELECT unnest(?::VARCHAR[]) AS participant_id",
            [chosen],
        )
        counts = {}
        with transaction(con):
            con.execute(
                "DELETE FROM interests WHERE participant_id IN "
                "(SELECT participant_id FROM interest_scope)"
            )
            for category, sql in _SOURCES.items():
                inserted = con.execute(
                    "INSERT INTO interests "
                    "SELECT participant_id, ?, label, "
                    "engagement / sum(engagement) OVER (PARTITION BY participant_id), "
                    f"n_obs, ? FROM ({sql}) AS s (participant_id, label, engagement, "
                    "n_obs) WHERE participant_id IN "
                    "(SELECT participant_id FROM interest_scope) AND engagement > 0",
                    [category, now],
                ).fetchone()[0]
                counts[category] = inserted
            workspace.audit(
                con, "interests", None, {"participants": len(chosen), **counts}
            )
    return counts


def interests_profile(
    workspace: Workspace, participant_id: str, top: int = 10
) -> dict[str, list[dict]]:
    """Return a participant's top labels per category, heaviest first."""
    with workspace.connect() as con:
        rows = con.execute(
            "SELECT category, label, weight, n_obs FROM interests "
            "WHERE participant_id = ? QUALIFY row_number() OVER "
            "(PARTITION BY category ORDER BY weight DESC, label) <= ? "
            "ORDER BY category, weight DESC, label",
            [participant_id, top],
        ).fetchall()
    profile: dict[str, list[dict]] = {category: [] for category in CATEGORIES}
    for category, label, weight, n_obs in rows:
        profile[category].append({"label": label, "weight": weight, "n_obs": n_obs})
    return profile
