"""The HTTPS server of the sandbox and the handle :func:`serve` returns."""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import shutil
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import certs
from .app import SandboxApp
from .settings import client_pair

log = logging.getLogger("twinme_lab.sandbox")

BIND_ADDRESS = "127.0.0.1"
# Largest request body read, in bytes; token and admin requests are far smaller.
MAX_BODY = 1_000_000

# Temporary state folders of sandboxes that are not stopped yet. They are also
# removed when the interpreter exits, so a test or script that never calls
# stop() leaves none behind. NOTE: a process killed by a signal it does not
# handle (SIGKILL, or SIGTERM outside the CLI) still leaves its folder.
_live_temp_dirs: set[str] = set()


@atexit.register
def _remove_live_temp_dirs() -> None:
    for folder in list(_live_temp_dirs):
        shutil.rmtree(folder, ignore_errors=True)
        _live_temp_dirs.discard(folder)


class SandboxError(RuntimeError):
    """The sandbox could not start; the message gives the cause and the fix."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "twinme-sandbox"
    sys_version = ""
    # Seconds an idle keep-alive connection stays open.
    timeout = 30

    def _send_error_json(self, status: int, error: str) -> None:
        data = json.dumps({"error": error}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            status = 413 if length > MAX_BODY else 400
            self._send_error_json(status, "invalid_content_length")
            return
        body = self.rfile.read(length) if length else b""
        app: SandboxApp = self.server.app
        try:
            reply = app.handle(self.command, self.path, self.headers, body)
        except Exception:
            log.exception(
                "Sandbox failed on %s %s", self.command, self.path.split("?")[0]
            )
            self._send_error_json(500, "sandbox_internal_error")
            return
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if reply.status != 304:
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if reply.status != 304 and self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        # The default handler prints to stderr; the query string may carry codes.
        log.debug("%s %s", self.command, (self.path or "").split("?")[0])


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = False

    def __init__(self, address, context: ssl.SSLContext):
        self.context = context
        self.app: SandboxApp | None = None
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address) -> None:
        # The TLS handshake runs here, in the request's own thread, so one slow
        # client cannot block the accept loop.
        request.settimeout(_Handler.timeout)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def shutdown_request(self, request) -> None:
        try:
            request.close()
        except OSError:
            pass


def check_bind_address(host: str) -> str:
    """Return ``host`` when it is 127.0.0.1; raise SandboxError otherwise."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or str(address) != BIND_ADDRESS:
        raise SandboxError(
            f"The sandbox binds only to {BIND_ADDRESS}; {host!r} was rejected. "
            "It serves tokens and test data that must not be reachable from "
            "other machines."
        )
    return BIND_ADDRESS


class SandboxHandle:
    """A running sandbox: its URL, its CA file and controls for faults and stats.

    Use as a context manager, or call :meth:`stop`.
    """

    def __init__(self, server: _TLSServer, thread: threading.Thread, files, temp_dir):
        self._server = server
        self._thread = thread
        self._temp_dir = temp_dir
        self.app: SandboxApp = server.app
        self.port: int = server.server_address[1]
        self.url = f"https://{BIND_ADDRESS}:{self.port}"
        self.ca_path = str(files.ca_path)
        self.cert_path = str(files.cert_path)
        self._stopped = False

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SandboxHandle(url={self.url!r}, ca_path={self.ca_path!r})"

    # URLs and credentials ------------------------------------------------
    def oauth_url(self, platform: str, endpoint: str) -> str:
        """Return e.g. ``https://127.0.0.1:PORT/github/oauth/token``."""
        return f"{self.url}/{platform}/oauth/{endpoint}"

    def api_url(self, platform: str, path: str = "") -> str:
        """Return the sandbox URL of a platform API path, e.g. ``/user/repos``."""
        return f"{self.url}/{platform}/api{path}"

    @staticmethod
    def client(platform: str) -> tuple[str, str]:
        """Return the public sandbox client id and secret of ``platform``."""
        return client_pair(platform)

    def env(self) -> dict[str, str]:
        """Return the environment variables that point the library at this sandbox."""
        return {"TWINME_SANDBOX_URL": self.url, "TWINME_SANDBOX_CA": self.ca_path}

    def users(self, platform: str | None = None):
        """Return the sandbox users (index, id, login, name) of one or all platforms."""
        listing = self.app.user_list()
        return listing[platform] if platform else listing

    # Controls -------------------------------------------------------------
    def set_fault(
        self, platform: str, kind: str, endpoint: str = "*", **options
    ) -> int:
        """Switch on a fault and return its id.

        ``kind`` is one of rate_limit, server_error, slow, expire_token,
        revoke_refresh_token, truncate, forbidden. ``endpoint`` is an endpoint
        name (``repos``, ``token``), an API path glob or ``*`` (every API and
        OAuth endpoint). ``platform`` may be ``*``.

        Options: ``count`` (times it fires; default unlimited, 1 for
        expire_token), ``after`` (matching requests let through first),
        ``status`` (server_error: default 503; rate_limit: 429 or 403),
        ``retry_after`` (seconds) with ``retry_after_format`` ('seconds' or
        'http-date'), and ``delay`` (slow, in seconds).
        """
        if platform != "*":
            self.app.check_platform(platform)
        return self.app.faults.add(platform, kind, endpoint, **options).id

    def clear_faults(
        self, platform: str | None = None, fault_id: int | None = None
    ) -> int:
        """Switch faults off (all, one platform's, or one id); return how many."""
        return self.app.faults.clear(platform, fault_id)

    def faults(self) -> list[dict]:
        return self.app.faults.list()

    def stats(self) -> dict:
        """Return request counters; see :meth:`Stats.snapshot` for the shape."""
        snapshot = self.app.stats.snapshot()
        snapshot["oauth"] = dict(self.app.store.counters)
        return snapshot

    def reset_stats(self) -> None:
        self.app.stats.reset()

    def set_rate_limit(
        self,
        platform: str,
        requests: int | None,
        per_seconds: float = 60.0,
        counted_per: str | None = None,
    ) -> None:
        """Limit ``platform`` to ``requests`` per ``per_seconds`` (None: no limit).

        ``counted_per`` is 'token' (per user and app) or 'app'; by default the
        platform module's choice.
        """
        self.app.set_rate_limit(platform, requests, per_seconds, counted_per)

    def set_consent_user(self, platform: str, user: int) -> None:
        """Choose the sandbox user who consents when the request names none."""
        self.app.set_consent_user(platform, user)

    def add_items(self, platform: str, user: int, endpoint: str, count: int = 1) -> int:
        """Add ``count`` new items to a user's endpoint; return its new total.

        Endpoints: spotify recently_played and saved_tracks, github events and
        repos, discord guilds, reddit submitted and comments, twitch
        followed_channels, youtube subscriptions and liked_videos. New items are
        the newest of their endpoint, so an incremental run must fetch them.
        """
        return self.app.add_items(platform, user, endpoint, count)

    def set_token_lifetime(self, seconds: float) -> None:
        """Set the lifetime of access tokens issued from now on."""
        self.app.set_token_lifetime(seconds)

    def expire_tokens(self, platform: str | None = None) -> int:
        """Expire every live access token (of ``platform``); return how many."""
        return self.app.store.expire_access_tokens(platform)

    def stop(self) -> None:
        """Stop serving and delete the temporary state folder, if one was made."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            _live_temp_dirs.discard(self._temp_dir)
        log.info("Sandbox on %s stopped", self.url)


def serve(
    port: int = 0,
    auto_consent: bool = False,
    seed: int = 0,
    users: int = 3,
    state_dir: str | Path | None = None,
    *,
    deliver_callback: bool = False,
    host: str = BIND_ADDRESS,
    token_lifetime: float = 3600.0,
    rate_limits: bool = True,
    redirect_uris: tuple[str, ...] = (),
    refresh_tokens: dict[str, bool] | None = None,
) -> SandboxHandle:
    """Start the sandbox in a background thread and return its handle.

    ``port`` 0 picks a free port. ``state_dir`` receives the CA, certificate and
    key; by default a temporary folder, deleted on :meth:`SandboxHandle.stop`.
    With ``auto_consent`` the authorize URL redirects at once (302) to the
    redirect URI. ``deliver_callback`` makes the sandbox request that loopback
    redirect URI itself and return 200, for user agents that do not follow
    redirects (``BROWSER='curl -sk -o /dev/null %s &'``). ``host`` must be
    127.0.0.1. ``token_lifetime`` is the access-token lifetime
    in seconds. ``rate_limits`` applies each platform module's limit (False: no
    limits until :meth:`SandboxHandle.set_rate_limit`). ``redirect_uris`` adds
    exact redirect URIs to the loopback ones always accepted.
    ``refresh_tokens`` overrides whether a platform issues refresh tokens, for
    example ``{"github": True}`` for GitHub App user tokens.
    """
    host = check_bind_address(host)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise SandboxError(f"port must be 0 to 65535, not {port!r}.")
    temp_dir = None
    if state_dir is None:
        temp_dir = tempfile.mkdtemp(prefix="twinme-sandbox-")
        _live_temp_dirs.add(temp_dir)
        folder = Path(temp_dir)
    else:
        folder = Path(state_dir)
    try:
        files = certs.generate(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(files.cert_path, files.key_path)
        try:
            server = _TLSServer((host, port), context)
        except OSError as exc:
            raise SandboxError(
                f"Could not listen on {host}:{port}: {exc.strerror or exc}. "
                "Choose another --port, or 0 for any free port."
            ) from exc
        base_url = f"https://{BIND_ADDRESS}:{server.server_address[1]}"
        try:
            server.app = SandboxApp(
                base_url,
                seed=seed,
                users=users,
                auto_consent=auto_consent,
                deliver_callback=deliver_callback,
                token_lifetime=token_lifetime,
                rate_limits=rate_limits,
                redirect_uris=tuple(redirect_uris),
                refresh_tokens=refresh_tokens,
            )
        except ValueError as exc:
            server.server_close()
            raise SandboxError(str(exc)) from exc
    except BaseException:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
            _live_temp_dirs.discard(temp_dir)
        raise
    thread = threading.Thread(
        target=server.serve_forever, name="twinme-sandbox", daemon=True
    )
    thread.start()
    handle = SandboxHandle(server, thread, files, temp_dir)
    log.info(
        "Sandbox serving on %s (seed %d, %d users per platform)",
        handle.url,
        seed,
        users,
    )
    return handle
