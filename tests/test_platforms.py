"""Platform descriptions, URL resolution and the scaffold for new platforms."""

from __future__ import annotations

import importlib.util
import sys
from urllib.parse import urlsplit

import pytest

from twinme_lab import platforms
from twinme_lab.errors import UsageError
from twinme_lab.platforms import config
from twinme_lab.scaffold import scaffold

ALL = list(platforms.PLATFORM_NAMES)


@pytest.fixture(autouse=True)
def clean_platform_env(monkeypatch, tmp_path):
    """Clear platform variables and run from an empty folder (no .env)."""
    import os

    for name in list(os.environ):
        if name.startswith("TWINME_") and name not in ("TWINME_CONFIG_DIR",):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_registry_lists_seven_platforms():
    assert ALL == [
        "spotify",
        "github",
        "discord",
        "linkedin",
        "youtube",
        "reddit",
        "twitch",
    ]
    assert [p.name for p in platforms.all_platforms()] == ALL


@pytest.mark.parametrize("name", ALL)
def test_platform_urls_use_https(name):
    platform = platforms.get(name)
    urls = [platform.authorize_url, platform.token_url, platform.api_base]
    urls += [u for u in (platform.revoke_url, platform.validate_url) if u]
    for url in urls:
        assert urlsplit(url).scheme == "https", url


@pytest.mark.parametrize("name", ALL)
def test_scopes_name_existing_endpoints(name):
    platform = platforms.get(name)
    endpoint_names = {endpoint.name for endpoint in platform.endpoints}
    for scope in platform.scopes:
        assert scope.used_by, scope.name
        assert set(scope.used_by) <= endpoint_names, scope.name


@pytest.mark.parametrize("name", ALL)
def test_declared_choices_are_valid(name):
    platform = platforms.get(name)
    assert platform.rate_limit.counted_per in ("token", "app")
    assert platform.client_auth in ("basic", "body")
    assert platform.revoke_style in ("rfc7009", "github")
    assert platform.identity_path.startswith("/")
    for endpoint in platform.endpoints:
        assert endpoint.pagination in ("none", "cursor", "offset", "link")
        assert endpoint.path.startswith("/")


def test_documented_platform_facts():
    spotify = platforms.get("spotify")
    assert spotify.client_auth == "basic"
    assert spotify.extra_authorize_params["show_dialog"] == "true"
    assert spotify.refresh_token_rotates
    assert spotify.rate_limit.counted_per == "app"
    assert any("five users" in note for note in spotify.doctor_notes)

    github = platforms.get("github")
    assert github.scope_names() == ["read:user"]
    assert github.token_error_with_200
    assert not github.issues_refresh_tokens

    discord = platforms.get("discord")
    assert discord.scope_names() == ["identify", "guilds"]
    assert discord.pkce
    assert discord.issues_refresh_tokens

    linkedin = platforms.get("linkedin")
    assert linkedin.scope_names() == ["openid", "profile"]
    assert not linkedin.issues_refresh_tokens
    assert linkedin.account_id({"sub": "abc"}) == "abc"

    youtube = platforms.get("youtube")
    assert youtube.pkce
    assert youtube.extra_authorize_params == {
        "access_type": "offline",
        "prompt": "select_account consent",
    }
    assert any("7 days" in note for note in youtube.doctor_notes)
    assert youtube.account_id({"items": [{"id": "UC1"}]}) == "UC1"

    reddit = platforms.get("reddit")
    assert reddit.scope_names() == ["identity", "history", "mysubreddits", "read"]
    assert reddit.extra_authorize_params["duration"] == "permanent"
    assert reddit.client_auth == "basic"
    assert reddit.requires_user_agent
    assert (reddit.rate_limit.requests, reddit.rate_limit.per_seconds) == (100, 60)
    assert reddit.rate_limit.counted_per == "app"

    twitch = platforms.get("twitch")
    assert twitch.client_id_header == "Client-Id"
    assert twitch.validate_every_seconds == 3600
    assert twitch.account_id({"data": [{"id": "42"}]}) == "42"


def test_retired_linkedin_scopes_absent():
    names = {scope.name for scope in platforms.get("linkedin").scopes}
    assert "r_liteprofile" not in names
    assert "r_emailaddress" not in names


def test_account_id_missing_raises():
    with pytest.raises(ValueError, match="no account id"):
        platforms.get("twitch").account_id({"data": []})


def test_netflix_points_to_importer():
    with pytest.raises(KeyError) as caught:
        platforms.get("netflix")
    assert "twinme-lab import netflix" in caught.value.args[0]


def test_unknown_platform_lists_choices():
    with pytest.raises(KeyError) as caught:
        platforms.get("myspace")
    assert "spotify" in caught.value.args[0]


def test_missing_client_names_variable_and_redirect():
    with pytest.raises(config.ConfigError) as caught:
        config.resolve(platforms.get("spotify"))
    message = str(caught.value)
    assert "TWINME_SPOTIFY_CLIENT_ID" in message
    assert "TWINME_SPOTIFY_CLIENT_SECRET" in message
    assert "http://127.0.0.1:8086/oauth/callback" in message


def test_client_from_environment_and_overrides(monkeypatch):
    monkeypatch.setenv("TWINME_GITHUB_CLIENT_ID", "id-1")
    monkeypatch.setenv("TWINME_GITHUB_CLIENT_SECRET", "secret-1")
    monkeypatch.setenv("TWINME_GITHUB_API_BASE", "https://ghe.example.edu/api/v3")
    monkeypatch.setenv("TWINME_GITHUB_REDIRECT_URI", "https://hub.example.edu/cb")
    resolved = config.resolve(platforms.get("github"))
    assert resolved.client_id == "id-1"
    assert resolved.api_base == "https://ghe.example.edu/api/v3"
    assert resolved.token_url == "https://github.com/login/oauth/access_token"
    assert resolved.redirect_uri == "https://hub.example.edu/cb"
    assert not resolved.sandbox
    assert "secret-1" not in repr(resolved)


def test_client_from_dotenv_file(tmp_path):
    (tmp_path / ".env").write_text(
        "TWINME_DISCORD_CLIENT_ID=from-file\nTWINME_DISCORD_CLIENT_SECRET=s\n"
    )
    resolved = config.resolve(platforms.get("discord"))
    assert resolved.client_id == "from-file"


def test_sandbox_replaces_urls_and_client(monkeypatch, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("placeholder")
    monkeypatch.setenv("TWINME_SANDBOX_URL", "https://127.0.0.1:8443/")
    monkeypatch.setenv("TWINME_SANDBOX_CA", str(ca))
    monkeypatch.setenv("TWINME_SPOTIFY_CLIENT_ID", "real-id")
    monkeypatch.setenv("TWINME_SPOTIFY_CLIENT_SECRET", "real-secret")
    monkeypatch.setenv("TWINME_SPOTIFY_TOKEN_URL", "https://elsewhere.example/t")
    resolved = config.resolve(platforms.get("spotify"))
    assert resolved.sandbox
    assert resolved.token_url == "https://127.0.0.1:8443/spotify/oauth/token"
    assert resolved.authorize_url == "https://127.0.0.1:8443/spotify/oauth/authorize"
    assert resolved.api_url("/v1/me") == "https://127.0.0.1:8443/spotify/api/v1/me"
    assert resolved.client_id == "sandbox-spotify-client"
    assert resolved.client_secret == "sandbox-spotify-secret"
    assert resolved.revoke_url is None
    assert resolved.verify == str(ca)
    twitch = config.resolve(platforms.get("twitch"))
    assert twitch.validate_url == "https://127.0.0.1:8443/twitch/oauth/validate"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org:8443",
        "https://localhost:8443",
        "http://127.0.0.1:8443",
        "https://10.0.0.5:8443",
        "https://0.0.0.0:8443",
    ],
)
def test_sandbox_url_must_be_loopback(monkeypatch, url):
    monkeypatch.setenv("TWINME_SANDBOX_URL", url)
    with pytest.raises(config.ConfigError, match="TWINME_SANDBOX_URL"):
        config.resolve(platforms.get("github"))


def test_sandbox_accepts_ipv6_loopback(monkeypatch):
    monkeypatch.setenv("TWINME_SANDBOX_URL", "https://[::1]:8443")
    assert config.resolve(platforms.get("github")).sandbox


def test_http_redirect_must_be_loopback(monkeypatch):
    monkeypatch.setenv("TWINME_REDDIT_REDIRECT_URI", "http://lab.example.edu/cb")
    with pytest.raises(config.ConfigError, match="TWINME_REDDIT_REDIRECT_URI"):
        config.redirect_uri_for(platforms.get("reddit"))


def test_scaffold_writes_loadable_module(tmp_path):
    written = scaffold("mastodon", tmp_path, "Mastodon")
    names = sorted(path.relative_to(tmp_path).as_posix() for path in written)
    assert names == [
        "config/mastodon.env.example",
        "tests/test_platform_mastodon.py",
        "twinme_lab/platforms/mastodon.py",
    ]
    module_path = tmp_path / "twinme_lab" / "platforms" / "mastodon.py"
    spec = importlib.util.spec_from_file_location(
        "twinme_lab.platforms.mastodon", module_path
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        platform = module.PLATFORM
        assert platform.name == "mastodon"
        assert platform.display_name == "Mastodon"
        endpoint_names = {endpoint.name for endpoint in platform.endpoints}
        for scope in platform.scopes:
            assert set(scope.used_by) <= endpoint_names
    finally:
        del sys.modules[spec.name]
    sample = (tmp_path / "config" / "mastodon.env.example").read_text()
    assert "TWINME_MASTODON_CLIENT_ID=" in sample


def test_scaffold_never_overwrites(tmp_path):
    scaffold("mastodon", tmp_path)
    with pytest.raises(UsageError, match="exist"):
        scaffold("mastodon", tmp_path)


def test_scaffold_rejects_bad_name(tmp_path):
    with pytest.raises(UsageError, match="Invalid platform name"):
        scaffold("Bad Name", tmp_path)


def test_cli_connect_netflix_explains(tmp_path):
    import subprocess

    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from twinme_lab.cli import main; sys.exit(main(sys.argv[1:]))",
            "connect",
            "netflix",
            "--participant",
            "P1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "Netflix has no API" in completed.stderr
    assert "twinme-lab import netflix" in completed.stderr
