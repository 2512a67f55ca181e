"""Simulated Spotify Web API (api.spotify.com/v1), with the real response shapes.

Artists, albums and tracks come from one catalogue shared by all users, so the
same artist id is seen by several participants (the extraction engine caches
artist genres across participants).
"""

from __future__ import annotations

import datetime as dt

from .base import (
    ApiError,
    ApiRequest,
    ApiResponse,
    PlatformApi,
    base62_id,
    int_arg,
    iso,
    json_response,
    moments,
    route,
)

GENRES = (
    "indie pop", "art rock", "bedroom pop", "jazz fusion", "neo soul", "techno",
    "deep house", "ambient", "k-pop", "cumbia", "reggaeton", "classical",
    "baroque", "bluegrass", "trap", "grunge", "shoegaze", "afrobeats", "bossa nova",
    "synthwave", "metalcore", "folk", "lo-fi beats", "drum and bass",
)  # fmt: skip
SYLLABLES = (
    "lu", "ma", "ro", "ven", "ta", "sol", "ki", "dra", "no", "bel", "zu", "fi",
    "par", "en", "qui", "lo", "sa", "mor", "tel", "vi",
)  # fmt: skip
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TIME_RANGES = ("short_term", "medium_term", "long_term")
MARKETS = ["AR", "BR", "CA", "DE", "ES", "FR", "GB", "JP", "MX", "US"]

# Records per user profile (user index modulo 3).
SIZES = (
    {
        "recent": 30,
        "top_artists": (10, 20, 30),
        "top_tracks": (15, 25, 40),
        "saved": 37,
        "followed": 8,
    },
    {
        "recent": 50,
        "top_artists": (50, 75, 99),
        "top_tracks": (50, 80, 99),
        "saved": 260,
        "followed": 55,
    },
    {
        "recent": 4,
        "top_artists": (0, 3, 6),
        "top_tracks": (0, 5, 8),
        "saved": 0,
        "followed": 0,
    },
)
CATALOGUE_ARTISTS = 160
CATALOGUE_TRACKS = 700


def _name(rng, low: int = 2, high: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(low, high))).title()


class SpotifyApi(PlatformApi):
    name = "spotify"

    def __init__(self, seed: int, root: str):
        super().__init__(seed)
        self.root = root
        self._build_catalogue()
        self.routes = [
            route("me", r"/v1/me", self.me),
            route(
                "recently_played",
                r"/v1/me/player/recently-played",
                self.recently_played,
                "user-read-recently-played",
            ),
            route(
                "top_artists", r"/v1/me/top/artists", self.top_artists, "user-top-read"
            ),
            route("top_tracks", r"/v1/me/top/tracks", self.top_tracks, "user-top-read"),
            route(
                "saved_tracks", r"/v1/me/tracks", self.saved_tracks, "user-library-read"
            ),
            route(
                "followed_artists",
                r"/v1/me/following",
                self.followed_artists,
                "user-follow-read",
            ),
            route("artist", r"/v1/artists/(?P<artist_id>[^/]+)", self.artist),
            route("several_artists", r"/v1/artists", self.restricted),
            route("audio_features", r"/v1/audio-features(/[^/]+)?", self.restricted),
        ]

    # Catalogue ------------------------------------------------------------
    def _link(self, kind: str, item_id: str) -> dict:
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{item_id}"},
            "href": f"{self.root}/v1/{kind}s/{item_id}",
            "id": item_id,
            "type": kind,
            "uri": f"spotify:{kind}:{item_id}",
        }

    def _images(self, rng, sizes: tuple[int, ...]) -> list[dict]:
        digest = base62_id(rng, 40).lower()
        return [
            {
                "height": size,
                "url": f"https://i.scdn.co/image/{digest}{size}",
                "width": size,
            }
            for size in sizes
        ]

    def _build_catalogue(self) -> None:
        rng = self.rng("catalogue")
        self.artists: dict[str, dict] = {}
        artist_ids = []
        for _ in range(CATALOGUE_ARTISTS):
            artist_id = base62_id(rng)
            artist = self._link("artist", artist_id)
            artist.update(
                {
                    "followers": {"href": None, "total": rng.randint(50, 9_000_000)},
                    "genres": rng.sample(GENRES, rng.randint(0, 4)),
                    "images": self._images(rng, (640, 320, 160)),
                    "name": _name(rng),
                    "popularity": rng.randint(5, 95),
                }
            )
            self.artists[artist_id] = artist
            artist_ids.append(artist_id)
        self.artist_ids = artist_ids

        self.tracks: list[dict] = []
        albums: list[dict] = []
        for _ in range(CATALOGUE_TRACKS // 10):
            lead = self.artists[rng.choice(artist_ids)]
            album = self._link("album", base62_id(rng))
            year = rng.randint(1965, 2026)
            album.update(
                {
                    "album_type": rng.choice(("album", "single", "compilation")),
                    "artists": [self._simple_artist(lead)],
                    "available_markets": MARKETS,
                    "images": self._images(rng, (640, 300, 64)),
                    "name": _name(rng, 1, 3),
                    "release_date": f"{year}-{rng.randint(1, 12):02d}-"
                    f"{rng.randint(1, 28):02d}",
                    "release_date_precision": "day",
                    "total_tracks": 10,
                }
            )
            albums.append(album)
        for index in range(CATALOGUE_TRACKS):
            album = albums[index // 10]
            performers = list(album["artists"])
            if rng.random() < 0.2:
                guest = self.artists[rng.choice(artist_ids)]
                if guest["id"] != performers[0]["id"]:
                    performers.append(self._simple_artist(guest))
            track = self._link("track", base62_id(rng))
            track.update(
                {
                    "album": album,
                    "artists": performers,
                    "available_markets": MARKETS,
                    "disc_number": 1,
                    "duration_ms": rng.randint(95_000, 420_000),
                    "explicit": rng.random() < 0.15,
                    "external_ids": {"isrc": f"QZ{rng.randint(10**9, 10**10 - 1)}"},
                    "is_local": False,
                    "name": _name(rng, 1, 4),
                    "popularity": rng.randint(0, 90),
                    "preview_url": None,
                    "track_number": index % 10 + 1,
                }
            )
            self.tracks.append(track)

    def _simple_artist(self, artist: dict) -> dict:
        keys = ("external_urls", "href", "id", "name", "type", "uri")
        return {key: artist[key] for key in keys}

    # Users ----------------------------------------------------------------
    def build_user(self, index: int) -> dict:
        rng = self.rng("user", index)
        sizes = SIZES[index % 3]
        login = f"sandbox{_name(rng).lower()}{index}"
        user_tracks = rng.sample(self.tracks, 300)
        plays = [
            _play(moment, track)
            for moment, track in zip(
                moments(rng, sizes["recent"], dt.timedelta(days=3)),
                (rng.choice(user_tracks) for _ in range(sizes["recent"])),
                strict=True,
            )
        ]
        top_artists = {}
        top_tracks = {}
        for position, time_range in enumerate(TIME_RANGES):
            top_artists[time_range] = [
                self.artists[artist_id]
                for artist_id in rng.sample(
                    self.artist_ids, sizes["top_artists"][position]
                )
            ]
            top_tracks[time_range] = rng.sample(
                user_tracks, sizes["top_tracks"][position]
            )
        saved = [
            {"added_at": iso(moment), "track": track}
            for moment, track in zip(
                moments(rng, sizes["saved"], dt.timedelta(days=2000)),
                rng.sample(self.tracks, sizes["saved"]),
                strict=True,
            )
        ]
        followed = sorted(rng.sample(self.artist_ids, sizes["followed"]))
        return {
            "id": login,
            "login": login,
            "name": _name(rng) + " " + _name(rng),
            "followers": rng.randint(0, 400),
            "plays": plays,
            "top_artists": top_artists,
            "top_tracks": top_tracks,
            "saved": saved,
            "followed": followed,
        }

    growable = {"recently_played": "_add_play", "saved_tracks": "_add_saved"}

    def _add_play(self, user: dict, rng, moment: dt.datetime) -> int:
        user["plays"].insert(0, _play(moment, rng.choice(self.tracks)))
        # Spotify keeps only the last 50 plays reachable.
        del user["plays"][50:]
        return len(user["plays"])

    def _add_saved(self, user: dict, rng, moment: dt.datetime) -> int:
        saved_ids = {item["track"]["id"] for item in user["saved"]}
        candidates = [track for track in self.tracks if track["id"] not in saved_ids]
        user["saved"].insert(
            0, {"added_at": iso(moment), "track": rng.choice(candidates)}
        )
        return len(user["saved"])

    # Responses --------------------------------------------------------------
    def error_body(self, status: int, message: str, reason: str | None) -> dict:
        return {"error": {"status": status, "message": message}}

    def rate_limited_response(self, window: dict) -> ApiResponse:
        # Spotify sends only Retry-After with a 429, and no body.
        return ApiResponse(429, None, {})

    def me(self, request: ApiRequest) -> ApiResponse:
        user = request.user
        body = self._link("user", user["id"])
        body.update(
            {
                "display_name": user["name"],
                "followers": {"href": None, "total": user["followers"]},
                "href": f"{self.root}/v1/users/{user['id']}",
                "images": [],
            }
        )
        return json_response(body)

    def recently_played(self, request: ApiRequest) -> ApiResponse:
        limit = int_arg(request, "limit", 20, 1, 50)
        after = request.arg("after")
        before = request.arg("before")
        if after is not None and before is not None:
            raise ApiError(400, "Only one of after and before may be given")
        plays = request.user["plays"]
        try:
            if after is not None:
                # The plays right after the cursor, so that following ``next``
                # reaches every newer play; each page is still newest first.
                bound = int(after)
                newer = [p for p in plays if _millis(p["moment"]) > bound]
                chosen = newer[-limit:]
            else:
                bound = int(before) if before is not None else None
                chosen = [
                    p for p in plays if bound is None or _millis(p["moment"]) < bound
                ][:limit]
        except ValueError:
            raise ApiError(400, "after and before must be Unix times in ms") from None

        items = [
            {"track": play["track"], "played_at": play["played_at"], "context": None}
            for play in chosen
        ]
        cursors = None
        next_url = None
        if chosen:
            newest = _millis(chosen[0]["moment"])
            oldest = _millis(chosen[-1]["moment"])
            cursors = {"after": str(newest), "before": str(oldest)}
            if after is not None:
                next_url = request.url(request.path, {"after": newest, "limit": limit})
            elif any(_millis(p["moment"]) < oldest for p in plays):
                next_url = request.url(request.path, {"before": oldest, "limit": limit})
        href = request.url(
            request.path, {"after": after, "before": before, "limit": limit}
        )
        return json_response(
            {
                "items": items,
                "next": next_url,
                "cursors": cursors,
                "limit": limit,
                "href": href,
            }
        )

    def _offset_page(
        self, request: ApiRequest, items: list, extra: dict
    ) -> ApiResponse:
        limit = int_arg(request, "limit", 20, 1, 50)
        offset = int_arg(request, "offset", 0, 0, 100_000)
        page = items[offset : offset + limit]

        def link(position: int) -> str:
            return request.url(
                request.path, {"offset": position, "limit": limit, **extra}
            )

        return json_response(
            {
                "href": link(offset),
                "items": page,
                "limit": limit,
                "next": link(offset + limit) if offset + limit < len(items) else None,
                "offset": offset,
                "previous": link(max(0, offset - limit)) if offset > 0 else None,
                "total": len(items),
            }
        )

    def _time_range(self, request: ApiRequest) -> str:
        value = request.arg("time_range", "medium_term")
        if value not in TIME_RANGES:
            raise ApiError(400, f"Invalid time range: {value}")
        return value

    def top_artists(self, request: ApiRequest) -> ApiResponse:
        time_range = self._time_range(request)
        items = request.user["top_artists"][time_range]
        return self._offset_page(request, items, {"time_range": time_range})

    def top_tracks(self, request: ApiRequest) -> ApiResponse:
        time_range = self._time_range(request)
        items = request.user["top_tracks"][time_range]
        return self._offset_page(request, items, {"time_range": time_range})

    def saved_tracks(self, request: ApiRequest) -> ApiResponse:
        return self._offset_page(request, request.user["saved"], {})

    def followed_artists(self, request: ApiRequest) -> ApiResponse:
        if request.arg("type") != "artist":
            raise ApiError(400, "Invalid type: only 'artist' is supported")
        limit = int_arg(request, "limit", 20, 1, 50)
        after = request.arg("after")
        ids = request.user["followed"]
        start = 0
        if after:
            start = next((i + 1 for i, value in enumerate(ids) if value == after), None)
            if start is None:
                raise ApiError(400, f"Invalid after cursor: {after}")
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        last = page[-1] if page else None
        return json_response(
            {
                "artists": {
                    "items": [self.artists[artist_id] for artist_id in page],
                    "next": request.url(
                        request.path, {"type": "artist", "after": last, "limit": limit}
                    )
                    if more
                    else None,
                    "total": len(ids),
                    "cursors": {"after": last if more else None},
                    "limit": limit,
                    "href": request.url(
                        request.path, {"type": "artist", "after": after, "limit": limit}
                    ),
                }
            }
        )

    def artist(self, request: ApiRequest) -> ApiResponse:
        artist_id = request.path_params["artist_id"]
        if len(artist_id) != 22 or not artist_id.isalnum():
            raise ApiError(400, "Invalid base62 id")
        artist = self.artists.get(artist_id)
        if artist is None:
            raise ApiError(404, "Resource not found")
        return json_response(artist)

    def restricted(self, request: ApiRequest) -> ApiResponse:
        # Spotify returns 403 here to apps created after 27 November 2024.
        return self.error(403, "Forbidden")


def _play(moment: dt.datetime, track: dict) -> dict:
    return {"played_at": iso(moment, millis=True), "moment": moment, "track": track}


def _millis(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)
