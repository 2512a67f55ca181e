"""Simulated Reddit OAuth API (oauth.reddit.com) with listings and ``after`` cursors.

Listings stop after ``LISTING_CAP`` items, as Reddit's do (the last page has
``after: null`` even when the user wrote more).
"""

from __future__ import annotations

import datetime as dt

from .base import (
    ApiError,
    ApiRequest,
    ApiResponse,
    PlatformApi,
    base36,
    int_arg,
    json_response,
    moments,
    route,
)

LISTING_CAP = 1000
SUBREDDITS = (
    "python", "datascience", "AskHistorians", "gardening", "cooking", "running",
    "boardgames", "photography", "science", "books", "movies", "Music", "worldnews",
    "personalfinance", "woodworking", "aquariums", "chess", "linux", "travel",
    "MachineLearning", "bicycling", "houseplants", "Fantasy", "jazz", "Parenting",
)  # fmt: skip
FILLER = (
    "really", "think", "this", "the", "was", "good", "point", "but", "maybe", "never",
    "tried", "with", "a", "new", "idea", "works", "for", "me", "thanks", "agree",
)  # fmt: skip
# Subscribed subreddits, posts and comments per user profile (index modulo 3).
SIZES = (
    {"subreddits": 18, "posts": 12, "comments": 80},
    {"subreddits": 140, "posts": 60, "comments": 1200},
    {"subreddits": 0, "posts": 0, "comments": 2},
)
# User-Agent prefixes of HTTP libraries; Reddit throttles requests that send them.
GENERIC_AGENTS = ("python-requests", "python-urllib", "curl/", "java", "go-http-client")


def _epoch(moment: dt.datetime) -> float:
    return float(int(moment.timestamp()))


class RedditApi(PlatformApi):
    name = "reddit"

    def __init__(self, seed: int, root: str):
        super().__init__(seed)
        self.root = root
        self.users_by_name: dict[str, dict] = {}
        self._build_subreddits()
        self.routes = [
            route("me", r"/api/v1/me", self.me, "identity"),
            route(
                "subreddits",
                r"/subreddits/mine/subscriber",
                self.subreddits,
                "mysubreddits",
            ),
            route(
                "submitted",
                r"/user/(?P<name>[^/]+)/submitted",
                self.submitted,
                "history",
            ),
            route(
                "comments", r"/user/(?P<name>[^/]+)/comments", self.comments, "history"
            ),
        ]

    def _build_subreddits(self) -> None:
        rng = self.rng("catalogue")
        self.subreddit_list = []
        for number in range(180):
            base = SUBREDDITS[number % len(SUBREDDITS)]
            name = base if number < len(SUBREDDITS) else f"{base}{number}"
            sub_id = base36(10_000_000 + number * 7919)
            self.subreddit_list.append(
                {
                    "display_name": name,
                    "display_name_prefixed": f"r/{name}",
                    "id": sub_id,
                    "name": f"t5_{sub_id}",
                    "title": name.title(),
                    "subscribers": rng.randint(100, 30_000_000),
                    "public_description": "",
                    "url": f"/r/{name}/",
                    "over18": False,
                    "subreddit_type": "public",
                    "lang": "en",
                    "created_utc": float(1_200_000_000 + rng.randint(0, 5 * 10**8)),
                }
            )

    def build_user(self, index: int) -> dict:
        rng = self.rng("user", index)
        sizes = SIZES[index % 3]
        name = f"sandbox_redditor_{index}"
        subscribed = rng.sample(self.subreddit_list, sizes["subreddits"])
        homes = subscribed or self.subreddit_list[:3]
        counter = 100_000_000 + index * 10_000_000
        posts = []
        for moment in moments(rng, sizes["posts"], dt.timedelta(days=1500)):
            counter += rng.randint(1, 500)
            posts.append(self._post(rng, name, rng.choice(homes), counter, moment))
        comments = []
        for moment in moments(rng, sizes["comments"], dt.timedelta(days=2000)):
            counter += rng.randint(1, 500)
            sub = rng.choice(homes)
            comments.append(self._comment(rng, name, sub, counter, moment))
        user = {
            "id": base36(90_000_000 + index),
            "login": name,
            "name": name,
            "created_utc": float(1_400_000_000 + index * 86400),
            "subscribed": [{"kind": "t5", "data": sub} for sub in subscribed],
            "posts": posts,
            "comments": comments,
            "link_karma": rng.randint(0, 9000),
            "comment_karma": rng.randint(0, 40000),
            "homes": homes,
            "counter": counter,
        }
        self.users_by_name[name.lower()] = user
        return user

    def _post(self, rng, author: str, sub: dict, number: int, moment) -> dict:
        post_id = base36(number)
        path = f"/r/{sub['display_name']}/comments/{post_id}/"
        return {
            "kind": "t3",
            "data": {
                "id": post_id,
                "name": f"t3_{post_id}",
                "title": " ".join(rng.choice(FILLER) for _ in range(6)).capitalize(),
                "subreddit": sub["display_name"],
                "subreddit_id": sub["name"],
                "subreddit_name_prefixed": sub["display_name_prefixed"],
                "author": author,
                "created_utc": _epoch(moment),
                "score": rng.randint(-3, 900),
                "ups": rng.randint(0, 900),
                "downs": 0,
                "upvote_ratio": round(rng.uniform(0.5, 1.0), 2),
                "num_comments": rng.randint(0, 120),
                "is_self": True,
                "selftext": " ".join(rng.choice(FILLER) for _ in range(20)),
                "over_18": False,
                "permalink": path,
                "url": f"https://www.reddit.com{path}",
            },
        }

    def _comment(self, rng, author: str, sub: dict, number: int, moment) -> dict:
        comment_id = base36(number)
        link_id = base36(rng.randint(10**8, 10**9))
        return {
            "kind": "t1",
            "data": {
                "id": comment_id,
                "name": f"t1_{comment_id}",
                "body": " ".join(rng.choice(FILLER) for _ in range(rng.randint(3, 30))),
                "subreddit": sub["display_name"],
                "subreddit_id": sub["name"],
                "subreddit_name_prefixed": sub["display_name_prefixed"],
                "link_id": f"t3_{link_id}",
                "parent_id": f"t3_{link_id}",
                "link_title": "A thread",
                "author": author,
                "created_utc": _epoch(moment),
                "score": rng.randint(-5, 400),
                "permalink": f"/r/{sub['display_name']}/comments/{link_id}/_/"
                f"{comment_id}/",
            },
        }

    growable = {"submitted": "_add_post", "comments": "_add_comment"}

    def _add_post(self, user: dict, rng, moment) -> int:
        user["counter"] += rng.randint(1, 500)
        sub = rng.choice(user["homes"])
        user["posts"].insert(
            0, self._post(rng, user["name"], sub, user["counter"], moment)
        )
        return len(user["posts"])

    def _add_comment(self, user: dict, rng, moment) -> int:
        user["counter"] += rng.randint(1, 500)
        sub = rng.choice(user["homes"])
        comment = self._comment(rng, user["name"], sub, user["counter"], moment)
        user["comments"].insert(0, comment)
        return len(user["comments"])

    # Responses --------------------------------------------------------------
    def error_body(self, status: int, message: str, reason: str | None) -> dict:
        return {"message": message, "error": status}

    def unauthorized(self, message: str) -> ApiResponse:
        return self.error(401, "Unauthorized")

    def rate_limit_headers(self, window: dict) -> dict[str, str]:
        return {
            "X-Ratelimit-Used": str(window["used"]),
            "X-Ratelimit-Remaining": f"{float(window['remaining']):.1f}",
            "X-Ratelimit-Reset": str(int(round(window["reset_after"]))),
        }

    def rate_limited_response(self, window: dict) -> ApiResponse:
        return self.error(429, "Too Many Requests")

    def check_request(self, headers, client_id: str) -> ApiResponse | None:
        agent = (headers.get("User-Agent") or "").strip()
        if not agent or agent.lower().startswith(GENERIC_AGENTS):
            return self.error(
                429,
                "Too Many Requests: send a unique, descriptive User-Agent "
                "(for example 'platform:app-id:version (by /u/name)').",
            )
        return None

    def me(self, request: ApiRequest) -> ApiResponse:
        user = request.user
        return json_response(
            {
                "name": user["name"],
                "id": user["id"],
                "created_utc": user["created_utc"],
                "created": user["created_utc"],
                "link_karma": user["link_karma"],
                "comment_karma": user["comment_karma"],
                "total_karma": user["link_karma"] + user["comment_karma"],
                "icon_img": "https://www.redditstatic.com/avatars/defaults/v2/avatar_default_1.png",
                "has_verified_email": True,
                "verified": True,
                "is_gold": False,
                "is_mod": False,
                "is_employee": False,
                "over_18": False,
            }
        )

    def _listing(self, request: ApiRequest, things: list[dict]) -> ApiResponse:
        limit = int_arg(request, "limit", 25, 1, 100, clamp=True)
        reachable = things[:LISTING_CAP]
        after = request.arg("after")
        before = request.arg("before")
        names = [thing["data"]["name"] for thing in reachable]
        if after:
            if after not in names:
                # NOTE: Reddit documents no response for an unknown cursor; the
                # sandbox returns an empty listing.
                page = []
            else:
                start = names.index(after) + 1
                page = reachable[start : start + limit]
        elif before:
            end = names.index(before) if before in names else 0
            page = reachable[max(0, end - limit) : end]
        else:
            page = reachable[:limit]
        last_name = page[-1]["data"]["name"] if page else None
        more = bool(page) and names.index(last_name) + 1 < len(reachable)
        return json_response(
            {
                "kind": "Listing",
                "data": {
                    "after": last_name if more else None,
                    "dist": len(page),
                    "modhash": None,
                    "geo_filter": "",
                    "children": page,
                    "before": page[0]["data"]["name"]
                    if page and (after or before)
                    else None,
                },
            }
        )

    def _named_user(self, request: ApiRequest) -> dict:
        user = self.users_by_name.get(request.path_params["name"].lower())
        if user is None:
            raise ApiError(404, "Not Found")
        return user

    def subreddits(self, request: ApiRequest) -> ApiResponse:
        return self._listing(request, request.user["subscribed"])

    def submitted(self, request: ApiRequest) -> ApiResponse:
        return self._listing(request, self._named_user(request)["posts"])

    def comments(self, request: ApiRequest) -> ApiResponse:
        return self._listing(request, self._named_user(request)["comments"])
