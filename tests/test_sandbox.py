"""The sandbox provider over real HTTPS on 127.0.0.1: OAuth, API shapes, faults.

Expected record counts come from the per-profile size tables documented in the
sandbox's platform modules (user index modulo 3: small, large, sparse).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography import x509
from oauthlib.common import Request as OAuthRequest
from requests_oauthlib import OAuth2Session

from twinme_lab import platforms
from twinme_lab.sandbox import PLATFORM_NAMES, SandboxError, client_pair, serve

REDIRECT_URI = "http://127.0.0.1:8086/oauth/callback"
AGENT = "python:twinme-lab-tests:0.1 (by /u/sandbox)"
REAL = Path(__file__).parent / "data" / "real"
CLI = [
    sys.executable,
    "-c",
    "import sys; from twinme_lab.cli import main; sys.exit(main(sys.argv[1:]))",
]


@pytest.fixture(scope="module")
def sandbox():
    with serve(seed=7, auto_consent=True, rate_limits=False) as handle:
        yield handle


@pytest.fixture(autouse=True)
def clean_sandbox(request):
    """Switch faults and limits off again after each test that used the sandbox."""
    yield
    if "sandbox" in request.fixturenames:
        handle = request.getfixturevalue("sandbox")
        handle.clear_faults()
        handle.set_token_lifetime(3600)
        for name in PLATFORM_NAMES:
            handle.set_rate_limit(name, None)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(sb, platform: str, user: int | None = 0, **extra) -> tuple[str, str, str]:
    """Run the authorize step as user ``user`` (None: name no user).

    Returns (code, verifier, state).
    """
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_pair(platform)[0],
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(platforms.get(platform).scope_names()),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **platforms.get(platform).extra_authorize_params,
    }
    if user is not None:
        params["sandbox_user"] = str(user)
    params.update(extra)
    response = requests.get(
        sb.oauth_url(platform, "authorize"),
        params=params,
        verify=sb.ca_path,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == [state]
    return query["code"][0], verifier, state


def token_request(sb, platform: str, data: dict, auth: bool = True):
    client_id, secret = client_pair(platform)
    return requests.post(
        sb.oauth_url(platform, "token"),
        data=data,
        auth=(client_id, secret) if auth else None,
        headers={"Accept": "application/json"},
        verify=sb.ca_path,
    )


def exchange(sb, platform: str, code: str, verifier: str | None, **overrides):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(overrides)
    return token_request(sb, platform, data)


def connect(sb, platform: str, user: int = 0, **extra) -> dict:
    code, verifier, _ = authorize(sb, platform, user, **extra)
    response = exchange(sb, platform, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def refresh(sb, platform: str, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(sb, platform, data)


def api_get(sb, platform: str, path: str, token: str, headers=None, **params):
    sent = {
        "Authorization": f"Bearer {token}",
        "User-Agent": AGENT,
        "Client-Id": client_pair(platform)[0],
        **(headers or {}),
    }
    return requests.get(
        sb.api_url(platform, path), params=params, headers=sent, verify=sb.ca_path
    )


# Binding and TLS ------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "localhost", "::1"])
def test_bind_rejects_non_loopback(host):
    with pytest.raises(SandboxError, match="127.0.0.1"):
        serve(host=host)


def test_certificate_is_for_loopback(sandbox):
    ca = x509.load_pem_x509_certificate(Path(sandbox.ca_path).read_bytes())
    server = x509.load_pem_x509_certificate(Path(sandbox.cert_path).read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1"
    ]
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert lifetime.days <= 3
    assert server.issuer == ca.subject
    key_path = Path(sandbox.cert_path).with_name("server-key.pem")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_tls_untrusted_without_ca(sandbox):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{sandbox.url}/_sandbox/health", verify=True, timeout=5)
    response = requests.get(f"{sandbox.url}/_sandbox/health", verify=sandbox.ca_path)
    assert response.json() == {"ok": True}


def test_bad_content_length_rejected(sandbox):
    context = ssl.create_default_context(cafile=sandbox.ca_path)
    connection = http.client.HTTPSConnection(
        "127.0.0.1", sandbox.port, context=context, timeout=10
    )
    try:
        connection.putrequest("POST", "/spotify/oauth/token")
        connection.putheader("Content-Length", "many")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 400
        assert json.loads(response.read()) == {"error": "invalid_content_length"}
    finally:
        connection.close()


def test_state_dir_keeps_files(tmp_path):
    with serve(state_dir=tmp_path / "state") as handle:
        assert Path(handle.ca_path) == tmp_path / "state" / "ca.pem"
    assert (tmp_path / "state" / "ca.pem").is_file()


def test_temp_state_removed_on_stop():
    handle = serve()
    folder = Path(handle.ca_path).parent
    assert folder.is_dir()
    handle.stop()
    assert not folder.exists()


# Authorization code and PKCE --------------------------------------------------


def test_code_flow_with_pkce(sandbox):
    code, verifier, _ = authorize(sandbox, "spotify", user=1)
    response = exchange(sandbox, "spotify", code, verifier)
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert set(token["scope"].split()) == set(platforms.get("spotify").scope_names())
    assert token["refresh_token"]
    me = api_get(sandbox, "spotify", "/v1/me", token["access_token"])
    assert me.status_code == 200
    assert me.json()["id"] == sandbox.users("spotify")[1]["id"]


def test_wrong_verifier_rejected(sandbox):
    code, _, _ = authorize(sandbox, "discord")
    response = exchange(sandbox, "discord", code, pkce_pair()[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_missing_verifier_rejected(sandbox):
    code, _, _ = authorize(sandbox, "spotify")
    response = exchange(sandbox, "spotify", code, None)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_pkce_required_where_declared(sandbox):
    # Spotify's module declares PKCE, so an authorize URL without it fails.
    response = requests.get(
        sandbox.oauth_url("spotify", "authorize"),
        params={
            "response_type": "code",
            "client_id": client_pair("spotify")[0],
            "redirect_uri": REDIRECT_URI,
            "state": "s1",
        },
        verify=sandbox.ca_path,
        allow_redirects=False,
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s1"]


def test_plain_challenge_rejected(sandbox):
    response = requests.get(
        sandbox.oauth_url("discord", "authorize"),
        params={
            "response_type": "code",
            "client_id": client_pair("discord")[0],
            "redirect_uri": REDIRECT_URI,
            "state": "s2",
            "code_challenge": "a" * 43,
            "code_challenge_method": "plain",
        },
        verify=sandbox.ca_path,
        allow_redirects=False,
    )
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["invalid_request"]


def test_code_reuse_rejected_and_revokes(sandbox):
    code, verifier, _ = authorize(sandbox, "twitch")
    first = exchange(sandbox, "twitch", code, verifier)
    assert first.status_code == 200
    second = exchange(sandbox, "twitch", code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    # RFC 6749 section 4.1.2: tokens issued from a reused code are revoked.
    users = api_get(sandbox, "twitch", "/helix/users", first.json()["access_token"])
    assert users.status_code == 401


def test_failed_exchange_spends_code(sandbox):
    code, verifier, _ = authorize(sandbox, "discord")
    assert exchange(sandbox, "discord", code, pkce_pair()[0]).status_code == 400
    retry = exchange(sandbox, "discord", code, verifier)
    assert retry.status_code == 400
    assert retry.json()["error"] == "invalid_grant"


def test_redirect_uri_mismatch_rejected(sandbox):
    code, verifier, _ = authorize(sandbox, "reddit")
    response = exchange(
        sandbox, "reddit", code, verifier, redirect_uri="http://127.0.0.1:9999/cb"
    )
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "invalid_grant")


def test_foreign_redirect_uri_not_followed(sandbox):
    verifier, challenge = pkce_pair()
    response = requests.get(
        sandbox.oauth_url("spotify", "authorize"),
        params={
            "response_type": "code",
            "client_id": client_pair("spotify")[0],
            "redirect_uri": "https://attacker.example/cb",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        verify=sandbox.ca_path,
        allow_redirects=False,
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_wrong_client_secret_rejected(sandbox):
    code, verifier, _ = authorize(sandbox, "linkedin")
    response = requests.post(
        sandbox.oauth_url("linkedin", "token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client_pair("linkedin")[0],
            "client_secret": "not-the-secret",
        },
        verify=sandbox.ca_path,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_sandbox_user_selects_account(sandbox):
    for user in (0, 2):
        token = connect(sandbox, "github", user)
        me = api_get(sandbox, "github", "/user", token["access_token"])
        assert me.json()["login"] == f"sandbox-dev-{user}"


def test_login_hint_and_default_user(sandbox):
    code, verifier, _ = authorize(
        sandbox, "reddit", None, login_hint="sandbox_redditor_2"
    )
    token = exchange(sandbox, "reddit", code, verifier).json()
    me = api_get(sandbox, "reddit", "/api/v1/me", token["access_token"])
    assert me.json()["name"] == "sandbox_redditor_2"

    sandbox.set_consent_user("reddit", 1)
    try:
        verifier, challenge = pkce_pair()
        response = requests.get(
            sandbox.oauth_url("reddit", "authorize"),
            params={
                "response_type": "code",
                "client_id": client_pair("reddit")[0],
                "redirect_uri": REDIRECT_URI,
                "scope": "identity",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            verify=sandbox.ca_path,
            allow_redirects=False,
        )
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
        token = exchange(sandbox, "reddit", code, verifier).json()
        me = api_get(sandbox, "reddit", "/api/v1/me", token["access_token"])
        assert me.json()["name"] == "sandbox_redditor_1"
    finally:
        sandbox.set_consent_user("reddit", 0)


def test_consent_page_approve_and_deny():
    with serve(seed=7) as handle:
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": client_pair("discord")[0],
            "redirect_uri": REDIRECT_URI,
            "scope": "identify guilds",
            "state": "page-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        url = handle.oauth_url("discord", "authorize")
        page = requests.get(url, params=params, verify=handle.ca_path)
        assert page.status_code == 200
        assert "text/html" in page.headers["Content-Type"]
        assert "value='approve'" in page.text
        assert "sandbox_gamer_2" in page.text

        approved = requests.post(
            url,
            params=params,
            data={"decision": "approve", "sandbox_user": "2"},
            verify=handle.ca_path,
            allow_redirects=False,
        )
        assert approved.status_code == 302
        code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
        token = exchange(handle, "discord", code, verifier).json()
        me = api_get(handle, "discord", "/v10/users/@me", token["access_token"])
        assert me.json()["username"] == "sandbox_gamer_2"

        denied = requests.post(
            url,
            params=params,
            data={"decision": "deny"},
            verify=handle.ca_path,
            allow_redirects=False,
        )
        query = parse_qs(urlsplit(denied.headers["Location"]).query)
        assert query["error"] == ["access_denied"]
        assert query["state"] == ["page-state"]
        assert "code" not in query


# Refresh and revocation -------------------------------------------------------


def test_refresh_rotates_single_use(sandbox):
    token = connect(sandbox, "spotify")
    first = refresh(sandbox, "spotify", token["refresh_token"])
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != token["refresh_token"]
    assert rotated["access_token"] != token["access_token"]

    reused = refresh(sandbox, "spotify", token["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    again = refresh(sandbox, "spotify", rotated["refresh_token"])
    assert again.status_code == 200
    me = api_get(sandbox, "spotify", "/v1/me", again.json()["access_token"])
    assert me.status_code == 200


def test_concurrent_refresh_single_winner(sandbox):
    token = connect(sandbox, "twitch")
    barrier = threading.Barrier(8)
    statuses = []

    def spend() -> None:
        barrier.wait()
        statuses.append(refresh(sandbox, "twitch", token["refresh_token"]).status_code)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * 7


def test_refresh_token_claimed_when_validated(sandbox):
    # Two refreshes racing with one token: the second validation must fail even
    # before the first has stored its new token.
    token = connect(sandbox, "spotify")
    validator = sandbox.app.servers["spotify"].refresh_grant.request_validator
    first = OAuthRequest(sandbox.oauth_url("spotify", "token"))
    second = OAuthRequest(sandbox.oauth_url("spotify", "token"))
    assert validator.validate_refresh_token(token["refresh_token"], None, first)
    assert not validator.validate_refresh_token(token["refresh_token"], None, second)


def test_refresh_policies_follow_platform_modules(sandbox):
    github = connect(sandbox, "github")
    assert "refresh_token" not in github
    assert "expires_in" not in github
    linkedin = connect(sandbox, "linkedin")
    assert "refresh_token" not in linkedin
    temporary = connect(sandbox, "reddit", duration="temporary")
    assert "refresh_token" not in temporary
    online = connect(sandbox, "youtube", access_type="online")
    assert "refresh_token" not in online
    offline = connect(sandbox, "youtube")
    assert offline["refresh_token"]


def test_token_lifetime_expires_access(sandbox):
    sandbox.set_token_lifetime(1)
    token = connect(sandbox, "discord")
    assert token["expires_in"] == 1
    time.sleep(1.2)
    response = api_get(sandbox, "discord", "/v10/users/@me", token["access_token"])
    assert response.status_code == 401
    assert response.json() == {"message": "401: Unauthorized", "code": 0}


def test_revocation_ends_grant(sandbox):
    token = connect(sandbox, "discord")
    client_id, secret = client_pair("discord")
    response = requests.post(
        sandbox.oauth_url("discord", "revoke"),
        data={"token": token["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(client_id, secret),
        verify=sandbox.ca_path,
    )
    assert response.status_code == 200
    assert refresh(sandbox, "discord", token["refresh_token"]).json()["error"] == (
        "invalid_grant"
    )
    me = api_get(sandbox, "discord", "/v10/users/@me", token["access_token"])
    assert me.status_code == 401


def test_twitch_revoke_with_client_id_only(sandbox):
    token = connect(sandbox, "twitch")
    response = requests.post(
        sandbox.oauth_url("twitch", "revoke"),
        data={"client_id": client_pair("twitch")[0], "token": token["access_token"]},
        verify=sandbox.ca_path,
    )
    assert response.status_code == 200
    users = api_get(sandbox, "twitch", "/helix/users", token["access_token"])
    assert users.status_code == 401


def test_github_revoke_with_delete(sandbox):
    token = connect(sandbox, "github")
    response = requests.delete(
        sandbox.oauth_url("github", "revoke"),
        json={"access_token": token["access_token"]},
        auth=client_pair("github"),
        verify=sandbox.ca_path,
    )
    assert response.status_code == 204
    assert api_get(sandbox, "github", "/user", token["access_token"]).status_code == 401
    again = requests.delete(
        sandbox.oauth_url("github", "revoke"),
        json={"access_token": token["access_token"]},
        auth=("sandbox-github-client", "wrong"),
        verify=sandbox.ca_path,
    )
    assert again.status_code == 401


def test_spotify_has_no_revoke(sandbox):
    response = requests.post(
        sandbox.oauth_url("spotify", "revoke"),
        data={"token": "x"},
        verify=sandbox.ca_path,
    )
    assert response.status_code == 404


def test_github_error_with_http_200(sandbox):
    code, verifier, _ = authorize(sandbox, "github")
    response = exchange(sandbox, "github", "not-a-code", verifier)
    assert response.status_code == 200
    body = response.json()
    assert body["error"] == "bad_verification_code"
    assert "access_token" not in body
    form = requests.post(
        sandbox.oauth_url("github", "token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client_pair("github")[0],
            "client_secret": "wrong",
        },
        verify=sandbox.ca_path,
    )
    assert form.status_code == 200
    assert parse_qs(form.text)["error"] == ["incorrect_client_credentials"]


def test_requests_oauthlib_client_flow(sandbox):
    """requests-oauthlib, the connectors' client, accepts every platform's responses."""
    for name in PLATFORM_NAMES:
        client_id, secret = client_pair(name)
        platform = platforms.get(name)
        session = OAuth2Session(
            client_id,
            redirect_uri=REDIRECT_URI,
            scope=platform.scope_names(),
            pkce="S256",
        )
        url, state = session.authorization_url(
            sandbox.oauth_url(name, "authorize"),
            sandbox_user="1",
            **platform.extra_authorize_params,
        )
        response = requests.get(url, verify=sandbox.ca_path, allow_redirects=False)
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
        token = session.fetch_token(
            sandbox.oauth_url(name, "token"),
            code=code,
            client_secret=secret,
            include_client_id=True,
            verify=sandbox.ca_path,
        )
        assert token["access_token"], name
        if platform.issues_refresh_tokens:
            renewed = session.refresh_token(
                sandbox.oauth_url(name, "token"),
                auth=(client_id, secret),
                verify=sandbox.ca_path,
            )
            assert renewed["refresh_token"] != token["refresh_token"], name


# API shapes -------------------------------------------------------------------


def test_spotify_shapes_match_real(sandbox):
    token = connect(sandbox, "spotify", 1)["access_token"]
    real = json.loads((REAL / "spotify_web_api/a/recently_played.json").read_text())
    mine = api_get(sandbox, "spotify", "/v1/me/player/recently-played", token, limit=50)
    body = mine.json()
    assert set(body) == set(real)
    assert set(body["items"][0]) == set(real["items"][0])
    assert set(body["items"][0]["track"]) == set(real["items"][0]["track"])
    real_album = real["items"][0]["track"]["album"]
    assert set(body["items"][0]["track"]["album"]) == set(real_album)

    real_top = json.loads(
        (REAL / "spotify_web_api/a/top_artists_short_term.json").read_text()
    )
    top = api_get(
        sandbox, "spotify", "/v1/me/top/artists", token, time_range="short_term"
    ).json()
    assert set(top) == set(real_top)
    assert set(top["items"][0]) == set(real_top["items"][0])


def test_github_shapes_match_real(sandbox):
    token = connect(sandbox, "github", 1)["access_token"]
    real_events = json.loads(
        (REAL / "github_rest_api/a/github_events.json").read_text()
    )
    events = api_get(sandbox, "github", "/users/sandbox-dev-1/events", token).json()
    assert set(events[0]) == set(real_events[0])
    push = next(event for event in events if event["type"] == "PushEvent")
    assert set(push["payload"]) == set(real_events[0]["payload"])
    real_repos = json.loads((REAL / "github_rest_api/b/user_repos.json").read_text())
    repos = api_get(sandbox, "github", "/user/repos", token).json()
    assert set(real_repos[0]) <= set(repos[0])
    languages = api_get(
        sandbox, "github", f"/repos/{repos[0]['full_name']}/languages", token
    )
    assert languages.status_code == 200
    assert all(isinstance(size, int) for size in languages.json().values())


def test_discord_shapes(sandbox):
    token = connect(sandbox, "discord", 0, scope="identify guilds connections")
    user = api_get(sandbox, "discord", "/v10/users/@me", token["access_token"]).json()
    assert {"id", "username", "discriminator", "global_name", "avatar"} <= set(user)
    guilds = api_get(
        sandbox, "discord", "/v10/users/@me/guilds", token["access_token"]
    ).json()
    assert len(guilds) == 12
    assert sum(guild["owner"] for guild in guilds) == 2
    assert {"id", "name", "icon", "banner", "owner", "permissions", "features"} == set(
        guilds[0]
    )
    assert isinstance(guilds[0]["permissions"], str)
    connections = api_get(
        sandbox, "discord", "/v10/users/@me/connections", token["access_token"]
    ).json()
    assert len(connections) == 3
    assert {"type", "id", "name", "visibility", "verified"} <= set(connections[0])


def test_linkedin_userinfo_shape(sandbox):
    token = connect(sandbox, "linkedin", 2)["access_token"]
    info = api_get(sandbox, "linkedin", "/v2/userinfo", token).json()
    assert set(info) == {"sub", "name", "given_name", "family_name", "locale"}
    assert set(info["locale"]) == {"country", "language"}
    with_picture = connect(sandbox, "linkedin", 0)["access_token"]
    assert (
        "picture" in api_get(sandbox, "linkedin", "/v2/userinfo", with_picture).json()
    )


def test_youtube_shapes(sandbox):
    token = connect(sandbox, "youtube", 0)["access_token"]
    subs = api_get(
        sandbox,
        "youtube",
        "/youtube/v3/subscriptions",
        token,
        part="snippet",
        mine="true",
        maxResults=50,
    ).json()
    assert subs["kind"] == "youtube#subscriptionListResponse"
    assert subs["pageInfo"]["totalResults"] == 14
    assert "nextPageToken" not in subs
    channel_ids = [item["snippet"]["resourceId"]["channelId"] for item in subs["items"]]
    topics = api_get(
        sandbox,
        "youtube",
        "/youtube/v3/channels",
        token,
        part="topicDetails",
        id=",".join(channel_ids),
    ).json()
    assert [item["id"] for item in topics["items"]] == channel_ids
    assert all(
        url.startswith("https://en.wikipedia.org/wiki/")
        for item in topics["items"]
        for url in item["topicDetails"]["topicCategories"]
    )
    liked = api_get(
        sandbox,
        "youtube",
        "/youtube/v3/videos",
        token,
        part="snippet,topicDetails",
        myRating="like",
        maxResults=50,
    ).json()
    assert liked["pageInfo"]["totalResults"] == 20
    assert {"kind", "etag", "id", "snippet", "topicDetails"} == set(liked["items"][0])
    missing_part = api_get(sandbox, "youtube", "/youtube/v3/videos", token)
    assert missing_part.status_code == 400
    assert missing_part.json()["error"]["errors"][0]["reason"] == "required"


def test_reddit_shapes(sandbox):
    token = connect(sandbox, "reddit", 0)["access_token"]
    me = api_get(sandbox, "reddit", "/api/v1/me", token).json()
    assert me["name"] == "sandbox_redditor_0"
    listing = api_get(sandbox, "reddit", "/subreddits/mine/subscriber", token).json()
    assert listing["kind"] == "Listing"
    assert {"after", "dist", "modhash", "geo_filter", "children", "before"} == set(
        listing["data"]
    )
    assert listing["data"]["children"][0]["kind"] == "t5"
    posts = api_get(sandbox, "reddit", "/user/sandbox_redditor_0/submitted", token)
    assert posts.json()["data"]["dist"] == 12
    assert posts.json()["data"]["children"][0]["kind"] == "t3"


def test_reddit_requires_user_agent(sandbox):
    token = connect(sandbox, "reddit")["access_token"]
    generic = api_get(
        sandbox,
        "reddit",
        "/api/v1/me",
        token,
        headers={"User-Agent": "python-requests/2"},
    )
    assert generic.status_code == 429
    assert "User-Agent" in generic.json()["message"]


def test_twitch_shapes_and_client_id(sandbox):
    token = connect(sandbox, "twitch", 0)["access_token"]
    users = api_get(sandbox, "twitch", "/helix/users", token).json()
    user = users["data"][0]
    assert user["login"] == "sandbox_viewer_0"
    followed = api_get(
        sandbox, "twitch", "/helix/channels/followed", token, user_id=user["id"]
    ).json()
    assert followed["total"] == 9
    assert set(followed["data"][0]) == {
        "broadcaster_id",
        "broadcaster_login",
        "broadcaster_name",
        "followed_at",
    }
    assert followed["pagination"] == {}
    no_client = requests.get(
        sandbox.api_url("twitch", "/helix/users"),
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ca_path,
    )
    assert no_client.status_code == 401
    assert no_client.json()["message"] == "Client ID is missing"
    other = api_get(
        sandbox, "twitch", "/helix/users", token, headers={"Client-Id": "someone-else"}
    )
    assert other.json()["message"] == "Client ID and OAuth token do not match"


def test_twitch_validate(sandbox):
    token = connect(sandbox, "twitch", 1)["access_token"]
    response = requests.get(
        sandbox.oauth_url("twitch", "validate"),
        headers={"Authorization": f"OAuth {token}"},
        verify=sandbox.ca_path,
    )
    body = response.json()
    assert body["login"] == "sandbox_viewer_1"
    assert body["scopes"] == ["user:read:follows"]
    assert body["client_id"] == client_pair("twitch")[0]
    assert 0 < body["expires_in"] <= 3600
    bad = requests.get(
        sandbox.oauth_url("twitch", "validate"),
        headers={"Authorization": "OAuth nope"},
        verify=sandbox.ca_path,
    )
    assert bad.status_code == 401


def test_missing_scope_forbidden(sandbox):
    token = connect(sandbox, "discord")["access_token"]
    response = api_get(sandbox, "discord", "/v10/users/@me/connections", token)
    assert response.status_code == 403


def test_unknown_token_unauthorized(sandbox):
    response = api_get(sandbox, "spotify", "/v1/me", "made-up-token")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"status": 401, "message": "Invalid access token"}
    }
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_audio_features_restricted(sandbox):
    token = connect(sandbox, "spotify")["access_token"]
    response = api_get(sandbox, "spotify", "/v1/audio-features", token, ids="abc")
    assert response.status_code == 403
    assert response.json()["error"]["status"] == 403


def test_artist_lookup(sandbox):
    token = connect(sandbox, "spotify", 1)["access_token"]
    top = api_get(sandbox, "spotify", "/v1/me/top/artists", token, limit=1).json()
    artist_id = top["items"][0]["id"]
    artist = api_get(sandbox, "spotify", f"/v1/artists/{artist_id}", token).json()
    assert artist == top["items"][0]
    missing = api_get(sandbox, "spotify", "/v1/artists/" + "0" * 22, token)
    assert missing.status_code == 404


# Pagination -------------------------------------------------------------------


def follow_links(sb, platform: str, url: str, token: str) -> list[requests.Response]:
    pages = []
    while url:
        response = requests.get(
            url, headers={"Authorization": f"Bearer {token}"}, verify=sb.ca_path
        )
        assert response.status_code == 200, response.text
        pages.append(response)
        url = response.links.get("next", {}).get("url")
    return pages


def test_github_repos_all_pages(sandbox):
    token = connect(sandbox, "github", 1)["access_token"]
    url = sandbox.api_url("github", "/user/repos?type=owner&per_page=100")
    pages = follow_links(sandbox, "github", url, token)
    repos = [repo for page in pages for repo in page.json()]
    assert len(pages) == 2
    assert len(repos) == 135
    assert len({repo["id"] for repo in repos}) == 135
    assert sum(repo["fork"] for repo in repos) == 27
    assert 'rel="last"' in pages[0].headers["Link"]
    everything = follow_links(
        sandbox, "github", sandbox.api_url("github", "/user/repos?per_page=30"), token
    )
    assert sum(len(page.json()) for page in everything) == 139


def test_github_events_capped_at_300(sandbox):
    token = connect(sandbox, "github", 1)["access_token"]
    url = sandbox.api_url("github", "/users/sandbox-dev-1/events/public?per_page=100")
    pages = follow_links(sandbox, "github", url, token)
    events = [event for page in pages for event in page.json()]
    assert len(pages) == 3
    assert len(events) == 300
    times = [event["created_at"] for event in events]
    assert times == sorted(times, reverse=True)
    beyond = api_get(
        sandbox, "github", "/users/sandbox-dev-1/events", token, per_page=100, page=4
    )
    assert beyond.status_code == 422


def test_spotify_offsets_and_cursors(sandbox):
    token = connect(sandbox, "spotify", 1)["access_token"]
    url = sandbox.api_url("spotify", "/v1/me/tracks?limit=50")
    saved = []
    requests_made = 0
    while url:
        body = api_get_url(sandbox, url, token).json()
        saved += body["items"]
        requests_made += 1
        url = body["next"]
    assert requests_made == 6
    assert len({item["track"]["id"] for item in saved}) == 260

    url = sandbox.api_url("spotify", "/v1/me/following?type=artist&limit=50")
    followed = []
    while url:
        body = api_get_url(sandbox, url, token).json()["artists"]
        followed += body["items"]
        url = body["next"]
    assert len({artist["id"] for artist in followed}) == 55

    recent = api_get(
        sandbox, "spotify", "/v1/me/player/recently-played", token, limit=50
    ).json()
    assert len(recent["items"]) == 50
    assert recent["next"] is None
    newest = recent["cursors"]["after"]
    newer = api_get(
        sandbox, "spotify", "/v1/me/player/recently-played", token, after=newest
    ).json()
    assert newer["items"] == []
    older = api_get(
        sandbox,
        "spotify",
        "/v1/me/player/recently-played",
        token,
        limit=20,
        before=recent["cursors"]["before"],
    ).json()
    assert older["items"] == []


def test_spotify_after_cursor_reaches_all(sandbox):
    token = connect(sandbox, "spotify", 1)["access_token"]
    path = "/v1/me/player/recently-played"
    plays = api_get(sandbox, "spotify", path, token, limit=50).json()["items"]
    # The cursor of the 41st newest play: 40 plays are newer.
    cursor = plays[40]["played_at"]
    moment = dt.datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    after = int(moment.timestamp() * 1000 + 0.5)
    url = sandbox.api_url("spotify", f"{path}?after={after}&limit=15")
    seen = []
    pages = 0
    while url:
        body = api_get_url(sandbox, url, token).json()
        pages += 1
        seen += [item["played_at"] for item in body["items"]]
        url = body["next"]
    assert pages == 4
    assert sorted(seen) == sorted(item["played_at"] for item in plays[:40])


def api_get_url(sb, url: str, token: str) -> requests.Response:
    return requests.get(
        url, headers={"Authorization": f"Bearer {token}"}, verify=sb.ca_path
    )


def test_discord_guilds_after_cursor(sandbox):
    token = connect(sandbox, "discord", 1)["access_token"]
    guilds = []
    after = None
    calls = 0
    while True:
        params = {"limit": 200, **({"after": after} if after else {})}
        page = api_get(sandbox, "discord", "/v10/users/@me/guilds", token, **params)
        calls += 1
        batch = page.json()
        guilds += batch
        if len(batch) < 200:
            break
        after = batch[-1]["id"]
    assert calls == 3
    assert len({guild["id"] for guild in guilds}) == 450
    too_many = api_get(sandbox, "discord", "/v10/users/@me/guilds", token, limit=201)
    assert too_many.status_code == 400


def test_reddit_listing_capped_at_1000(sandbox):
    token = connect(sandbox, "reddit", 1)["access_token"]
    after = None
    names = []
    pages = 0
    while True:
        params = {"limit": 100, **({"after": after} if after else {})}
        data = api_get(
            sandbox, "reddit", "/user/sandbox_redditor_1/comments", token, **params
        ).json()["data"]
        pages += 1
        names += [child["data"]["name"] for child in data["children"]]
        after = data["after"]
        if after is None:
            break
    assert pages == 10
    assert len(set(names)) == 1000


def test_youtube_page_tokens(sandbox):
    token = connect(sandbox, "youtube", 1)["access_token"]
    ids = []
    page_token = None
    pages = 0
    while True:
        params = {"part": "snippet", "mine": "true", "maxResults": 50}
        if page_token:
            params["pageToken"] = page_token
        body = api_get(sandbox, "youtube", "/youtube/v3/subscriptions", token, **params)
        pages += 1
        ids += [item["id"] for item in body.json()["items"]]
        page_token = body.json().get("nextPageToken")
        if not page_token:
            break
    assert pages == 3
    assert len(set(ids)) == 120
    bad = api_get(
        sandbox,
        "youtube",
        "/youtube/v3/subscriptions",
        token,
        part="snippet",
        mine="true",
        pageToken="garbage!",
    )
    assert bad.status_code == 400


def test_twitch_followed_cursor(sandbox):
    token = connect(sandbox, "twitch", 1)["access_token"]
    user_id = api_get(sandbox, "twitch", "/helix/users", token).json()["data"][0]["id"]
    cursor = None
    logins = []
    pages = 0
    while True:
        params = {
            "user_id": user_id,
            "first": 100,
            **({"after": cursor} if cursor else {}),
        }
        body = api_get(sandbox, "twitch", "/helix/channels/followed", token, **params)
        pages += 1
        logins += [item["broadcaster_login"] for item in body.json()["data"]]
        cursor = body.json()["pagination"].get("cursor")
        if not cursor:
            break
    assert pages == 3
    assert len(set(logins)) == 230


def test_sparse_user_is_empty(sandbox):
    token = connect(sandbox, "spotify", 2)["access_token"]
    saved = api_get(sandbox, "spotify", "/v1/me/tracks", token).json()
    assert saved["total"] == 0
    assert saved["items"] == []
    github = connect(sandbox, "github", 2)["access_token"]
    events = api_get(sandbox, "github", "/users/sandbox-dev-2/events", github)
    assert events.status_code == 200
    assert events.json() == []


# Determinism ------------------------------------------------------------------


def snapshot(handle) -> list[str]:
    """Fetch a fixed set of responses, with the sandbox's own URL masked."""
    bodies = []
    calls = [
        ("spotify", "/v1/me/player/recently-played", {"limit": 50}),
        ("spotify", "/v1/me/top/tracks", {"time_range": "long_term", "limit": 50}),
        ("github", "/user/repos", {"per_page": 100}),
        ("github", "/users/sandbox-dev-0/events", {}),
        ("discord", "/v10/users/@me/guilds", {}),
        ("reddit", "/user/sandbox_redditor_0/comments", {"limit": 100}),
        ("youtube", "/youtube/v3/videos", {"part": "snippet", "myRating": "like"}),
        ("twitch", "/helix/users", {}),
        ("linkedin", "/v2/userinfo", {}),
    ]
    tokens = {}
    for platform, path, params in calls:
        if platform not in tokens:
            tokens[platform] = connect(handle, platform, 0)["access_token"]
        response = api_get(handle, platform, path, tokens[platform], **params)
        assert response.status_code == 200, (platform, path, response.text)
        bodies.append(response.text.replace(handle.url, "BASE"))
    return bodies


def test_same_seed_same_data():
    with (
        serve(seed=11, auto_consent=True) as first,
        serve(seed=11, auto_consent=True) as second,
    ):
        assert snapshot(first) == snapshot(second)
    with (
        serve(seed=12, auto_consent=True) as third,
        serve(seed=11, auto_consent=True) as fourth,
    ):
        different = [
            a != b for a, b in zip(snapshot(third), snapshot(fourth), strict=True)
        ]
        assert sum(different) >= 7


def test_data_independent_of_hash_seed(tmp_path):
    script = (
        "from twinme_lab.sandbox.apis.github import GitHubApi\n"
        "import json\n"
        "user = GitHubApi(3, 'X').build_user(1)\n"
        "print(json.dumps([r['full_name'] for r in user['repos']][:20]))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1


# ETags ------------------------------------------------------------------------


def test_github_etag_not_modified(sandbox):
    sandbox.set_rate_limit("github", 5000, 3600)
    token = connect(sandbox, "github", 0)["access_token"]
    sandbox.reset_stats()
    first = api_get(sandbox, "github", "/user/repos", token)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    remaining = int(first.headers["X-RateLimit-Remaining"])
    second = api_get(
        sandbox, "github", "/user/repos", token, headers={"If-None-Match": etag}
    )
    assert second.status_code == 304
    assert second.content == b""
    assert int(second.headers["X-RateLimit-Remaining"]) == remaining
    changed = api_get(
        sandbox, "github", "/user/repos", token, headers={"If-None-Match": 'W/"old"'}
    )
    assert changed.status_code == 200
    stats = sandbox.stats()["platforms"]["github"]["endpoints"]["repos"]
    assert stats["requests"] == 3
    assert stats["not_modified"] == 1


# Faults -----------------------------------------------------------------------


def test_fault_rate_limit_retry_after(sandbox):
    token = connect(sandbox, "spotify")["access_token"]
    sandbox.set_fault("spotify", "rate_limit", "top_artists", count=2, retry_after=3)
    statuses = []
    for _ in range(3):
        response = api_get(sandbox, "spotify", "/v1/me/top/artists", token)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "3"
    assert statuses == [429, 429, 200]
    assert api_get(sandbox, "spotify", "/v1/me", token).status_code == 200


def test_fault_retry_after_http_date(sandbox):
    token = connect(sandbox, "github")["access_token"]
    sandbox.set_fault(
        "github", "rate_limit", "/user", count=1, retry_after=120,
        retry_after_format="http-date",
    )  # fmt: skip
    response = api_get(sandbox, "github", "/user", token)
    assert response.status_code == 429
    when = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
    delta = when.timestamp() - time.time()
    assert 100 < delta <= 121


def test_fault_secondary_rate_limit(sandbox):
    token = connect(sandbox, "github")["access_token"]
    sandbox.set_fault("github", "rate_limit", "events", count=1, status=403)
    response = api_get(sandbox, "github", "/users/sandbox-dev-0/events", token)
    assert response.status_code == 403
    assert "secondary rate limit" in response.json()["message"]
    assert response.headers["Retry-After"] == "1"
    with pytest.raises(ValueError, match="429 or 403"):
        sandbox.set_fault("github", "rate_limit", status=500)


def test_fault_server_error_burst(sandbox):
    token = connect(sandbox, "twitch")["access_token"]
    sandbox.set_fault("twitch", "server_error", "user", count=3, status=502)
    statuses = [
        api_get(sandbox, "twitch", "/helix/users", token).status_code for _ in range(4)
    ]
    assert statuses == [502, 502, 502, 200]


def test_fault_after_lets_first_through(sandbox):
    token = connect(sandbox, "github", 1)["access_token"]
    sandbox.set_fault("github", "server_error", "repos", after=1, count=1)
    statuses = [
        api_get(sandbox, "github", "/user/repos", token, page=page).status_code
        for page in (1, 2, 2)
    ]
    assert statuses == [200, 503, 200]


def test_fault_slow(sandbox):
    token = connect(sandbox, "linkedin")["access_token"]
    sandbox.set_fault("linkedin", "slow", "userinfo", count=1, delay=0.4)
    started = time.monotonic()
    response = api_get(sandbox, "linkedin", "/v2/userinfo", token)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(requests.exceptions.Timeout):
        sandbox.set_fault("linkedin", "slow", "userinfo", count=1, delay=1.0)
        requests.get(
            sandbox.api_url("linkedin", "/v2/userinfo"),
            headers={"Authorization": f"Bearer {token}"},
            verify=sandbox.ca_path,
            timeout=0.3,
        )


def test_fault_expire_token_mid_pagination(sandbox):
    token = connect(sandbox, "spotify", 1)
    sandbox.set_fault("spotify", "expire_token", "saved_tracks", after=2)
    url = sandbox.api_url("spotify", "/v1/me/tracks?limit=50")
    items = []
    access = token["access_token"]
    refresh_token = token["refresh_token"]
    expired_once = 0
    while url:
        response = api_get_url(sandbox, url, access)
        if response.status_code == 401:
            assert response.json()["error"]["message"] == "The access token expired"
            expired_once += 1
            renewed = refresh(sandbox, "spotify", refresh_token).json()
            access, refresh_token = renewed["access_token"], renewed["refresh_token"]
            continue
        body = response.json()
        items += body["items"]
        url = body["next"]
    assert expired_once == 1
    assert len(items) == 260
    assert len({item["track"]["id"] for item in items}) == 260
    old = api_get(sandbox, "spotify", "/v1/me", token["access_token"])
    assert old.status_code == 401


def test_fault_revoked_refresh_token(sandbox):
    token = connect(sandbox, "reddit")
    sandbox.set_fault("reddit", "revoke_refresh_token", "token", count=1)
    response = refresh(sandbox, "reddit", token["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # The token stays revoked after the fault has fired.
    assert refresh(sandbox, "reddit", token["refresh_token"]).status_code == 400


def test_fault_truncated_json(sandbox):
    token = connect(sandbox, "youtube")["access_token"]
    sandbox.set_fault("youtube", "truncate", "subscriptions", count=1)
    response = api_get(
        sandbox, "youtube", "/youtube/v3/subscriptions", token, part="id", mine="true"
    )
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(ValueError):
        response.json()
    whole = api_get(
        sandbox, "youtube", "/youtube/v3/subscriptions", token, part="id", mine="true"
    )
    assert whole.json()["kind"] == "youtube#subscriptionListResponse"
    assert len(response.content) == len(whole.content) // 2


def test_truncate_skips_not_modified(sandbox):
    token = connect(sandbox, "github")["access_token"]
    etag = api_get(sandbox, "github", "/user", token).headers["ETag"]
    sandbox.set_fault("github", "truncate", "user", count=1)
    cached = api_get(sandbox, "github", "/user", token, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    cut = api_get(sandbox, "github", "/user", token)
    with pytest.raises(ValueError):
        cut.json()
    assert api_get(sandbox, "github", "/user", token).json()["login"] == "sandbox-dev-0"


def test_fault_truncates_token_response(sandbox):
    code, verifier, _ = authorize(sandbox, "twitch")
    sandbox.set_fault("twitch", "truncate", "token", count=1)
    response = exchange(sandbox, "twitch", code, verifier)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fault_forbidden(sandbox):
    token = connect(sandbox, "github")["access_token"]
    sandbox.set_fault("github", "forbidden", "/repos/*")
    repos = api_get(sandbox, "github", "/user/repos", token).json()
    restricted = api_get(
        sandbox, "github", f"/repos/{repos[0]['full_name']}/languages", token
    )
    assert restricted.status_code == 403
    assert restricted.json()["message"] == "Forbidden"
    assert api_get(sandbox, "github", "/user", token).status_code == 200


def test_fault_on_token_endpoint(sandbox):
    token = connect(sandbox, "discord")
    sandbox.set_fault("discord", "server_error", "token", count=1)
    failed = refresh(sandbox, "discord", token["refresh_token"])
    assert failed.status_code == 503
    # The 5xx consumed nothing: the same refresh token still works.
    assert refresh(sandbox, "discord", token["refresh_token"]).status_code == 200


def test_fault_options_validated(sandbox):
    with pytest.raises(ValueError, match="Unknown fault kind"):
        sandbox.set_fault("github", "explode")
    with pytest.raises(ValueError, match="Unknown fault option"):
        sandbox.set_fault("github", "slow", seconds=3)
    with pytest.raises(ValueError, match="Unknown platform"):
        sandbox.set_fault("myspace", "slow")


def test_admin_http_api(sandbox):
    admin = f"{sandbox.url}/_sandbox"
    token = connect(sandbox, "twitch")["access_token"]
    created = requests.post(
        f"{admin}/faults",
        json={
            "platform": "twitch",
            "kind": "forbidden",
            "endpoint": "user",
            "count": 1,
        },
        verify=sandbox.ca_path,
    )
    assert created.status_code == 201
    listed = requests.get(f"{admin}/faults", verify=sandbox.ca_path).json()["faults"]
    assert [fault["kind"] for fault in listed] == ["forbidden"]
    requests.delete(f"{admin}/stats", verify=sandbox.ca_path)
    assert api_get(sandbox, "twitch", "/helix/users", token).status_code == 403
    assert api_get(sandbox, "twitch", "/helix/users", token).status_code == 200
    stats = requests.get(f"{admin}/stats", verify=sandbox.ca_path).json()
    entry = stats["platforms"]["twitch"]["endpoints"]["user"]
    assert entry["requests"] == 2
    assert entry["statuses"] == {"403": 1, "200": 1}
    assert entry["faults"] == {"forbidden": 1}
    bad = requests.post(
        f"{admin}/faults",
        json={"platform": "twitch", "kind": "nope"},
        verify=sandbox.ca_path,
    )
    assert bad.status_code == 400
    assert "Unknown fault kind" in bad.json()["error"]
    cleared = requests.delete(f"{admin}/faults", verify=sandbox.ca_path).json()
    assert cleared == {"removed": 1}


# Rate limits ------------------------------------------------------------------


def test_rate_limit_per_app_reddit(sandbox):
    sandbox.set_rate_limit("reddit", 3, 60)
    first_user = connect(sandbox, "reddit", 0)["access_token"]
    second_user = connect(sandbox, "reddit", 1)["access_token"]
    statuses = [
        api_get(sandbox, "reddit", "/api/v1/me", token).status_code
        for token in (first_user, second_user, first_user)
    ]
    assert statuses == [200, 200, 200]
    limited = api_get(sandbox, "reddit", "/api/v1/me", second_user)
    assert limited.status_code == 429
    assert limited.headers["X-Ratelimit-Remaining"] == "0.0"
    assert limited.headers["X-Ratelimit-Used"] == "3"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert 0 <= int(limited.headers["X-Ratelimit-Reset"]) <= 60
    assert sandbox.stats()["platforms"]["reddit"]["rate_limited"] >= 1


def test_rate_limit_per_token_github(sandbox):
    sandbox.set_rate_limit("github", 2, 60)
    first_user = connect(sandbox, "github", 0)["access_token"]
    second_user = connect(sandbox, "github", 1)["access_token"]
    for _ in range(2):
        assert api_get(sandbox, "github", "/user", first_user).status_code == 200
    limited = api_get(sandbox, "github", "/user", first_user)
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Limit"] == "2"
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert api_get(sandbox, "github", "/user", second_user).status_code == 200


def test_rate_limit_window_resets(sandbox):
    sandbox.set_rate_limit("discord", 2, 0.5)
    token = connect(sandbox, "discord")["access_token"]
    statuses = [
        api_get(sandbox, "discord", "/v10/users/@me", token).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = api_get(sandbox, "discord", "/v10/users/@me", token)
    assert limited.json()["message"] == "You are being rate limited."
    assert float(limited.headers["X-RateLimit-Reset-After"]) <= 0.5
    assert limited.headers["X-RateLimit-Bucket"]
    time.sleep(0.6)
    assert api_get(sandbox, "discord", "/v10/users/@me", token).status_code == 200


def test_default_limits_from_platform_modules():
    with serve(auto_consent=True) as handle:
        token = connect(handle, "reddit")["access_token"]
        response = api_get(handle, "reddit", "/api/v1/me", token)
        assert response.headers["X-Ratelimit-Remaining"] == "99.0"
        token = connect(handle, "twitch")["access_token"]
        response = api_get(handle, "twitch", "/helix/users", token)
        assert response.headers["Ratelimit-Limit"] == "800"


# CLI --------------------------------------------------------------------------


def test_cli_serves_until_interrupted(tmp_path):
    process = subprocess.Popen(
        [
            *CLI,
            "sandbox",
            "--port",
            "0",
            "--auto-consent",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not any(line.startswith("Press Ctrl-C") for line in lines):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line.strip())
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        url = exports["TWINME_SANDBOX_URL"]
        assert url.startswith("https://127.0.0.1:")
        assert exports["TWINME_SANDBOX_CA"] == str(tmp_path / "state" / "ca.pem")
        assert exports["REQUESTS_CA_BUNDLE"] == exports["TWINME_SANDBOX_CA"]
        health = requests.get(
            f"{url}/_sandbox/health", verify=exports["TWINME_SANDBOX_CA"]
        )
        assert health.json() == {"ok": True}
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    assert code == 0
    assert "Sandbox stopped." in process.stderr.read()


def test_cli_rejects_busy_port(sandbox):
    result = subprocess.run(
        [*CLI, "sandbox", "--port", str(sandbox.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{sandbox.port}" in result.stderr


class _CallbackRecorder(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self):
        type(self).paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


def test_deliver_callback_requests_redirect():
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _CallbackRecorder)
    _CallbackRecorder.paths = []
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    redirect = f"http://127.0.0.1:{recorder.server_address[1]}/oauth/callback"
    try:
        with serve(auto_consent=True, deliver_callback=True) as handle:
            verifier, challenge = pkce_pair()
            response = requests.get(
                handle.oauth_url("github", "authorize"),
                params={
                    "response_type": "code",
                    "client_id": client_pair("github")[0],
                    "redirect_uri": redirect,
                    "scope": "read:user",
                    "state": "delivered",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
                verify=handle.ca_path,
                allow_redirects=False,
            )
            assert response.status_code == 200
            assert "Consent given" in response.text
            deadline = time.monotonic() + 10
            while not _CallbackRecorder.paths and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(_CallbackRecorder.paths) == 1
            query = parse_qs(urlsplit(_CallbackRecorder.paths[0]).query)
            assert query["state"] == ["delivered"]
            token = exchange(
                handle, "github", query["code"][0], verifier, redirect_uri=redirect
            ).json()
            assert api_get(handle, "github", "/user", token["access_token"]).ok
    finally:
        recorder.shutdown()
        recorder.server_close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl program")
def test_cli_connect_with_curl_browser(tmp_path):
    """Scripted flow: sandbox CLI with --auto-consent, BROWSER=curl without -L."""
    env = dict(os.environ)
    env["TWINME_CONFIG_DIR"] = str(tmp_path / "config")
    env["TWINME_WORKSPACE"] = str(tmp_path / "ws")
    for name in ("TWINME_KEY", "TWINME_KEY_FILE", "REQUESTS_CA_BUNDLE"):
        env.pop(name, None)
    for command in (["init"], ["participants", "add", "P1"]):
        subprocess.run([*CLI, *command], env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        [*CLI, "sandbox", "--port", "0", "--auto-consent"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = []
        while not any(line.startswith("Press Ctrl-C") for line in lines):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line.strip())
        for line in lines:
            if line.startswith("export TWINME_SANDBOX"):
                name, value = line.removeprefix("export ").split("=", 1)
                env[name] = value
        env["BROWSER"] = "curl -sk -o /dev/null %s &"
        connected = subprocess.run(
            [*CLI, "connect", "github", "--participant", "P1", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert connected.returncode == 0, connected.stderr
        assert json.loads(connected.stdout)["status"] == "connected"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


# Growing data -----------------------------------------------------------------


def test_added_items_come_first():
    with serve(seed=7, auto_consent=True, rate_limits=False) as handle:
        token = connect(handle, "github", 0)["access_token"]
        before = api_get(handle, "github", "/users/sandbox-dev-0/events", token)
        assert handle.add_items("github", 0, "events", 2) == 47
        after = api_get(
            handle,
            "github",
            "/users/sandbox-dev-0/events",
            token,
            headers={"If-None-Match": before.headers["ETag"]},
        )
        assert after.status_code == 200
        assert after.json()[2:] == before.json()[:28]
        assert after.json()[0]["created_at"] > before.json()[0]["created_at"]

        reddit = connect(handle, "reddit", 0)["access_token"]
        path = "/user/sandbox_redditor_0/comments"
        old_first = api_get(handle, "reddit", path, reddit).json()["data"]["children"][
            0
        ]
        assert handle.add_items("reddit", 0, "comments") == 81
        new = api_get(handle, "reddit", path, reddit).json()["data"]["children"]
        assert new[1] == old_first
        assert new[0]["data"]["created_utc"] > old_first["data"]["created_utc"]

        spotify = connect(handle, "spotify", 1)["access_token"]
        assert handle.add_items("spotify", 1, "recently_played", 3) == 50
        recent = api_get(
            handle, "spotify", "/v1/me/player/recently-played", spotify, limit=50
        ).json()
        assert len(recent["items"]) == 50

        with pytest.raises(ValueError, match="cannot add items"):
            handle.add_items("linkedin", 0, "userinfo")


def test_added_items_deterministic():
    totals = []
    firsts = []
    for _ in range(2):
        with serve(seed=7, auto_consent=True, rate_limits=False) as handle:
            totals.append(handle.add_items("twitch", 2, "followed_channels", 4))
            token = connect(handle, "twitch", 2)["access_token"]
            body = api_get(
                handle, "twitch", "/helix/channels/followed", token, user_id="700000002"
            ).json()
            firsts.append(body["data"])
    assert totals == [4, 4]
    assert firsts[0] == firsts[1]
    assert len(firsts[0]) == 4
