"""YouTube: subscriptions, liked videos, and the topics of subscribed channels.

Channel topics are catalogue data: each channel is asked for once, 50 ids a
request, and cached for every participant in ``channel_topics``.
"""

from __future__ import annotations

from .spec import Context, EndpointSpec, Target, TargetPlan
from .state import insert_values

# The channels endpoint accepts at most 50 ids a call.
CHANNELS_PER_CALL = 50


def _next_token(body: dict, items: list[dict]) -> str | None:
    return (body or {}).get("nextPageToken")


def _channel_of(subscription: dict) -> str:
    return subscription["snippet"]["resourceId"]["channelId"]


def _save_subscriptions(ctx: Context, subs: list[dict]) -> None:
    insert_values(
        ctx.con,
        "INSERT OR REPLACE INTO video_subscriptions",
        [
            [
                ctx.participant_id,
                ctx.platform,
                _channel_of(s),
                s["snippet"].get("title"),
                s["snippet"].get("publishedAt"),
            ]
            for s in subs
        ],
    )


def _save_likes(ctx: Context, videos: list[dict]) -> None:
    insert_values(
        ctx.con,
        "INSERT OR REPLACE INTO video_likes",
        [
            [
                ctx.participant_id,
                ctx.platform,
                v["id"],
                (v.get("snippet") or {}).get("title"),
                (v.get("snippet") or {}).get("channelId"),
                list((v.get("topicDetails") or {}).get("topicCategories") or []),
            ]
            for v in videos
        ],
    )


def _topic_targets(ctx: Context) -> TargetPlan:
    rows = ctx.con.execute(
        "SELECT DISTINCT channel_id, channel_id IN "
        "(SELECT channel_id FROM channel_topics WHERE platform = ?) "
        "FROM video_subscriptions WHERE participant_id = ? AND platform = ? "
        "ORDER BY 1",
        [ctx.platform, ctx.participant_id, ctx.platform],
    ).fetchall()
    ids = [channel_id for channel_id, cached in rows if not cached]
    targets = []
    for start in range(0, len(ids), CHANNELS_PER_CALL):
        chunk = ",".join(ids[start : start + CHANNELS_PER_CALL])
        targets.append(Target(chunk, params={"id": chunk}))
    return TargetPlan(targets, cached=len(rows) - len(ids))


def _channel_items(body: dict) -> list[dict]:
    return [{"channels": (body or {}).get("items") or []}]


def _save_topics(ctx: Context, items: list[dict]) -> None:
    for item in items:
        found = {
            channel["id"]: list(
                (channel.get("topicDetails") or {}).get("topicCategories") or []
            )
            for channel in item["channels"]
        }
        # Channels asked for but not returned (closed ones) are cached as having
        # no topics, so they are not asked for again.
        rows = [
            [ctx.platform, channel_id, found.get(channel_id, []), ctx.fetched_at]
            for channel_id in item["_target"].split(",")
        ]
        insert_values(ctx.con, "INSERT OR REPLACE INTO channel_topics", rows)


ENDPOINTS = (
    EndpointSpec(
        name="subscriptions",
        items=lambda body: (body or {}).get("items") or [],
        item_id=_channel_of,
        next_cursor=_next_token,
        trim=lambda s: {
            "channel_id": _channel_of(s),
            "published_at": s["snippet"].get("publishedAt"),
        },
        save=_save_subscriptions,
    ),
    EndpointSpec(
        name="liked_videos",
        items=lambda body: (body or {}).get("items") or [],
        item_id=lambda video: video["id"],
        next_cursor=_next_token,
        trim=lambda v: {
            "id": v.get("id"),
            "channel_id": (v.get("snippet") or {}).get("channelId"),
            "topics": (v.get("topicDetails") or {}).get("topicCategories") or [],
        },
        save=_save_likes,
    ),
    EndpointSpec(
        name="channel_topics",
        items=_channel_items,
        item_id=lambda item: item["_target"],
        targets=_topic_targets,
        trim=lambda item: {"channels": len(item["channels"])},
        save=_save_topics,
        after=("subscriptions",),
    ),
)
