"""A one-shot loopback HTTP server that receives the OAuth redirect.

It binds 127.0.0.1 only, on the port of the redirect URI, and accepts exactly one
request whose path matches the redirect URI and whose ``state`` matches the
pending request. It returns a short plain page, never redirects, and stops
after that callback or when the timeout passes.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .errors import OAuthFlowError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

_DONE_PAGE = (
    "<!doctype html><meta charset='utf-8'><title>Twin Me Lab</title>"
    "<p>Thank you. The connection is complete on the researcher's side; you may "
    "close this tab now.</p>"
)
_ERROR_PAGE = (
    "<!doctype html><meta charset='utf-8'><title>Twin Me Lab</title>"
    "<p>The platform reported that access was not granted. You may close this "
    "tab.</p>"
)


def parse_callback(text: str) -> dict[str, str]:
    """Return the single-valued query parameters of a callback URL or query."""
    text = text.strip()
    query = urlsplit(text).query if "?" in text else text
    values = parse_qs(query, keep_blank_values=True)
    return {key: items[0] for key, items in values.items() if len(items) == 1}


class CallbackServer:
    """Serve one OAuth callback on ``127.0.0.1:port`` at ``path``.

    Use as a context manager; :meth:`wait` returns the callback's query
    parameters or raises :class:`OAuthFlowError` on timeout.
    """

    def __init__(self, redirect_uri: str, expected_state: str):
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname != LOOPBACK:
            raise OAuthFlowError(
                f"The redirect URI {redirect_uri} is not http://127.0.0.1:PORT/...; "
                "the local callback server cannot receive it. Use --no-browser "
                "and paste the address the browser ends on."
            )
        self.path = parts.path or "/"
        self.port = parts.port or 80
        self.expected_state = expected_state
        self.result: dict[str, str] | None = None
        self._received = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CallbackServer:
        handler = self._handler_class()
        try:
            self._server = ThreadingHTTPServer((LOOPBACK, self.port), handler)
        except OSError as exc:
            raise OAuthFlowError(
                f"Cannot listen on {LOOPBACK}:{self.port} for the OAuth callback "
                f"({exc.strerror}); close the program using that port or set "
                "another port in the platform's TWINME_<PLATFORM>_REDIRECT_URI "
                "(and register it with the platform)."
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oauth-callback", daemon=True
        )
        self._thread.start()
        log.info("callback server listening on %s:%d", LOOPBACK, self.port)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            log.info("callback server stopped")

    def wait(self, timeout: float) -> dict[str, str]:
        """Block until the callback arrives, then stop the server."""
        arrived = self._received.wait(timeout)
        self.stop()
        if not arrived or self.result is None:
            raise OAuthFlowError(
                f"No callback arrived within {timeout:.0f} seconds; start the "
                "connection again."
            )
        return self.result

    def _accept(self, params: dict[str, str]) -> bool:
        with self._lock:
            if self.result is not None:
                return False
            self.result = params
            self._received.set()
            return True

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's method name)
                parts = urlsplit(self.path)
                if parts.path != server.path:
                    self._send(404, "<p>Not found.</p>")
                    return
                params = parse_callback(parts.query)
                if params.get("state") != server.expected_state:
                    log.warning("callback with a state of another request ignored")
                    self._send(
                        400,
                        "<p>This link does not belong to the pending connection.</p>",
                    )
                    return
                if not server._accept(params):
                    self._send(409, "<p>The callback was already received.</p>")
                    return
                page = _ERROR_PAGE if "error" in params else _DONE_PAGE
                self._send(200, page)

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                # The default handler prints the request line, code included.
                log.debug("callback request handled")

        return Handler
