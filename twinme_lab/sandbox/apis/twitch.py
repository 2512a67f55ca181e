"""Simulated Twitch Helix API (api.twitch.tv/helix) and token validation."""

from __future__ import annotations

import datetime as dt

from .base import (
    ApiError,
    ApiRequest,
    ApiResponse,
    PlatformApi,
    decode_cursor,
    encode_cursor,
    int_arg,
    iso,
    json_response,
    moments,
    route,
)

WORDS = (
    "speed", "cozy", "retro", "pixel", "chef", "night", "lofi", "chess", "shadow",
    "art", "golf", "quest", "loot", "synth", "drift", "tactic", "clutch", "owl",
)  # fmt: skip
CATALOGUE_CHANNELS = 400
# Followed channels per user profile (user index modulo 3).
SIZES = ({"followed": 9}, {"followed": 230}, {"followed": 0})


class TwitchApi(PlatformApi):
    name = "twitch"

    def __init__(self, seed: int, root: str):
        super().__init__(seed)
        self.root = root
        rng = self.rng("catalogue")
        self.channels = []
        for number in range(CATALOGUE_CHANNELS):
            login = f"{rng.choice(WORDS)}{rng.choice(WORDS)}{number}"
            self.channels.append(
                {
                    "broadcaster_id": str(100_000_000 + number * 131),
                    "broadcaster_login": login,
                    "broadcaster_name": login.title(),
                }
            )
        self.users_by_id: dict[str, dict] = {}
        self.routes = [
            route("user", r"/helix/users", self.users),
            route(
                "followed_channels",
                r"/helix/channels/followed",
                self.followed,
                "user:read:follows",
            ),
        ]

    def build_user(self, index: int) -> dict:
        rng = self.rng("user", index)
        sizes = SIZES[index % 3]
        login = f"sandbox_viewer_{index}"
        follows = [
            dict(channel, followed_at=iso(moment))
            for channel, moment in zip(
                rng.sample(self.channels, sizes["followed"]),
                moments(rng, sizes["followed"], dt.timedelta(days=1800)),
                strict=True,
            )
        ]
        user = {
            "id": str(700_000_000 + index),
            "login": login,
            "name": f"Sandbox_Viewer_{index}",
            "created_at": iso(dt.datetime(2017, 3, 1, tzinfo=dt.UTC)
                              + dt.timedelta(days=index * 40)),
            "follows": follows,
        }  # fmt: skip
        self.users_by_id[user["id"]] = user
        return user

    growable = {"followed_channels": "_add_follow"}

    def _add_follow(self, user: dict, rng, moment) -> int:
        followed = {item["broadcaster_id"] for item in user["follows"]}
        candidates = [c for c in self.channels if c["broadcaster_id"] not in followed]
        # Twitch lists follows newest first.
        user["follows"].insert(0, dict(rng.choice(candidates), followed_at=iso(moment)))
        return len(user["follows"])

    # Responses --------------------------------------------------------------
    def error_body(self, status: int, message: str, reason: str | None) -> dict:
        names = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            429: "Too Many Requests",
        }
        return {
            "error": names.get(status, "Error"),
            "status": status,
            "message": message,
        }

    def unauthorized(self, message: str) -> ApiResponse:
        return self.error(401, "Invalid OAuth token")

    def rate_limit_headers(self, window: dict) -> dict[str, str]:
        return {
            "Ratelimit-Limit": str(window["limit"]),
            "Ratelimit-Remaining": str(window["remaining"]),
            "Ratelimit-Reset": str(int(window["reset_at"])),
        }

    def check_request(self, headers, client_id: str) -> ApiResponse | None:
        sent = headers.get("Client-Id")
        if not sent:
            return self.error(401, "Client ID is missing")
        if sent != client_id:
            return self.error(401, "Client ID and OAuth token do not match")
        return None

    def _public(self, user: dict) -> dict:
        return {
            "id": user["id"],
            "login": user["login"],
            "display_name": user["name"],
            "type": "",
            "broadcaster_type": "",
            "description": "",
            "profile_image_url": f"https://static-cdn.jtvnw.net/user-default-pictures/{user['id']}.png",
            "offline_image_url": "",
            "view_count": 0,
            "created_at": user["created_at"],
        }

    def users(self, request: ApiRequest) -> ApiResponse:
        ids = request.query.get("id", [])
        logins = [login.lower() for login in request.query.get("login", [])]
        if not ids and not logins:
            return json_response({"data": [self._public(request.user)]})
        found = [
            self._public(user)
            for user in self.users_by_id.values()
            if user["id"] in ids or user["login"] in logins
        ]
        return json_response({"data": found})

    def followed(self, request: ApiRequest) -> ApiResponse:
        user_id = request.arg("user_id")
        if not user_id:
            raise ApiError(400, 'Missing required parameter "user_id"')
        if user_id != request.user["id"]:
            raise ApiError(
                401, "The ID in user_id must match the user ID in the access token."
            )
        first = int_arg(request, "first", 20, 1, 100)
        follows = request.user["follows"]
        broadcaster = request.arg("broadcaster_id")
        if broadcaster:
            follows = [
                item for item in follows if item["broadcaster_id"] == broadcaster
            ]
        offset = 0
        cursor = request.arg("after")
        if cursor:
            offset = decode_cursor(cursor, "after").get("a", {}).get("Offset", -1)
            if not isinstance(offset, int) or not 0 <= offset <= len(follows):
                raise ApiError(400, 'Invalid value for parameter "after"')
        page = follows[offset : offset + first]
        pagination = {}
        if offset + first < len(follows):
            pagination["cursor"] = encode_cursor({"a": {"Offset": offset + first}})
        return json_response(
            {"total": len(follows), "data": page, "pagination": pagination}
        )
