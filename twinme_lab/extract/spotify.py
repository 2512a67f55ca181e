"""Spotify: recent plays, top artists and tracks, saved tracks, followed artists.

Spotify keeps only the last 50 plays reachable through recently-played, so each
run adds the plays since the previous one and older history must come from the
participant's data export. Plays land in ``listening_events`` with source
``spotify_api``. A play already stored from the export is not inserted again.

Genres come with full artist objects (top and followed artists). Artists seen only
inside tracks (recent plays, top tracks) are looked up one request per artist,
because the several-artists endpoint answers 403 to apps created since November
2024, and the result is cached for the whole cohort in ``artist_genres``.
"""

from __future__ import annotations

import hashlib

from .engine import epoch
from .spec import Context, EndpointSpec, Target, TargetPlan
from .state import insert_values

IDENTITY_ENDPOINT = "me"

RECENT_NOTE = (
    "Spotify serves only the last 50 plays; older listening history comes from "
    "the data export."
)

# Export sources whose plays an API play may duplicate.
EXPORT_SOURCES = ("spotify_account", "spotify_extended")

# Seconds within which an API play and an export play of the same track are one
# play: the account export gives end times to the minute only.
SAME_PLAY_SECONDS = 60


def _track_row(track: dict) -> dict:
    artists = track.get("artists") or []
    return {
        "id": track.get("id"),
        "uri": track.get("uri"),
        "name": track.get("name"),
        "album": (track.get("album") or {}).get("name"),
        "artists": [{"id": a.get("id"), "name": a.get("name")} for a in artists],
        "duration_ms": track.get("duration_ms"),
    }


def _trim_play(play: dict) -> dict:
    return {"played_at": play.get("played_at"), "track": _track_row(play["track"])}


def _play_key(play: dict) -> str:
    return f"{play['played_at']}|{play['track'].get('id')}"


def _save_plays(ctx: Context, plays: list[dict]) -> None:
    """Insert plays into listening_events unless an export row is the same play.

    NOTE: Spotify documents played_at only as "the date and time the track was
    played"; it is stored as the end of playback (ended_at), as the exports
    record it, which the 60-second match tolerance relies on.
    """
    rows = []
    for play in plays:
        track = play["track"]
        artists = track.get("artists") or []
        record_key = hashlib.sha256(
            f"spotify_api|{_play_key(play)}".encode()
        ).hexdigest()
        rows.append(
            [
                ctx.participant_id,
                "spotify_api",
                "music",
                play["played_at"],
                "second",
                None,
                track.get("name"),
                artists[0].get("name") if artists else None,
                (track.get("album") or {}).get("name"),
                track.get("uri"),
                record_key,
                1,
                ctx.run_id,
            ]
        )
    ctx.con.execute(
        "CREATE OR REPLACE TEMP TABLE api_plays (participant_id VARCHAR, "
        "source VARCHAR, kind VARCHAR, ended_at TIMESTAMPTZ, time_precision VARCHAR, "
        "ms_played BIGINT, track_name VARCHAR, artist_name VARCHAR, "
        "album_name VARCHAR, track_uri VARCHAR, record_key VARCHAR, "
        "record_ordinal INTEGER, import_id BIGINT)"
    )
    insert_values(ctx.con, "INSERT INTO temp.api_plays", rows)
    ctx.con.execute(
        "INSERT INTO listening_events (participant_id, source, kind, ended_at, "
        "time_precision, ms_played, track_name, artist_name, album_name, track_uri, "
        "record_key, record_ordinal, import_id) "
        "SELECT p.* FROM temp.api_plays p WHERE NOT EXISTS ("
        "  SELECT 1 FROM listening_events e WHERE e.participant_id = p.participant_id"
        "  AND e.record_key = p.record_key AND e.record_ordinal = p.record_ordinal)"
        f" AND NOT EXISTS ({_EXPORT_MATCH.format(api='p')})"
    )
    ctx.con.execute("DROP TABLE temp.api_plays")


# An export row that is the same play as the API row aliased {api}.
_EXPORT_MATCH = (
    "SELECT 1 FROM listening_events x WHERE x.participant_id = {api}.participant_id "
    "AND x.source IN ('spotify_account', 'spotify_extended') "
    f"AND abs(epoch(x.ended_at) - epoch({{api}}.ended_at)) < {SAME_PLAY_SECONDS} "
    "AND (CASE WHEN x.track_uri IS NOT NULL AND {api}.track_uri IS NOT NULL "
    "THEN x.track_uri = {api}.track_uri "
    "ELSE lower(x.track_name) = lower({api}.track_name) "
    "AND lower(x.artist_name) = lower({api}.artist_name) END)"
)


def drop_api_duplicates(con, participant_id: str) -> int:
    """Delete API plays that an export imported later also holds; return how many.

    Run after importing a Spotify export, so a play seen in both counts once.
    """
    return con.execute(
        "DELETE FROM listening_events a WHERE a.participant_id = ? "
        "AND a.source = 'spotify_api' "
        f"AND EXISTS ({_EXPORT_MATCH.format(api='a')})",
        [participant_id],
    ).fetchone()[0]


def _cache_artists(ctx: Context, artists: list[dict]) -> None:
    rows = {
        a["id"]: [a["id"], a.get("name"), list(a.get("genres") or []), ctx.fetched_at]
        for a in artists
        if a.get("id") and "genres" in a
    }
    insert_values(ctx.con, "INSERT OR REPLACE INTO artist_genres", list(rows.values()))


def _save_top(item_type: str, time_range: str):
    def save(ctx: Context, items: list[dict]) -> None:
        if ctx.first_rank == 1:
            # A walk starting at rank 1 replaces the whole ranking, so artists
            # that dropped out of the list do not keep their old rank.
            ctx.con.execute(
                "DELETE FROM music_top_items WHERE participant_id = ? "
                "AND item_type = ? AND time_range = ?",
                [ctx.participant_id, item_type, time_range],
            )
        rows = []
        for offset, item in enumerate(items):
            artist_ids = (
                None
                if item_type == "artist"
                else [a.get("id") for a in item.get("artists") or []]
            )
            rows.append(
                [
                    ctx.participant_id,
                    item_type,
                    time_range,
                    item["id"],
                    ctx.first_rank + offset,
                    item.get("name"),
                    artist_ids,
                ]
            )
        insert_values(ctx.con, "INSERT OR REPLACE INTO music_top_items", rows)
        if item_type == "artist":
            _cache_artists(ctx, items)

    return save


def _trim_artist(artist: dict) -> dict:
    return {
        "id": artist.get("id"),
        "name": artist.get("name"),
        "genres": artist.get("genres") or [],
    }


def _top_specs() -> list[EndpointSpec]:
    specs = []
    for source, item_type in (("top_artists", "artist"), ("top_tracks", "track")):
        for time_range in ("short_term", "medium_term", "long_term"):
            specs.append(
                EndpointSpec(
                    name=f"{source}:{time_range}",
                    source=source,
                    params={"time_range": time_range},
                    items=lambda body: (body or {}).get("items") or [],
                    total=lambda body: (body or {}).get("total"),
                    item_id=lambda item: item["id"],
                    trim=_trim_artist if item_type == "artist" else _track_row,
                    save=_save_top(item_type, time_range),
                )
            )
    return specs


def _save_followed(ctx: Context, artists: list[dict]) -> None:
    _cache_artists(ctx, artists)


def _artist_targets(ctx: Context) -> TargetPlan:
    """Artists of plays and top tracks whose genres the cache lacks."""
    rows = ctx.con.execute(
        "WITH seen AS ("
        "  SELECT unnest(artist_ids) AS artist_id FROM music_top_items"
        "  WHERE participant_id = ? AND item_type = 'track'"
        "  UNION"
        "  SELECT json_extract_string(a.value, '$.id') FROM api_records r,"
        "  json_each(json_extract(r.payload, '$.track.artists')) a"
        "  WHERE r.participant_id = ? AND r.platform = 'spotify'"
        "  AND r.endpoint = 'recently_played')"
        "SELECT DISTINCT artist_id, artist_id IN (SELECT artist_id FROM artist_genres)"
        " FROM seen WHERE artist_id IS NOT NULL ORDER BY 1",
        [ctx.participant_id, ctx.participant_id],
    ).fetchall()
    missing = [artist_id for artist_id, cached in rows if not cached]
    return TargetPlan(
        [Target(artist_id, {"artist_id": artist_id}) for artist_id in missing],
        cached=len(rows) - len(missing),
    )


def _save_artist(ctx: Context, items: list[dict]) -> None:
    _cache_artists(ctx, items)


ENDPOINTS = (
    EndpointSpec(
        name="me",
        items=lambda body: [body] if body else [],
        item_id=lambda user: user["id"],
        trim=lambda user: {"id": user.get("id")},
    ),
    EndpointSpec(
        name="recently_played",
        mode="stream",
        items=lambda body: (body or {}).get("items") or [],
        item_id=_play_key,
        order_key=lambda play: epoch(play["played_at"]) * 1000,
        since_param="after",
        single_page=True,
        trim=_trim_play,
        save=_save_plays,
        note=RECENT_NOTE,
    ),
    *_top_specs(),
    EndpointSpec(
        name="saved_tracks",
        mode="stream",
        items=lambda body: (body or {}).get("items") or [],
        total=lambda body: (body or {}).get("total"),
        item_id=lambda saved: saved["track"]["id"],
        order_key=lambda saved: epoch(saved["added_at"]),
        trim=lambda saved: {
            "added_at": saved.get("added_at"),
            "track": _track_row(saved["track"]),
        },
    ),
    EndpointSpec(
        name="followed_artists",
        items=lambda body: ((body or {}).get("artists") or {}).get("items") or [],
        next_cursor=lambda body, items: (
            ((body or {}).get("artists") or {}).get("cursors") or {}
        ).get("after"),
        item_id=lambda artist: artist["id"],
        trim=_trim_artist,
        save=_save_followed,
    ),
    EndpointSpec(
        name="artists",
        source="artist",
        items=lambda body: [body] if body else [],
        item_id=lambda artist: artist["id"],
        targets=_artist_targets,
        trim=_trim_artist,
        save=_save_artist,
        after=("recently_played", "top_tracks"),
    ),
)
