"""Spotify Web API: listening history, top items, library and followed artists."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope

PLATFORM = Platform(
    name="spotify",
    display_name="Spotify",
    authorize_url="https://accounts.spotify.com/authorize",
    token_url="https://accounts.spotify.com/api/token",
    # Spotify has no token revocation endpoint; users remove apps at
    # https://www.spotify.com/account/apps/.
    revoke_url=None,
    api_base="https://api.spotify.com",
    identity_path="/v1/me",
    scopes=(
        Scope("user-read-recently-played", ("recently_played",)),
        Scope("user-top-read", ("top_artists", "top_tracks")),
        Scope("user-library-read", ("saved_tracks",)),
        Scope("user-follow-read", ("followed_artists",)),
    ),
    endpoints=(
        Endpoint(
            "recently_played",
            "/v1/me/player/recently-played",
            "cursor",
            page_size=50,
            description="Last 50 plays; older history comes from the export.",
            cursor_param="after",
            page_size_param="limit",
        ),
        Endpoint(
            "top_artists",
            "/v1/me/top/artists",
            "offset",
            page_size=50,
            description="Top artists for short_term, medium_term and long_term.",
            cursor_param="offset",
            page_size_param="limit",
        ),
        Endpoint(
            "top_tracks",
            "/v1/me/top/tracks",
            "offset",
            page_size=50,
            description="Top tracks for short_term, medium_term and long_term.",
            cursor_param="offset",
            page_size_param="limit",
        ),
        Endpoint(
            "saved_tracks",
            "/v1/me/tracks",
            "offset",
            page_size=50,
            cursor_param="offset",
            page_size_param="limit",
        ),
        Endpoint(
            "followed_artists",
            "/v1/me/following",
            "cursor",
            page_size=50,
            params=(("type", "artist"),),
            cursor_param="after",
            page_size_param="limit",
        ),
        Endpoint(
            "artist",
            "/v1/artists/{artist_id}",
            "none",
            description="Genres of one artist; cache across participants.",
        ),
    ),
    # NOTE: Spotify publishes no number, only a rolling 30-second window per
    # app; 180 a minute is an estimate to be lowered when 429s appear.
    rate_limit=RateLimit(180, 60, "app", source="estimate, rolling 30 s window"),
    issues_refresh_tokens=True,
    refresh_token_rotates=True,
    pkce=True,
    client_auth="basic",
    extra_authorize_params={"show_dialog": "true"},
    brand_colour="#1DB954",
    reveals="Recently played tracks, top artists and tracks, saved tracks, "
    "followed artists.",
    insights="Music genre diversity, listening rhythm, exploration of new music.",
    essential=True,
    doctor_notes=(
        "Spotify rejects 'localhost' redirect URIs; register the loopback IP "
        "literal (http://127.0.0.1:PORT/...).",
        "A Spotify app in development mode serves at most five users and needs "
        "an owner with Spotify Premium. For larger studies import the "
        "participants' Spotify data export instead ('twinme-lab import spotify').",
    ),
)
