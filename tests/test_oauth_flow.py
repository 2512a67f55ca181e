"""The OAuth flow against a local provider over HTTPS: every platform, the
attacks that must fail, refresh across processes, forget, and secrecy.

The provider below is built on oauthlib's server classes and replaces the
platforms: per platform it serves ``/<name>/oauth/{authorize,token,revoke,
validate}`` and the identity endpoint under ``/<name>/api``, with the client pair
``sandbox-<name>-client`` / ``sandbox-<name>-secret``, so the code path is the one
``TWINME_SANDBOX_URL`` selects. Refresh tokens are single-use and rotate.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import webbrowser
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from oauthlib.oauth2 import RequestValidator, WebApplicationServer

from twinme_lab import logs, oauth, participants, platforms, rotation
from twinme_lab.errors import UsageError
from twinme_lab.oauth import client, records
from twinme_lab.oauth.callback import CallbackServer
from twinme_lab.vault import TokenDecryptError
from twinme_lab.workspace import open_workspace

TOKEN_COLUMNS = {"access_token", "refresh_token"}
CLI = [
    sys.executable,
    "-c",
    "import sys; from twinme_lab.cli import main; sys.exit(main(sys.argv[1:]))",
]


def write_certificate(folder: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def identity_body(platform: str, account: str) -> dict:
    """Return the identity response a platform sends for ``account``."""
    shapes = {
        "spotify": {"id": account, "display_name": account},
        "github": {"id": account, "login": account},
        "discord": {"id": account, "username": account},
        "linkedin": {"sub": account, "name": account},
        "youtube": {"items": [{"id": account}]},
        "reddit": {"id": account, "name": account},
        "twitch": {"data": [{"id": account, "login": account}]},
    }
    return shapes[platform]


class _Client:
    def __init__(self, client_id: str):
        self.client_id = client_id


class Validator(RequestValidator):
    def __init__(self, provider: Provider, name: str):
        self.provider = provider
        self.name = name
        self.platform = platforms.get(name)
        self.client_id = f"sandbox-{name}-client"
        self.client_secret = f"sandbox-{name}-secret"

    def _credentials(self, request):
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            pair = base64.b64decode(header[6:]).decode()
            return tuple(pair.split(":", 1))
        return request.client_id, getattr(request, "client_secret", None)

    def client_authentication_required(self, request, *args, **kwargs):
        return True

    def authenticate_client(self, request, *args, **kwargs):
        client_id, secret = self._credentials(request)
        if (client_id, secret) != (self.client_id, self.client_secret):
            return False
        request.client = _Client(client_id)
        request.client_id = client_id
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        return False

    def validate_client_id(self, client_id, request, *args, **kwargs):
        return client_id == self.client_id

    def validate_redirect_uri(self, client_id, redirect_uri, request, *a, **k):
        return urlsplit(redirect_uri).hostname == "127.0.0.1"

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        return None

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return self.platform.scope_names()

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        known = {scope.name for scope in self.platform.scopes}
        return set(scopes) <= known

    def validate_response_type(
        self, client_id, response_type, client, request, *args, **kwargs
    ):
        return response_type == "code"

    def is_pkce_required(self, client_id, request):
        return self.platform.pkce

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        self.provider.codes[code["code"]] = {
            "platform": self.name,
            "account": request.account,
            "scopes": list(request.scopes),
            "redirect_uri": request.redirect_uri,
            "challenge": request.code_challenge,
            "method": request.code_challenge_method,
        }

    def validate_grant_type(self, client_id, grant_type, client, request, *a, **k):
        return grant_type in ("authorization_code", "refresh_token")

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        record = self.provider.codes.get(code)
        if record is None or record["platform"] != self.name:
            return False
        request.user = record["account"]
        request.scopes = record["scopes"]
        return True

    def confirm_redirect_uri(
        self, client_id, code, redirect_uri, client, request, *args, **kwargs
    ):
        return self.provider.codes[code]["redirect_uri"] == redirect_uri

    def get_code_challenge(self, code, request):
        return self.provider.codes[code]["challenge"]

    def get_code_challenge_method(self, code, request):
        return self.provider.codes[code]["method"]

    def invalidate_authorization_code(self, client_id, code, request, *a, **k):
        self.provider.codes.pop(code, None)

    def validate_refresh_token(self, refresh_token, client, request, *a, **k):
        record = self.provider.refresh_tokens.get(refresh_token)
        if record is None or record["platform"] != self.name or record["used"]:
            return False
        record["used"] = True
        self.provider.refresh_count += 1
        request.user = record["account"]
        request.scopes = record["scopes"]
        return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        return self.provider.refresh_tokens[refresh_token]["scopes"]

    def rotate_refresh_token(self, request):
        return True

    def save_bearer_token(self, token, request, *args, **kwargs):
        if not self.platform.issues_refresh_tokens:
            token.pop("refresh_token", None)
        lifetime = self.provider.access_lifetime
        self.provider.access_tokens[token["access_token"]] = {
            "platform": self.name,
            "account": request.user,
            "expires": time.time() + lifetime,
        }
        if "refresh_token" in token:
            self.provider.issued_refresh_tokens.append(token["refresh_token"])
            self.provider.refresh_tokens[token["refresh_token"]] = {
                "platform": self.name,
                "account": request.user,
                "scopes": list(request.scopes),
                "used": False,
            }

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        self.provider.revoke(token)


class Provider:
    """The provider's state and its HTTPS server; use as a context manager."""

    def __init__(self, state_dir: Path):
        self.cert_path, self.key_path = write_certificate(state_dir)
        self.account = "account-1"
        self.access_lifetime = 3600
        self.token_failures = 0
        self.deliver_callback = True
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.revoked: list[str] = []
        self.refresh_count = 0
        self.issued_refresh_tokens: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.servers = {
            name: WebApplicationServer(
                Validator(self, name),
                token_expires_in=lambda request: self.access_lifetime,
            )
            for name in platforms.PLATFORM_NAMES
        }

    @property
    def ca_path(self) -> str:
        return str(self.cert_path)

    def revoke(self, token: str) -> None:
        self.revoked.append(token)
        self.access_tokens.pop(token, None)
        self.refresh_tokens.pop(token, None)

    def __enter__(self) -> Provider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                provider.handle(self, "GET")

            def do_POST(self):  # noqa: N802
                provider.handle(self, "POST")

            def do_DELETE(self):  # noqa: N802
                provider.handle(self, "DELETE")

            def log_message(self, format, *args):  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, handler, method: str) -> None:
        parts = urlsplit(handler.path)
        segments = parts.path.split("/", 3)
        name, area = segments[1], segments[2] if len(segments) > 2 else ""
        rest = "/" + (segments[3] if len(segments) > 3 else "")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        headers = dict(handler.headers)
        uri = self.url + handler.path
        with self.lock:
            self.requests.append((method, parts.path))
            status, reply_headers, reply = self.route(
                name, area, rest, method, uri, body, headers, parts.query
            )
        data = reply.encode() if isinstance(reply, str) else reply
        handler.send_response(status)
        for key, value in reply_headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def route(self, name, area, rest, method, uri, body, headers, query):
        server = self.servers.get(name)
        if server is None:
            return 404, {}, "{}"
        if area == "oauth" and rest == "/authorize":
            return self.authorize(server, uri)
        if area == "oauth" and rest == "/token":
            if self.token_failures > 0:
                self.token_failures -= 1
                return 503, {"Content-Type": "application/json"}, "{}"
            reply_headers, reply, status = server.create_token_response(
                uri, "POST", body, headers
            )
            if status != 200 and name == "github":
                status = 200
            return status, reply_headers, reply
        if area == "oauth" and rest == "/revoke":
            if method == "DELETE":
                self.revoke(json.loads(body)["access_token"])
                return 204, {}, ""
            reply_headers, reply, status = server.create_revocation_response(
                uri, "POST", body, headers
            )
            return status, reply_headers, reply
        if area == "oauth" and rest == "/validate":
            token = headers.get("Authorization", "").removeprefix("OAuth ")
            return self.check_token(name, token, rest)
        if area == "api":
            token = headers.get("Authorization", "")
            token = token.split(" ", 1)[1] if " " in token else ""
            return self.check_token(name, token, rest)
        return 404, {}, "{}"

    def check_token(self, name, token, rest):
        record = self.access_tokens.get(token)
        if record is None or record["platform"] != name:
            return 401, {"Content-Type": "application/json"}, '{"error":"invalid"}'
        if record["expires"] < time.time():
            return 401, {"Content-Type": "application/json"}, '{"error":"expired"}'
        body = identity_body(name, record["account"])
        body["path"] = rest
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def authorize(self, server, uri):
        scopes, credentials = server.validate_authorization_request(uri)
        credentials["account"] = self.account
        credentials.pop("request", None)
        reply_headers, _, status = server.create_authorization_response(
            uri, scopes=scopes, credentials=credentials
        )
        location = reply_headers["Location"]
        if not self.deliver_callback:
            return status, {"Location": location}, ""
        # Follow the redirect to the loopback server, as the browser would.
        threading.Thread(target=_get, args=(location,), daemon=True).start()
        return 200, {"Content-Type": "text/html"}, "<p>Consent given.</p>"


def _get(url: str) -> None:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=10).read()
    except OSError:
        pass


def code_from_location(location: str) -> str:
    """Return the code parameter of a redirect Location."""
    return parse_qs(urlsplit(location).query)["code"][0]


def random_account() -> str:
    return "acct-" + secrets.token_hex(4)


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def provider(tmp_path, monkeypatch):
    """The test provider, with every platform pointed at it and its CA trusted."""
    monkeypatch.chdir(tmp_path)
    with Provider(tmp_path / "provider") as running:
        monkeypatch.setenv("TWINME_SANDBOX_URL", running.url)
        monkeypatch.setenv("TWINME_SANDBOX_CA", running.ca_path)
        port = free_port()
        for name in platforms.PLATFORM_NAMES:
            monkeypatch.setenv(
                f"TWINME_{name.upper()}_REDIRECT_URI",
                f"http://127.0.0.1:{port}/oauth/callback",
            )
        yield running


@pytest.fixture
def enrolled(workspace):
    participants.add(workspace, "P1")
    participants.add(workspace, "P2")
    return workspace


def follow_authorize(provider: Provider, url: str) -> str:
    """Request the authorization URL as a browser would; return the redirect."""
    provider.deliver_callback = False
    response = requests.get(url, allow_redirects=False, verify=provider.ca_path)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def paste_reader(provider: Provider):
    def read(prompt: str) -> str:
        url = re.search(r"https://\S+", prompt).group(0)
        return follow_authorize(provider, url)

    return read


def connect_pasting(workspace, provider, platform, participant_id):
    return oauth.connect(
        workspace,
        platform,
        participant_id,
        open_browser=False,
        read_redirect=paste_reader(provider),
    )


def callback_for(provider: Provider, pending) -> str:
    return follow_authorize(provider, pending.url)


# ---------------------------------------------------------------------------
# The flow for every platform
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", platforms.PLATFORM_NAMES)
def test_connect_use_refresh_disconnect(enrolled, provider, name):
    platform = platforms.get(name)
    provider.account = f"{name}-account-7"
    result = connect_pasting(enrolled, provider, name, "P1")

    assert result["status"] == "connected"
    assert result["account_id"] == f"{name}-account-7"
    assert result["origin"] == "sandbox"
    assert result["granted_scopes"] == " ".join(platform.scope_names())
    assert result["has_refresh_token"] == platform.issues_refresh_tokens

    session = oauth.authorized_session(enrolled, "P1", name)
    response = session.get(platform.identity_path)
    assert response.status_code == 200
    assert platform.account_id(response.json()) == f"{name}-account-7"

    if platform.issues_refresh_tokens:
        before = session.access_token
        session.refresh()
        assert session.access_token != before
        assert provider.refresh_count == 1
        assert session.get(platform.identity_path).status_code == 200
    else:
        with pytest.raises(oauth.ReauthRequired, match="reconnect"):
            session.refresh()
        listed = oauth.connections(enrolled, "P1")
        assert listed[0]["status"] == "requires_reauth"
        assert "issues no refresh tokens" in listed[0]["status_reason"]

    stored = oauth.connections(enrolled, "P1")[0]
    outcome = oauth.disconnect(enrolled, name, "P1")
    assert outcome["revoked_at_platform"] == (platform.revoke_url is not None)
    if platform.revoke_url is not None and stored["status"] == "connected":
        assert provider.revoked
    listed = oauth.connections(enrolled, "P1")
    assert listed[0]["status"] == "revoked"
    with enrolled.connect() as con:
        tokens = con.execute(
            "SELECT access_token, refresh_token FROM connections"
        ).fetchone()
    assert tokens == (None, None)
    with pytest.raises(oauth.ReauthRequired, match="disconnected"):
        oauth.authorized_session(enrolled, "P1", name)


def test_authorize_url_forces_account_chooser(enrolled, provider):
    pending = oauth.begin(enrolled, "youtube", "P1")
    query = parse_qs(urlsplit(pending.url).query)
    assert query["prompt"] == ["select_account consent"]
    assert query["access_type"] == ["offline"]
    assert query["code_challenge_method"] == ["S256"]
    spotify = oauth.begin(enrolled, "spotify", "P1")
    assert parse_qs(urlsplit(spotify.url).query)["show_dialog"] == ["true"]
    reddit = oauth.begin(enrolled, "reddit", "P1")
    reddit_query = parse_qs(urlsplit(reddit.url).query)
    assert reddit_query["duration"] == ["permanent"]
    assert "code_challenge" not in reddit_query


def test_state_stored_hashed(enrolled, provider):
    pending = oauth.begin(enrolled, "discord", "P1")
    with enrolled.connect() as con:
        rows = con.execute(
            "SELECT state_sha256, verifier_sha256, expires_at - created_at "
            "FROM oauth_states"
        ).fetchall()
    assert len(rows) == 1
    state_hash, verifier_hash, lifetime = rows[0]
    assert state_hash == hashlib.sha256(pending.state.encode()).hexdigest()
    assert verifier_hash == hashlib.sha256(pending.verifier.encode()).hexdigest()
    assert lifetime == timedelta(minutes=10)


def test_connect_through_callback_server(enrolled, provider, monkeypatch):
    opened = []

    def fake_open(url):
        opened.append(url)
        provider.deliver_callback = True
        requests.get(url, verify=provider.ca_path, timeout=10)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    result = oauth.connect(enrolled, "discord", "P1", timeout=20)
    assert result["status"] == "connected"
    assert len(opened) == 1


def test_cli_connect_with_browser_variable(enrolled, provider, tmp_path):
    provider.deliver_callback = True
    environment = dict(os.environ, BROWSER="curl -sk -o /dev/null %s &")
    completed = subprocess.run(
        [
            *CLI,
            "connect",
            "spotify",
            "--participant",
            "P1",
            "--workspace",
            str(enrolled.root),
            "--timeout",
            "30",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["status"] == "connected"
    assert result["platform"] == "spotify"

    listing = subprocess.run(
        [
            *CLI,
            "connections",
            "--workspace",
            str(enrolled.root),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert "spotify" in listing.stdout
    assert "connected" in listing.stdout
    for token in list(provider.access_tokens) + list(provider.refresh_tokens):
        assert token not in listing.stdout + completed.stdout + completed.stderr


def test_cli_no_browser_reads_hidden_paste(enrolled, provider):
    process = subprocess.Popen(
        [
            *CLI,
            "connect",
            "spotify",
            "--participant",
            "P1",
            "--no-browser",
            "--workspace",
            str(enrolled.root),
            "--json",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = None
    while url is None:
        line = process.stderr.readline()
        assert line, "the prompt with the authorization URL never appeared"
        if line.startswith("https://"):
            url = line.strip()
    location = follow_authorize(provider, url)
    stdout, stderr = process.communicate(location + "\n", timeout=120)
    assert process.returncode == 0, stderr
    assert json.loads(stdout)["status"] == "connected"
    code = code_from_location(location)
    assert code not in stdout
    assert code not in stderr


def test_connections_show_as_cards(enrolled, provider):
    connect_pasting(enrolled, provider, "spotify", "P1")
    listed = oauth.connections(enrolled, "P1")
    page = listed._repr_html_()
    assert "Spotify" in page
    assert "#1DB954" in page
    assert "connected" in page
    assert "essential" in page
    assert "Last extraction: never" in page
    assert "Recently played tracks" in page
    for token in list(provider.access_tokens) + provider.issued_refresh_tokens:
        assert token not in page
    assert oauth.ConnectionList()._repr_html_() == "<p>No connections.</p>"


# ---------------------------------------------------------------------------
# Attacks that must be refused
# ---------------------------------------------------------------------------


def test_replayed_state_refused(enrolled, provider):
    pending = oauth.begin(enrolled, "spotify", "P1")
    callback = callback_for(provider, pending)
    oauth.complete(enrolled, pending, callback)
    with pytest.raises(oauth.StateError, match="already used"):
        oauth.complete(enrolled, pending, callback)


def test_expired_state_refused(enrolled, provider):
    pending = oauth.begin(enrolled, "spotify", "P1")
    callback = callback_for(provider, pending)
    with enrolled.connect() as con:
        con.execute("UPDATE oauth_states SET expires_at = now() - INTERVAL 1 MINUTE")
    with pytest.raises(oauth.StateError, match="expired"):
        oauth.complete(enrolled, pending, callback)
    assert oauth.connections(enrolled) == []


def test_other_participants_state_refused(enrolled, provider):
    first = oauth.begin(enrolled, "spotify", "P1")
    second = oauth.begin(enrolled, "spotify", "P2")
    callback = callback_for(provider, first)
    with pytest.raises(oauth.StateError, match="another request"):
        oauth.complete(enrolled, second, callback)
    assert oauth.connections(enrolled) == []


def test_other_platforms_state_refused(enrolled, provider):
    spotify = oauth.begin(enrolled, "spotify", "P1")
    discord = oauth.begin(enrolled, "discord", "P1")
    callback = callback_for(provider, spotify)
    with pytest.raises(oauth.StateError, match="another request"):
        oauth.complete(enrolled, discord, callback)


def test_unknown_state_refused(enrolled, provider):
    pending = oauth.begin(enrolled, "spotify", "P1")
    callback = callback_for(provider, pending).replace(
        pending.state, "forged-state-value"
    )
    with pytest.raises(oauth.StateError, match="unknown"):
        oauth.complete(enrolled, pending, callback)


def test_missing_verifier_refused(enrolled, provider):
    pending = oauth.begin(enrolled, "discord", "P1")
    callback = callback_for(provider, pending)
    pending.session._code_verifier = None
    before = len(provider.requests)
    with pytest.raises(oauth.StateError, match="PKCE verifier"):
        oauth.complete(enrolled, pending, callback)
    assert not [r for r in provider.requests[before:] if r[1].endswith("/token")]


def test_wrong_verifier_refused(enrolled, provider):
    pending = oauth.begin(enrolled, "discord", "P1")
    callback = callback_for(provider, pending)
    pending.session._code_verifier = "x" * 43
    with pytest.raises(oauth.StateError, match="PKCE verifier"):
        oauth.complete(enrolled, pending, callback)


def test_provider_rejects_wrong_verifier(enrolled, provider):
    pending = oauth.begin(enrolled, "discord", "P1")
    code = code_from_location(callback_for(provider, pending))
    resolved = pending.resolved
    response = requests.post(
        resolved.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": resolved.redirect_uri,
            "client_id": resolved.client_id,
            "client_secret": resolved.client_secret,
            "code_verifier": "y" * 43,
        },
        verify=provider.ca_path,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_tampered_redirect_uri_refused(enrolled, provider):
    pending = oauth.begin(enrolled, "spotify", "P1")
    callback = callback_for(provider, pending)
    pending.session.redirect_uri = "http://127.0.0.1:9/elsewhere"
    with pytest.raises(oauth.StateError, match="redirect URI"):
        oauth.complete(enrolled, pending, callback)


def test_callback_server_accepts_one_callback():
    port = free_port()
    uri = f"http://127.0.0.1:{port}/oauth/callback"
    with CallbackServer(uri, "expected-state") as server:
        base = f"http://127.0.0.1:{port}"
        assert requests.get(base + "/favicon.ico").status_code == 404
        wrong = requests.get(base + "/oauth/callback?state=other&code=c0")
        assert wrong.status_code == 400
        first = requests.get(base + "/oauth/callback?state=expected-state&code=c1")
        assert first.status_code == 200
        assert "close this tab" in first.text
        assert "Location" not in first.headers
        second = requests.get(base + "/oauth/callback?state=expected-state&code=c2")
        assert second.status_code == 409
        assert server.wait(5) == {"state": "expected-state", "code": "c1"}
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/oauth/callback?state=expected-state&code=c3", timeout=2)


def test_callback_server_times_out():
    uri = f"http://127.0.0.1:{free_port()}/oauth/callback"
    with CallbackServer(uri, "s") as server:
        with pytest.raises(oauth.OAuthFlowError, match="No callback arrived"):
            server.wait(0.2)


def test_callback_server_binds_loopback_only():
    with pytest.raises(oauth.OAuthFlowError, match="127.0.0.1"):
        CallbackServer("http://0.0.0.0:8086/oauth/callback", "s")


def test_same_account_second_participant_refused(enrolled, provider):
    provider.account = "shared-account"
    connect_pasting(enrolled, provider, "github", "P1")
    with pytest.raises(oauth.AccountBoundError, match="participant P1"):
        connect_pasting(enrolled, provider, "github", "P2")
    listed = oauth.connections(enrolled)
    assert [row["participant_id"] for row in listed] == ["P1"]
    assert len(provider.revoked) == 1


def test_access_denied_callback(enrolled, provider):
    pending = oauth.begin(enrolled, "spotify", "P1")
    callback = {"state": pending.state, "error": "access_denied"}
    with pytest.raises(oauth.OAuthFlowError, match="access_denied"):
        oauth.complete(enrolled, pending, callback)
    assert oauth.connections(enrolled) == []


def test_copied_ciphertext_reported_for_that_row(enrolled, provider):
    provider.account = "first"
    connect_pasting(enrolled, provider, "spotify", "P1")
    provider.account = "second"
    connect_pasting(enrolled, provider, "spotify", "P2")
    with enrolled.connect() as con:
        con.execute(
            "UPDATE connections SET access_token = (SELECT access_token FROM "
            "connections WHERE participant_id = 'P1') WHERE participant_id = 'P2'"
        )
    listed = {row["participant_id"]: row for row in oauth.connections(enrolled)}
    assert listed["P1"]["token_error"] is None
    assert "does not decrypt" in listed["P2"]["token_error"]
    with pytest.raises(TokenDecryptError):
        oauth.authorized_session(enrolled, "P2", "spotify")
    session = oauth.authorized_session(enrolled, "P1", "spotify")
    assert session.get("/v1/me").status_code == 200


# ---------------------------------------------------------------------------
# Refresh
# ---------------------------------------------------------------------------


def test_refresh_before_expiry(enrolled, provider):
    provider.access_lifetime = 30
    connect_pasting(enrolled, provider, "spotify", "P1")
    provider.access_lifetime = 3600
    session = oauth.authorized_session(enrolled, "P1", "spotify")
    assert provider.refresh_count == 1
    assert session.get("/v1/me").status_code == 200
    again = oauth.authorized_session(enrolled, "P1", "spotify")
    assert again.access_token == session.access_token
    assert provider.refresh_count == 1


def test_rotated_refresh_token_stored(enrolled, provider):
    connect_pasting(enrolled, provider, "discord", "P1")
    first_refresh = next(iter(provider.refresh_tokens))
    oauth.authorized_session(enrolled, "P1", "discord").refresh()
    with enrolled.connect() as con:
        record = records.load(con, "P1", "discord")
    stored = record.open_tokens(enrolled.key).refresh_token
    assert stored != first_refresh
    assert provider.refresh_tokens[stored]["used"] is False
    assert provider.refresh_tokens[first_refresh]["used"] is True


def test_invalid_grant_requires_reauth(enrolled, provider):
    connect_pasting(enrolled, provider, "twitch", "P1")
    session = oauth.authorized_session(enrolled, "P1", "twitch")
    provider.refresh_tokens.clear()
    with pytest.raises(oauth.ReauthRequired, match="reconnecting"):
        session.refresh()
    row = oauth.connections(enrolled, "P1")[0]
    assert row["status"] == "requires_reauth"
    assert "invalid_grant" in row["status_reason"]


def test_server_errors_retried(enrolled, provider, monkeypatch):
    monkeypatch.setattr(client, "RETRY_BASE_DELAY", 0.01)
    connect_pasting(enrolled, provider, "reddit", "P1")
    session = oauth.authorized_session(enrolled, "P1", "reddit")
    provider.token_failures = 2
    session.refresh()
    assert provider.token_failures == 0
    assert provider.refresh_count == 1
    assert oauth.connections(enrolled, "P1")[0]["status"] == "connected"


def test_persistent_server_errors_keep_connection(enrolled, provider, monkeypatch):
    monkeypatch.setattr(client, "RETRY_BASE_DELAY", 0.01)
    connect_pasting(enrolled, provider, "reddit", "P1")
    session = oauth.authorized_session(enrolled, "P1", "reddit")
    provider.token_failures = 10
    with pytest.raises(oauth.TransientTokenError, match="after 4 attempts"):
        session.refresh()
    assert oauth.connections(enrolled, "P1")[0]["status"] == "connected"


def test_token_not_sent_outside_api(enrolled, provider):
    connect_pasting(enrolled, provider, "spotify", "P1")
    session = oauth.authorized_session(enrolled, "P1", "spotify")
    with pytest.raises(UsageError, match="Refusing to send"):
        session.get("https://api.spotify.com/v1/me")
    with pytest.raises(UsageError, match="Refusing to send"):
        session.get(provider.url + "/github/api/user")


def test_sandbox_token_not_used_for_platform(enrolled, provider, monkeypatch):
    connect_pasting(enrolled, provider, "spotify", "P1")
    monkeypatch.delenv("TWINME_SANDBOX_URL")
    monkeypatch.setenv("TWINME_SPOTIFY_CLIENT_ID", "real-id")
    monkeypatch.setenv("TWINME_SPOTIFY_CLIENT_SECRET", "real-secret")
    with pytest.raises(UsageError, match="made against the sandbox"):
        oauth.authorized_session(enrolled, "P1", "spotify")


def test_twitch_token_validated(enrolled, provider):
    connect_pasting(enrolled, provider, "twitch", "P1")
    session = oauth.authorized_session(enrolled, "P1", "twitch")
    session.get("/helix/users")
    session.get("/helix/users")
    validations = [r for r in provider.requests if r[1].endswith("/validate")]
    assert len(validations) == 1
    assert oauth.connections(enrolled, "P1")[0]["validated_at"] is not None


_REFRESH_SCRIPT = """
import sys, time
from twinme_lab import oauth
from twinme_lab.workspace import open_workspace
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.005)
ws = open_workspace(sys.argv[1])
session = oauth.authorized_session(ws, "P1", "spotify")
print(session.get("/v1/me").status_code)
"""


def test_two_processes_refresh_once(enrolled, provider):
    provider.access_lifetime = 30
    connect_pasting(enrolled, provider, "spotify", "P1")
    provider.access_lifetime = 3600
    start = time.time() + 3
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _REFRESH_SCRIPT, str(enrolled.root), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert stdout.strip() == "200"
    assert provider.refresh_count == 1
    assert oauth.connections(enrolled, "P1")[0]["status"] == "connected"


def test_comma_scopes_become_spaces():
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(
        {"access_token": "a", "token_type": "bearer", "scope": "read:user,repo"}
    ).encode()
    rewritten = client._scope_hook(response)
    assert rewritten.json()["scope"] == "read:user repo"


def test_server_error_hook_raises():
    response = requests.Response()
    response.status_code = 502
    with pytest.raises(oauth.TransientTokenError, match="HTTP 502"):
        client._transient_hook(response)


# ---------------------------------------------------------------------------
# Forget and secrecy
# ---------------------------------------------------------------------------


def test_forget_revokes_connections(enrolled, provider):
    connect_pasting(enrolled, provider, "discord", "P1")
    provider.account = "other"
    connect_pasting(enrolled, provider, "discord", "P2")
    participants.forget(enrolled, "P1")
    assert len(provider.revoked) == 2
    remaining = oauth.connections(enrolled)
    assert [row["participant_id"] for row in remaining] == ["P2"]
    with enrolled.connect() as con:
        states = con.execute(
            "SELECT count(*) FROM oauth_states WHERE participant_id = 'P1'"
        ).fetchone()[0]
    assert states == 0


def test_no_secret_in_logs_output_or_database(enrolled, provider, monkeypatch):
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    logs.configure("DEBUG")
    secrets_seen: set[str] = set()
    errors: list[str] = []
    try:
        for name in ("spotify", "github", "discord"):
            pending = oauth.begin(enrolled, name, "P1")
            secrets_seen.add(pending.state)
            if pending.verifier:
                secrets_seen.add(pending.verifier)
            callback = callback_for(provider, pending)
            secrets_seen.add(code_from_location(callback))
            oauth.complete(enrolled, pending, callback)
            try:
                oauth.complete(enrolled, pending, callback)
            except oauth.OAuthFlowError as exc:
                errors.append(str(exc))
        session = oauth.authorized_session(enrolled, "P1", "discord")
        session.refresh()
        session.get("/v10/users/@me")
        provider.refresh_tokens.clear()
        try:
            session.refresh()
        except oauth.ReauthRequired as exc:
            errors.append(str(exc))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    secrets_seen |= set(provider.access_tokens) | set(provider.revoked)
    secrets_seen |= {r for r in provider.issued_refresh_tokens}
    secrets_seen.add(enrolled.key.raw.hex())
    secrets_seen.add(enrolled.key.database_key())
    secrets_seen.add(enrolled.key.token_key().hex())
    secrets_seen |= {f"sandbox-{n}-secret" for n in platforms.PLATFORM_NAMES}
    assert len(secrets_seen) > 10

    cli = subprocess.run(
        [
            *CLI,
            "--log-level",
            "DEBUG",
            "connections",
            "--json",
            "--workspace",
            str(enrolled.root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr

    with enrolled.connect() as con:
        dump = []
        for table in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()"
        ).fetchall():
            columns = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_catalog = current_database() AND table_name = ?",
                    [table[0]],
                ).fetchall()
                if not (table[0] == "connections" and c in TOKEN_COLUMNS)
            ]
            quoted = ", ".join(f'"{c}"' for c in columns)
            dump.append(
                repr(con.execute(f'SELECT {quoted} FROM "{table[0]}"').fetchall())
            )
    database_text = "\n".join(dump)
    raw_file = enrolled.db_path.read_bytes()

    places = {
        "logs": captured.getvalue(),
        "cli": cli.stdout + cli.stderr,
        "errors": "\n".join(errors),
        "database": database_text,
    }
    assert "connected" in places["cli"]
    assert len(errors) == 4
    for secret in secrets_seen:
        for place, text in places.items():
            assert secret not in text, f"a secret appears in {place}"
        assert secret.encode() not in raw_file


# ---------------------------------------------------------------------------
# Against the sandbox provider (twinme_lab.sandbox)
# ---------------------------------------------------------------------------

# One API endpoint per platform, beyond the identity endpoint.
SANDBOX_CALLS = {
    "spotify": "/v1/me/player/recently-played?limit=5",
    "github": "/user/repos?per_page=5",
    "discord": "/v10/users/@me/guilds",
    "linkedin": "/v2/userinfo",
    "youtube": "/youtube/v3/subscriptions?part=snippet&mine=true",
    "reddit": "/subreddits/mine/subscriber",
    "twitch": "/helix/users",
}


@pytest.fixture(scope="module")
def sandbox_handle():
    from twinme_lab.sandbox import serve

    with serve(seed=11, auto_consent=True, rate_limits=False) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_handle, monkeypatch, tmp_path):
    """The sandbox, selected through TWINME_SANDBOX_URL, on a free callback port."""
    monkeypatch.chdir(tmp_path)
    for key, value in sandbox_handle.env().items():
        monkeypatch.setenv(key, value)
    port = free_port()
    for name in platforms.PLATFORM_NAMES:
        monkeypatch.setenv(
            f"TWINME_{name.upper()}_REDIRECT_URI",
            f"http://127.0.0.1:{port}/oauth/callback",
        )
        sandbox_handle.set_consent_user(name, 0)
    yield sandbox_handle
    sandbox_handle.clear_faults()
    sandbox_handle.set_token_lifetime(3600)


def browse_with_requests(handle):
    """Return a webbrowser.open stand-in that follows the sandbox's redirect."""

    def open_url(url):
        requests.get(url, verify=handle.ca_path, timeout=20)
        return True

    return open_url


@pytest.mark.parametrize("name", platforms.PLATFORM_NAMES)
def test_sandbox_full_flow(enrolled, sandbox, monkeypatch, name):
    platform = platforms.get(name)
    monkeypatch.setattr(webbrowser, "open", browse_with_requests(sandbox))

    connected = oauth.connect(enrolled, name, "P1", timeout=30)
    assert connected["status"] == "connected"
    assert connected["origin"] == "sandbox"
    assert connected["has_refresh_token"] == platform.issues_refresh_tokens
    user_ids = {str(user["id"]) for user in sandbox.users(name)}
    assert connected["account_id"] in user_ids

    session = oauth.authorized_session(enrolled, "P1", name)
    assert session.get(platform.identity_path).status_code == 200
    assert session.get(SANDBOX_CALLS[name]).status_code == 200

    if platform.issues_refresh_tokens:
        assert sandbox.expire_tokens(name) >= 1
        assert session.get(SANDBOX_CALLS[name]).status_code == 401
        session.refresh()
        assert session.get(SANDBOX_CALLS[name]).status_code == 200

    rotation.rotate_key(enrolled)
    rotated = open_workspace(enrolled.root)
    again = oauth.authorized_session(rotated, "P1", name)
    assert again.get(SANDBOX_CALLS[name]).status_code == 200
    old_access = again.access_token

    outcome = oauth.disconnect(rotated, name, "P1")
    assert outcome["revoked_at_platform"] == (platform.revoke_url is not None)
    if platform.revoke_url is not None:
        after = requests.get(
            sandbox.api_url(name, platform.identity_path),
            headers={
                "Authorization": f"Bearer {old_access}",
                "Client-Id": f"sandbox-{name}-client",
                "User-Agent": again.headers["User-Agent"],
            },
            verify=sandbox.ca_path,
            timeout=20,
        )
        assert after.status_code == 401
    assert oauth.connections(rotated, "P1")[0]["status"] == "revoked"


def run_cli_connect(enrolled, sandbox, browser: str):
    environment = dict(os.environ, BROWSER=browser)
    return subprocess.run(
        [
            *CLI,
            "connect",
            "github",
            "--participant",
            "P1",
            "--workspace",
            str(enrolled.root),
            "--timeout",
            "30",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=180,
    )


def test_sandbox_cli_connect_with_curl(enrolled, sandbox, monkeypatch):
    """The scripted flow: auto-consent, and a browser that follows no redirect."""
    from twinme_lab.sandbox import serve

    with serve(
        seed=11, auto_consent=True, deliver_callback=True, rate_limits=False
    ) as delivering:
        for key, value in delivering.env().items():
            monkeypatch.setenv(key, value)
        completed = run_cli_connect(enrolled, delivering, "curl -sk -o /dev/null %s &")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["status"] == "connected"


def test_sandbox_browser_connects_and_reconnects(enrolled, sandbox):
    browser = oauth.sandbox_browser()
    first = oauth.connect(enrolled, "reddit", "P1", timeout=30, open_url=browser)
    second = oauth.connect(enrolled, "reddit", "P1", timeout=30, open_url=browser)
    assert first["account_id"] == second["account_id"]
    assert second["consented_at"] > first["consented_at"]
    assert len(oauth.connections(enrolled, "P1")) == 1
    with pytest.raises(UsageError, match="only opens URLs"):
        browser("https://www.reddit.com/api/v1/authorize")


def test_sandbox_browser_needs_sandbox(monkeypatch):
    monkeypatch.delenv("TWINME_SANDBOX_URL", raising=False)
    with pytest.raises(UsageError, match="TWINME_SANDBOX_URL"):
        oauth.sandbox_browser()


def test_sandbox_cli_connect_following_redirects(enrolled, sandbox):
    completed = run_cli_connect(enrolled, sandbox, "curl -skL -o /dev/null %s &")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["status"] == "connected"


def sandbox_callback(sandbox, pending) -> str:
    response = requests.get(
        pending.url, allow_redirects=False, verify=sandbox.ca_path, timeout=20
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def test_sandbox_refuses_replayed_code(enrolled, sandbox):
    pending = oauth.begin(enrolled, "discord", "P1")
    callback = sandbox_callback(sandbox, pending)
    oauth.complete(enrolled, pending, callback)
    # A second request with the same code and verifier, past the state check.
    with pytest.raises(oauth.OAuthFlowError, match="invalid_grant"):
        oauth.flow._exchange_code(pending, code_from_location(callback))


def test_sandbox_refuses_wrong_verifier(enrolled, sandbox):
    pending = oauth.begin(enrolled, "youtube", "P1")
    code = code_from_location(sandbox_callback(sandbox, pending))
    pending.session._code_verifier = "z" * 43
    with pytest.raises(oauth.OAuthFlowError, match="invalid_grant"):
        oauth.flow._exchange_code(pending, code)


def test_sandbox_refuses_missing_verifier(enrolled, sandbox):
    pending = oauth.begin(enrolled, "spotify", "P1")
    code = code_from_location(sandbox_callback(sandbox, pending))
    resolved = pending.resolved
    response = requests.post(
        resolved.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": resolved.redirect_uri,
        },
        auth=(resolved.client_id, resolved.client_secret),
        verify=sandbox.ca_path,
        timeout=20,
    )
    assert response.status_code == 400


def test_sandbox_refuses_other_redirect_uri(enrolled, sandbox):
    pending = oauth.begin(enrolled, "discord", "P1")
    code = code_from_location(sandbox_callback(sandbox, pending))
    pending.session.redirect_uri = "http://127.0.0.1:9/elsewhere"
    with pytest.raises(oauth.OAuthFlowError):
        oauth.flow._exchange_code(pending, code)


def test_sandbox_github_error_with_200(enrolled, sandbox):
    pending = oauth.begin(enrolled, "github", "P1")
    sandbox_callback(sandbox, pending)
    with pytest.raises(oauth.OAuthFlowError, match="GitHub rejected"):
        oauth.flow._exchange_code(pending, "not-a-code")


def test_sandbox_same_account_refused(enrolled, sandbox, monkeypatch):
    monkeypatch.setattr(webbrowser, "open", browse_with_requests(sandbox))
    oauth.connect(enrolled, "twitch", "P1", timeout=30)
    with pytest.raises(oauth.AccountBoundError):
        oauth.connect(enrolled, "twitch", "P2", timeout=30)
    sandbox.set_consent_user("twitch", 1)
    second = oauth.connect(enrolled, "twitch", "P2", timeout=30)
    assert second["status"] == "connected"


def test_sandbox_revoked_refresh_token(enrolled, sandbox, monkeypatch):
    monkeypatch.setattr(webbrowser, "open", browse_with_requests(sandbox))
    oauth.connect(enrolled, "spotify", "P1", timeout=30)
    sandbox.set_fault("spotify", "revoke_refresh_token")
    session = oauth.authorized_session(enrolled, "P1", "spotify")
    with pytest.raises(oauth.ReauthRequired):
        session.refresh()
    assert oauth.connections(enrolled, "P1")[0]["status"] == "requires_reauth"
