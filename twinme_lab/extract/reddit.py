"""Reddit: identity, subscribed subreddits, submitted posts and comments.

Reddit listings stop near 1,000 items, so for a long history the oldest posts
and comments are out of reach. Each run records where the served window began.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .spec import Context, EndpointSpec
from .state import insert_values

IDENTITY_ENDPOINT = "me"

LISTING_NOTE = (
    "Reddit listings stop near 1,000 items; window_start is the oldest item it "
    "still served."
)


def _children(body: dict) -> list[dict]:
    return [
        child["data"]
        for child in ((body or {}).get("data") or {}).get("children") or []
    ]


def _after(body: dict, items: list[dict]) -> str | None:
    return ((body or {}).get("data") or {}).get("after")


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(float(seconds), UTC).isoformat()


def _save_subreddits(ctx: Context, subs: list[dict]) -> None:
    insert_values(
        ctx.con,
        "INSERT OR REPLACE INTO communities",
        [
            [
                ctx.participant_id,
                ctx.platform,
                s["name"],
                s.get("display_name"),
                "subreddit",
                None,
                None,
            ]
            for s in subs
        ],
    )


def _save_posts(kind: str):
    def save(ctx: Context, things: list[dict]) -> None:
        insert_values(
            ctx.con,
            "INSERT OR REPLACE INTO community_posts",
            [
                [
                    ctx.participant_id,
                    ctx.platform,
                    t["name"],
                    kind,
                    t.get("subreddit"),
                    _iso(t.get("created_utc")),
                ]
                for t in things
            ],
        )

    return save


def _trim_thing(thing: dict) -> dict:
    return {key: thing.get(key) for key in ("name", "subreddit", "created_utc")}


def _listing(name: str, kind: str) -> EndpointSpec:
    return EndpointSpec(
        name=name,
        mode="stream",
        items=_children,
        item_id=lambda thing: thing["name"],
        next_cursor=_after,
        order_key=lambda thing: float(thing["created_utc"]),
        item_time=lambda thing: _iso(thing.get("created_utc")),
        path_values=lambda identity: (
            {"name": identity["name"]} if identity.get("name") else {}
        ),
        trim=_trim_thing,
        save=_save_posts(kind),
        note=LISTING_NOTE,
    )


ENDPOINTS = (
    EndpointSpec(
        name="me",
        items=lambda body: [body] if body else [],
        item_id=lambda me: me["id"],
        trim=lambda me: {"id": me.get("id"), "name": me.get("name")},
    ),
    EndpointSpec(
        name="subreddits",
        items=_children,
        item_id=lambda sub: sub["name"],
        next_cursor=_after,
        trim=lambda s: {"name": s.get("name"), "display_name": s.get("display_name")},
        save=_save_subreddits,
    ),
    _listing("submitted", "post"),
    _listing("comments", "comment"),
)
