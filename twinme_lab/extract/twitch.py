"""Twitch: the user and the channels they follow."""

from __future__ import annotations

from .spec import Context, EndpointSpec
from .state import insert_values

IDENTITY_ENDPOINT = "user"


def _user_id(identity: dict) -> dict[str, str]:
    data = identity.get("data") or []
    return {"user_id": data[0]["id"]} if data and data[0].get("id") else {}


def _save_follows(ctx: Context, follows: list[dict]) -> None:
    insert_values(
        ctx.con,
        "INSERT OR REPLACE INTO communities",
        [
            [
                ctx.participant_id,
                ctx.platform,
                str(f["broadcaster_id"]),
                f.get("broadcaster_login"),
                "channel",
                None,
                f.get("followed_at"),
            ]
            for f in follows
        ],
    )


ENDPOINTS = (
    EndpointSpec(
        name="user",
        items=lambda body: [body] if (body or {}).get("data") else [],
        item_id=lambda body: body["data"][0]["id"],
        trim=lambda body: {"data": [{"id": body["data"][0].get("id")}]},
    ),
    EndpointSpec(
        name="followed_channels",
        items=lambda body: (body or {}).get("data") or [],
        item_id=lambda follow: follow["broadcaster_id"],
        next_cursor=lambda body, items: ((body or {}).get("pagination") or {}).get(
            "cursor"
        ),
        identity_params=_user_id,
        trim=lambda f: {
            "broadcaster_id": f.get("broadcaster_id"),
            "broadcaster_login": f.get("broadcaster_login"),
            "followed_at": f.get("followed_at"),
        },
        save=_save_follows,
    ),
)
