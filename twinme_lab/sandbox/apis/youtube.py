"""Simulated YouTube Data API v3 (www.googleapis.com/youtube/v3).

Channels and videos come from one catalogue shared by all users. Page tokens are
opaque strings, valid only for the query that produced them.
"""

from __future__ import annotations

import datetime as dt

from .base import (
    ApiError,
    ApiRequest,
    ApiResponse,
    PlatformApi,
    base62_id,
    decode_cursor,
    encode_cursor,
    int_arg,
    iso,
    json_response,
    moments,
    route,
)

WIKI = "https://en.wikipedia.org/wiki/"
TOPICS = (
    ("/m/04rlf", "Music"), ("/m/0bzvm2", "Gaming"), ("/m/06ntj", "Sports"),
    ("/m/02jjt", "Entertainment"), ("/m/019_rr", "Lifestyle_(sociology)"),
    ("/m/01k8wb", "Knowledge"), ("/m/07c1v", "Technology"), ("/m/02wbm", "Food"),
    ("/m/07bxq", "Tourism"), ("/m/05qjc", "Performing_arts"), ("/m/098wr", "Society"),
    ("/m/032tl", "Fashion"), ("/m/027x7n", "Physical_fitness"), ("/m/0kt51", "Health"),
)  # fmt: skip
WORDS = (
    "daily", "lab", "kitchen", "studio", "talks", "plays", "science", "travel",
    "beats", "garage", "academy", "review", "live", "stories", "explained",
)  # fmt: skip
CATALOGUE_CHANNELS = 260
CATALOGUE_VIDEOS = 900
# Subscriptions and liked videos per user profile (user index modulo 3).
SIZES = (
    {"subscriptions": 14, "likes": 20},
    {"subscriptions": 120, "likes": 75},
    {"subscriptions": 0, "likes": 3},
)


class YouTubeApi(PlatformApi):
    name = "youtube"

    def __init__(self, seed: int, root: str):
        super().__init__(seed)
        self.root = root
        self._build_catalogue()
        readonly = "https://www.googleapis.com/auth/youtube.readonly"
        self.routes = [
            route(
                "subscriptions",
                r"/youtube/v3/subscriptions",
                self.subscriptions,
                readonly,
            ),
            route("liked_videos", r"/youtube/v3/videos", self.videos, readonly),
            route("channel_topics", r"/youtube/v3/channels", self.channels, readonly),
        ]

    def _build_catalogue(self) -> None:
        rng = self.rng("catalogue")
        self.channels_by_id: dict[str, dict] = {}
        channel_ids = []
        for number in range(CATALOGUE_CHANNELS):
            channel_id = "UC" + base62_id(rng, 22)
            topics = rng.sample(TOPICS, rng.randint(1, 3))
            self.channels_by_id[channel_id] = {
                "id": channel_id,
                "title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {number}",
                "topicIds": [topic_id for topic_id, _ in topics],
                "topicCategories": [WIKI + title for _, title in topics],
                "publishedAt": iso(dt.datetime(2010, 1, 1, tzinfo=dt.UTC)
                                   + dt.timedelta(days=rng.randint(0, 5000))),
            }  # fmt: skip
            channel_ids.append(channel_id)
        self.channel_ids = channel_ids
        self.videos_list = []
        for number in range(CATALOGUE_VIDEOS):
            channel = self.channels_by_id[rng.choice(channel_ids)]
            topics = rng.sample(TOPICS, rng.randint(1, 2))
            self.videos_list.append(
                {
                    "id": base62_id(rng, 11),
                    "channel": channel,
                    "title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} "
                    f"#{number}",
                    "categoryId": str(rng.choice((10, 17, 20, 22, 24, 26, 27, 28))),
                    "topicCategories": [WIKI + title for _, title in topics],
                    "publishedAt": iso(dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
                                       + dt.timedelta(hours=rng.randint(0, 90000))),
                }
            )  # fmt: skip

    def build_user(self, index: int) -> dict:
        rng = self.rng("user", index)
        sizes = SIZES[index % 3]
        own_channel = "UC" + base62_id(rng, 22)
        subscribed = rng.sample(self.channel_ids, sizes["subscriptions"])
        subscriptions = [
            {"id": base62_id(rng, 43), "channel_id": channel_id, "at": iso(moment)}
            for channel_id, moment in zip(
                subscribed,
                moments(rng, len(subscribed), dt.timedelta(days=3000)),
                strict=True,
            )
        ]
        # The API sorts subscriptions by relevance; the sandbox fixes the order.
        return {
            "id": own_channel,
            "login": f"sandbox.viewer{index}@example.org",
            "name": f"Sandbox Viewer {index}",
            "subscriptions": subscriptions,
            "likes": rng.sample(self.videos_list, sizes["likes"]),
        }

    growable = {"subscriptions": "_add_subscription", "liked_videos": "_add_like"}

    def _add_subscription(self, user: dict, rng, moment) -> int:
        subscribed = {entry["channel_id"] for entry in user["subscriptions"]}
        candidates = [value for value in self.channel_ids if value not in subscribed]
        entry = {"id": base62_id(rng, 43), "channel_id": rng.choice(candidates)}
        entry["at"] = iso(moment)
        user["subscriptions"].append(entry)
        return len(user["subscriptions"])

    def _add_like(self, user: dict, rng, moment) -> int:
        liked = {video["id"] for video in user["likes"]}
        candidates = [video for video in self.videos_list if video["id"] not in liked]
        # Liked videos are listed most recently liked first.
        user["likes"].insert(0, rng.choice(candidates))
        return len(user["likes"])

    # Responses --------------------------------------------------------------
    def error_body(self, status: int, message: str, reason: str | None) -> dict:
        google_status = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
        }
        return {
            "error": {
                "code": status,
                "message": message,
                "errors": [
                    {
                        "message": message,
                        "domain": "youtube.api" if status != 401 else "global",
                        "reason": reason or "backendError",
                    }
                ],
                "status": google_status.get(status, "UNKNOWN"),
            }
        }

    def unauthorized(self, message: str) -> ApiResponse:
        return self.error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
            "authError",
        )

    def _parts(self, request: ApiRequest, allowed: tuple[str, ...]) -> set[str]:
        raw = request.arg("part")
        if not raw:
            raise ApiError(400, "No filter selected. Expected one of: part", "required")
        parts = {part.strip() for part in raw.split(",") if part.strip()}
        unknown = parts - set(allowed)
        if unknown:
            raise ApiError(400, f"Unknown part: {sorted(unknown)[0]}", "unknownPart")
        return parts

    def _page(
        self, request: ApiRequest, items: list, kind: str, default: int
    ) -> tuple[list, dict]:
        size = int_arg(request, "maxResults", default, 0, 50)
        token = request.arg("pageToken")
        offset = 0
        if token:
            offset = decode_cursor(token, "pageToken").get("o", -1)
            if not isinstance(offset, int) or not 0 <= offset <= len(items):
                raise ApiError(400, "The page token is invalid.", "invalidPageToken")
        page = items[offset : offset + size]
        body = {
            "kind": kind,
            "etag": base62_id(self.rng("etag", kind, offset, size), 27),
            "pageInfo": {"totalResults": len(items), "resultsPerPage": size},
        }
        if offset + size < len(items) and size > 0:
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        if offset > 0:
            body["prevPageToken"] = encode_cursor({"o": max(0, offset - size)})
        return page, body

    def subscriptions(self, request: ApiRequest) -> ApiResponse:
        parts = self._parts(
            request, ("id", "snippet", "contentDetails", "subscriberSnippet")
        )
        if (request.arg("mine") or "").lower() != "true":
            raise ApiError(
                400, "Only mine=true is served by the sandbox.", "invalidFilters"
            )
        page, body = self._page(
            request,
            request.user["subscriptions"],
            "youtube#subscriptionListResponse",
            5,
        )
        items = []
        for entry in page:
            channel = self.channels_by_id[entry["channel_id"]]
            item = {
                "kind": "youtube#subscription",
                "etag": entry["id"][:27],
                "id": entry["id"],
            }
            if "snippet" in parts:
                item["snippet"] = {
                    "publishedAt": entry["at"],
                    "title": channel["title"],
                    "description": "",
                    "resourceId": {
                        "kind": "youtube#channel",
                        "channelId": channel["id"],
                    },
                    "channelId": request.user["id"],
                    "thumbnails": {
                        "default": {"url": f"https://yt3.ggpht.com/{channel['id']}"}
                    },
                }
            if "contentDetails" in parts:
                item["contentDetails"] = {
                    "totalItemCount": 40,
                    "newItemCount": 0,
                    "activityType": "all",
                }
            items.append(item)
        body["items"] = items
        return json_response(body)

    def videos(self, request: ApiRequest) -> ApiResponse:
        parts = self._parts(
            request, ("id", "snippet", "contentDetails", "statistics", "topicDetails")
        )
        if (request.arg("myRating") or "") != "like":
            raise ApiError(
                400, "Only myRating=like is served by the sandbox.", "invalidFilters"
            )
        page, body = self._page(
            request, request.user["likes"], "youtube#videoListResponse", 5
        )
        items = []
        for video in page:
            item = {"kind": "youtube#video", "etag": video["id"] * 2, "id": video["id"]}
            if "snippet" in parts:
                item["snippet"] = {
                    "publishedAt": video["publishedAt"],
                    "channelId": video["channel"]["id"],
                    "title": video["title"],
                    "description": "",
                    "channelTitle": video["channel"]["title"],
                    "categoryId": video["categoryId"],
                    "liveBroadcastContent": "none",
                }
            if "topicDetails" in parts:
                item["topicDetails"] = {"topicCategories": video["topicCategories"]}
            items.append(item)
        body["items"] = items
        return json_response(body)

    def channels(self, request: ApiRequest) -> ApiResponse:
        parts = self._parts(request, ("id", "snippet", "topicDetails", "statistics"))
        if (request.arg("mine") or "").lower() == "true":
            own = {
                "id": request.user["id"],
                "title": request.user["name"],
                "topicIds": [],
                "topicCategories": [],
                "publishedAt": None,
            }
            channels = [own]
        elif request.arg("id"):
            ids = [value for value in request.arg("id").split(",") if value]
            if len(ids) > 50:
                raise ApiError(400, "Too many channel ids: at most 50.", "invalidValue")
            channels = [
                self.channels_by_id[value]
                for value in ids
                if value in self.channels_by_id
            ]
        else:
            raise ApiError(
                400,
                "No filter selected. Expected one of: mine, id",
                "missingRequiredParameter",
            )
        items = []
        for channel in channels:
            item = {
                "kind": "youtube#channel",
                "etag": channel["id"][2:],
                "id": channel["id"],
            }
            if "snippet" in parts:
                item["snippet"] = {
                    "title": channel["title"],
                    "publishedAt": channel["publishedAt"],
                }
            if "topicDetails" in parts and channel["topicIds"]:
                item["topicDetails"] = {
                    "topicIds": channel["topicIds"],
                    "topicCategories": channel["topicCategories"],
                }
            items.append(item)
        return json_response(
            {
                "kind": "youtube#channelListResponse",
                "etag": base62_id(self.rng("etag", "channels", len(items)), 27),
                "pageInfo": {"totalResults": len(items), "resultsPerPage": 5},
                "items": items,
            }
        )
