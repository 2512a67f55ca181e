"""Discord: the user, their servers (guilds), and linked connections if granted."""

from __future__ import annotations

from .spec import Context, EndpointSpec
from .state import insert_values

IDENTITY_ENDPOINT = "user"

# Discord returns at most 200 guilds a page and no next-page marker, so a full
# page means another may follow.
GUILD_PAGE = 200


def _save_guilds(ctx: Context, guilds: list[dict]) -> None:
    insert_values(
        ctx.con,
        "INSERT OR REPLACE INTO communities",
        [
            [
                ctx.participant_id,
                ctx.platform,
                str(g["id"]),
                g.get("name"),
                "guild",
                g.get("owner"),
                None,
            ]
            for g in guilds
        ],
    )


ENDPOINTS = (
    EndpointSpec(
        name="user",
        items=lambda body: [body] if body else [],
        item_id=lambda user: user["id"],
        trim=lambda user: {"id": user.get("id")},
    ),
    EndpointSpec(
        name="guilds",
        items=lambda body: body or [],
        item_id=lambda guild: guild["id"],
        next_cursor=lambda body, items: (
            items[-1]["id"] if len(items) >= GUILD_PAGE else None
        ),
        trim=lambda g: {
            "id": g.get("id"),
            "name": g.get("name"),
            "owner": g.get("owner"),
        },
        save=_save_guilds,
    ),
    EndpointSpec(
        name="connections",
        items=lambda body: body or [],
        item_id=lambda link: f"{link.get('type')}:{link.get('id')}",
        # Only the linked service types; account names and ids are not needed.
        trim=lambda link: {"type": link.get("type")},
        optional_scope="connections",
    ),
)
