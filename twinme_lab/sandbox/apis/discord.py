"""Simulated Discord API (discord.com/api, any /vN version prefix)."""

from __future__ import annotations

import datetime as dt
import hashlib

from .base import (
    ApiError,
    ApiRequest,
    ApiResponse,
    PlatformApi,
    hex_id,
    int_arg,
    json_response,
    moments,
    route,
    snowflake,
)

NAMES = (
    "pixel", "guild", "lounge", "club", "cafe", "den", "hub", "crew", "garden",
    "forge", "study", "arcade", "radio", "synth", "chess", "hike", "anime", "code",
)  # fmt: skip
SERVICES = ("github", "spotify", "steam", "twitch", "youtube", "reddit", "xbox")
# Guilds and linked connections per user profile (user index modulo 3).
SIZES = (
    {"guilds": 12, "owned": 2, "connections": 3},
    {"guilds": 450, "owned": 7, "connections": 5},
    {"guilds": 0, "owned": 0, "connections": 0},
)
VERSION = r"(?:/v\d+)?"


class DiscordApi(PlatformApi):
    name = "discord"

    def __init__(self, seed: int, root: str):
        super().__init__(seed)
        self.root = root
        self.routes = [
            route("user", VERSION + r"/users/@me", self.user),
            route("guilds", VERSION + r"/users/@me/guilds", self.guilds, "guilds"),
            route(
                "connections",
                VERSION + r"/users/@me/connections",
                self.connections,
                "connections",
            ),
        ]

    def build_user(self, index: int) -> dict:
        rng = self.rng("user", index)
        sizes = SIZES[index % 3]
        joined = dt.datetime(2018, 5, 1, tzinfo=dt.UTC)
        login = f"sandbox_gamer_{index}"
        guild_moments = moments(rng, sizes["guilds"], dt.timedelta(days=2500))
        guilds = []
        owned_positions = set(rng.sample(range(sizes["guilds"]), sizes["owned"]))
        for position, moment in enumerate(guild_moments):
            owner = position in owned_positions
            guilds.append(self._guild(rng, position, moment, owner))
        guilds.sort(key=lambda guild: int(guild["id"]))
        connections = [
            {
                "type": service,
                "id": str(rng.randint(10**6, 10**9)),
                "name": f"{login}_{service}",
                "visibility": 1,
                "friend_sync": False,
                "show_activity": True,
                "verified": True,
                "two_way_link": False,
                "metadata_visibility": 0,
                "revoked": False,
            }
            for service in rng.sample(SERVICES, sizes["connections"])
        ]
        return {
            "id": snowflake(joined + dt.timedelta(days=index), rng),
            "login": login,
            "name": f"Sandbox Gamer {index}",
            "avatar": hex_id(rng, 32),
            "guilds": guilds,
            "connections": connections,
        }

    def _guild(self, rng, position: int, moment, owner: bool) -> dict:
        return {
            "id": snowflake(moment, rng),
            "name": f"{rng.choice(NAMES).title()} {rng.choice(NAMES)} {position}",
            "icon": hex_id(rng, 32) if rng.random() < 0.7 else None,
            "banner": None,
            "owner": owner,
            "permissions": "2251799813685247" if owner else "104324673",
            "features": rng.sample(
                ["COMMUNITY", "NEWS", "DISCOVERABLE", "INVITE_SPLASH"],
                rng.randint(0, 2),
            ),
            "approximate_member_count": rng.randint(2, 90_000),
            "approximate_presence_count": rng.randint(1, 2000),
        }

    growable = {"guilds": "_add_guild"}

    def _add_guild(self, user: dict, rng, moment) -> int:
        # A guild joined now has the largest snowflake, so it sorts last.
        guild = self._guild(rng, len(user["guilds"]), moment, rng.random() < 0.2)
        user["guilds"].append(guild)
        return len(user["guilds"])

    # Responses --------------------------------------------------------------
    def error_body(self, status: int, message: str, reason: str | None) -> dict:
        codes = {401: 0, 403: 50001, 404: 10003, 400: 50035}
        return {"message": message, "code": codes.get(status, 0)}

    def unauthorized(self, message: str) -> ApiResponse:
        return self.error(401, "401: Unauthorized")

    def rate_limit_headers(self, window: dict) -> dict[str, str]:
        bucket = hashlib.sha256(f"{window['bucket']}".encode()).hexdigest()[:32]
        return {
            "X-RateLimit-Limit": str(window["limit"]),
            "X-RateLimit-Remaining": str(window["remaining"]),
            "X-RateLimit-Reset": f"{window['reset_at']:.3f}",
            "X-RateLimit-Reset-After": f"{window['reset_after']:.3f}",
            "X-RateLimit-Bucket": bucket,
        }

    def rate_limited_response(self, window: dict) -> ApiResponse:
        body = {
            "message": "You are being rate limited.",
            "retry_after": round(window["reset_after"], 3),
            "global": False,
        }
        return ApiResponse(429, body, {"X-RateLimit-Scope": "user"})

    def user(self, request: ApiRequest) -> ApiResponse:
        user = request.user
        return json_response(
            {
                "id": user["id"],
                "username": user["login"],
                "discriminator": "0",
                "global_name": user["name"],
                "avatar": user["avatar"],
                "mfa_enabled": False,
                "banner": None,
                "accent_color": None,
                "locale": "en-US",
                "flags": 0,
                "premium_type": 0,
                "public_flags": 0,
            }
        )

    def guilds(self, request: ApiRequest) -> ApiResponse:
        limit = int_arg(request, "limit", 200, 1, 200)
        guilds = request.user["guilds"]
        try:
            after = int(request.arg("after") or 0)
            before = int(request.arg("before")) if request.arg("before") else None
        except ValueError:
            raise ApiError(
                400, "Invalid Form Body: after and before are snowflakes"
            ) from None
        if before is not None:
            chosen = [guild for guild in guilds if int(guild["id"]) < before][-limit:]
        else:
            chosen = [guild for guild in guilds if int(guild["id"]) > after][:limit]
        with_counts = (request.arg("with_counts") or "").lower() == "true"
        if not with_counts:
            hidden = ("approximate_member_count", "approximate_presence_count")
            chosen = [
                {key: value for key, value in guild.items() if key not in hidden}
                for guild in chosen
            ]
        return json_response(chosen)

    def connections(self, request: ApiRequest) -> ApiResponse:
        return json_response(request.user["connections"])
