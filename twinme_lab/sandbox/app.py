"""Request dispatch of the sandbox: OAuth endpoints, platform APIs and admin API.

URL layout (all under the sandbox's base URL):

- ``/<platform>/oauth/authorize`` (GET shows the consent page, POST submits it),
  ``/<platform>/oauth/token``, ``/<platform>/oauth/revoke`` and, for Twitch,
  ``/twitch/oauth/validate``;
- ``/<platform>/api/<the platform's own API path>``, for example
  ``/github/api/user/repos`` or ``/spotify/api/v1/me/top/artists``;
- ``/_sandbox/...``: the admin API (faults, rate limits, stats, users).
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import ipaddress
import json
import logging
import math
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from oauthlib.common import add_params_to_uri
from oauthlib.oauth2.rfc6749 import errors as oauth_errors

from . import settings as settings_module
from .apis import API_CLASSES, ApiError, ApiRequest, ApiResponse, PlatformApi
from .authserver import AccessToken, TokenStore, basic_credentials, build_server
from .faults import Fault, FaultBook, RateLimiter, RateLimitRule, Stats

log = logging.getLogger("twinme_lab.sandbox")

# Faults that replace the response; the others change how it is delivered.
REPLACING = ("rate_limit", "server_error", "forbidden", "expire_token")
# Faults drawn before the response is built. A truncate fault is drawn after, and
# only for a 200 response with a body, so a 304 or an error never consumes it.
TOKEN_FAULTS = ("rate_limit", "server_error", "slow", "forbidden")
API_FAULTS = ("rate_limit", "server_error", "slow", "forbidden", "expire_token")
GITHUB_ERROR_CODES = {
    # GitHub's own names for RFC 6749 token errors, sent with HTTP 200.
    ("invalid_grant", "authorization_code"): "bad_verification_code",
    ("invalid_grant", "refresh_token"): "bad_refresh_token",
    ("invalid_client", None): "incorrect_client_credentials",
    ("invalid_request", None): "invalid_request",
}


@dataclass
class Reply:
    """A response for the HTTP layer: status, headers, body and a delay before it."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


def json_reply(status: int, body, headers: dict[str, str] | None = None) -> Reply:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Reply(
        status,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        data,
    )


def html_reply(status: int, title: str, content: str) -> Reply:
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{content}</body></html>"
    )
    return Reply(
        status, {"Content-Type": "text/html; charset=utf-8"}, page.encode("utf-8")
    )


def invalid_token_challenge(message: str) -> str:
    """Return the WWW-Authenticate value of RFC 6750 for a rejected token."""
    return (
        f'Bearer realm="sandbox", error="invalid_token", error_description="{message}"'
    )


def retry_after_value(fault: Fault) -> str:
    """Return the Retry-After header of a fault, in seconds or as an HTTP date."""
    if fault.retry_after_format == "http-date":
        return email.utils.formatdate(time.time() + fault.retry_after, usegmt=True)
    return str(max(0, math.ceil(fault.retry_after)))


def deliver_callback(location: str) -> bool:
    """Request ``location`` from a background thread, as a browser following it would.

    Only plain-HTTP loopback redirect URIs are requested, so the sandbox never
    sends anything off the machine. Returns False when ``location`` is not one.
    """
    parts = urlsplit(location)
    try:
        loopback = ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        return False

    def fetch() -> None:
        # No proxy: a proxy from the environment must not see the code.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(location, timeout=10) as response:
                response.read()
        except OSError as exc:
            log.warning(
                "Delivering the authorization response to %s://%s%s failed: %s",
                parts.scheme,
                parts.netloc,
                parts.path,
                type(exc).__name__,
            )

    threading.Thread(target=fetch, name="sandbox-callback", daemon=True).start()
    return True


class SandboxApp:
    """All sandbox state and the dispatch of one request to the right part."""

    def __init__(
        self,
        base_url: str,
        seed: int = 0,
        users: int = 3,
        auto_consent: bool = False,
        deliver_callback: bool = False,
        token_lifetime: float = 3600.0,
        rate_limits: bool = True,
        redirect_uris: tuple[str, ...] = (),
        refresh_tokens: dict[str, bool] | None = None,
    ):
        if users < 1:
            raise ValueError(f"users must be at least 1, not {users}.")
        self.base_url = base_url
        self.seed = seed
        self.auto_consent = auto_consent
        self.deliver_callback = deliver_callback
        self.store = TokenStore()
        self.faults = FaultBook()
        self.limiter = RateLimiter()
        self.stats = Stats()
        self.settings = {}
        self.servers = {}
        self.apis: dict[str, PlatformApi] = {}
        self.users: dict[str, list[dict]] = {}
        self.consent_user: dict[str, int] = {}
        self._data_lock = threading.Lock()
        overrides = refresh_tokens or {}
        for name in settings_module.PLATFORM_NAMES:
            platform_settings = settings_module.load(name, overrides.get(name))
            self.settings[name] = platform_settings
            self.servers[name] = build_server(
                platform_settings, self.store, token_lifetime, tuple(redirect_uris)
            )
            api = API_CLASSES[name](seed, f"{base_url}/{name}/api")
            self.apis[name] = api
            self.users[name] = [api.build_user(index) for index in range(users)]
            if rate_limits:
                requests, per_seconds, counted_per = platform_settings.rate_limit
                self.limiter.set_rule(
                    name, RateLimitRule(requests, per_seconds, counted_per)
                )

    # Settings at run time ----------------------------------------------------
    def set_token_lifetime(self, seconds: float) -> None:
        for server in self.servers.values():
            server.auth_grant.request_validator.token_lifetime = seconds

    def set_rate_limit(
        self,
        platform: str,
        requests: int | None,
        per_seconds: float = 60.0,
        counted_per: str | None = None,
    ) -> None:
        """Set a platform's limit (``requests`` None switches limiting off)."""
        self.check_platform(platform)
        if requests is None:
            self.limiter.set_rule(platform, None)
            return
        if requests < 1 or per_seconds <= 0:
            raise ValueError("requests must be at least 1 and per_seconds above 0.")
        counted_per = counted_per or self.settings[platform].rate_limit[2]
        if counted_per not in ("token", "app"):
            raise ValueError(
                f"counted_per must be 'token' or 'app', not {counted_per!r}."
            )
        self.limiter.set_rule(
            platform, RateLimitRule(int(requests), float(per_seconds), counted_per)
        )

    def set_consent_user(self, platform: str, user: int) -> None:
        self.check_platform(platform)
        if not 0 <= user < len(self.users[platform]):
            raise ValueError(
                f"user must be 0 to {len(self.users[platform]) - 1}, not {user}."
            )
        self.consent_user[platform] = user

    def add_items(self, platform: str, user: int, endpoint: str, count: int = 1) -> int:
        """Add new items to one user's endpoint; return the endpoint's new total."""
        self.check_platform(platform)
        if not 0 <= user < len(self.users[platform]):
            raise ValueError(
                f"user must be 0 to {len(self.users[platform]) - 1}, not {user}."
            )
        with self._data_lock:
            record = self.users[platform][user]
            return self.apis[platform].add_items(record, user, endpoint, count)

    def user_list(self) -> dict[str, list[dict]]:
        return {
            name: [
                {"index": index, **self.apis[name].account(user)}
                for index, user in enumerate(users)
            ]
            for name, users in self.users.items()
        }

    def check_platform(self, platform: str) -> None:
        if platform not in self.settings:
            raise ValueError(
                f"Unknown platform {platform!r}; choose one of "
                f"{', '.join(self.settings)}."
            )

    # Dispatch ---------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers, body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        segments = parts.path.split("/", 3)
        if parts.path.startswith("/_sandbox/") or parts.path == "/_sandbox":
            return self._admin(method, parts.path, parts.query, body)
        if len(segments) < 3 or segments[1] not in self.settings:
            return json_reply(
                404, {"error": "not_found", "message": f"No sandbox route {parts.path}"}
            )
        platform, area = segments[1], segments[2]
        rest = "/" + segments[3] if len(segments) > 3 else "/"
        if area == "oauth":
            return self._oauth(platform, method, rest, parts.query, headers, body)
        if area == "api":
            return self._api(platform, method, rest, parts.query, headers, body)
        return json_reply(
            404, {"error": "not_found", "message": f"No sandbox route {parts.path}"}
        )

    # OAuth ------------------------------------------------------------------
    def _oauth(self, platform, method, rest, query, headers, body) -> Reply:
        endpoint = rest.strip("/")
        if endpoint == "validate" and self.settings[platform].validate_supported:
            return self._api(platform, "GET", "/oauth2/validate", query, headers, body)
        if endpoint not in ("authorize", "token", "revoke"):
            return json_reply(404, {"error": "not_found"})
        fired = self.faults.take(
            platform, {endpoint}, f"/oauth/{endpoint}", TOKEN_FAULTS
        )
        failing = any(fault.kind in REPLACING for fault in fired)
        if endpoint == "token" and method == "POST" and not failing:
            form = parse_qs(body.decode("utf-8", "replace"))
            if form.get("grant_type") == ["refresh_token"]:
                revoking = self.faults.take(
                    platform, {"token"}, "/oauth/token", ("revoke_refresh_token",)
                )
                if revoking:
                    fired += revoking
                    self._revoke_refresh(platform, form.get("refresh_token", [""])[0])
        reply = self._fault_reply(platform, fired, None)
        if reply is None:
            uri = f"{self.base_url}/{platform}/oauth/{endpoint}" + (
                f"?{query}" if query else ""
            )
            plain_headers = {key: value for key, value in headers.items()}
            if endpoint == "authorize":
                reply = self._authorize(
                    platform, method, uri, query, plain_headers, body
                )
            elif endpoint == "token":
                reply = self._token(platform, method, uri, plain_headers, body)
            else:
                reply = self._revoke(platform, method, uri, plain_headers, body)
        self._deliver(platform, {endpoint}, f"/oauth/{endpoint}", reply, fired)
        self.stats.record(platform, endpoint, reply.status, fired)
        return reply

    def _revoke_refresh(self, platform: str, refresh_token: str) -> None:
        with self.store.lock:
            record = self.store.refresh.get(refresh_token)
            if record is not None and record.grant.platform == platform:
                self.store.revoke_grant(record.grant)
                log.info(
                    "Fault: revoked a %s refresh token before the refresh", platform
                )

    def _pick_user(self, platform: str, query: dict) -> int | None:
        users = self.users[platform]
        choice = (query.get("sandbox_user") or [None])[0]
        if choice is not None:
            if choice.isdigit() and int(choice) < len(users):
                return int(choice)
            for index, user in enumerate(users):
                if self.apis[platform].matches_hint(user, choice):
                    return index
            return None
        hint = (query.get("login_hint") or [None])[0]
        if hint:
            for index, user in enumerate(users):
                if self.apis[platform].matches_hint(user, hint):
                    return index
        return self.consent_user.get(platform, 0)

    def _authorize(self, platform, method, uri, query, headers, body) -> Reply:
        server = self.servers[platform]
        try:
            scopes, info = server.validate_authorization_request(
                uri, "GET", None, headers
            )
        except oauth_errors.FatalClientError as exc:
            return html_reply(
                400,
                "Authorization failed",
                f"<h1>Authorization failed</h1><p>{html.escape(exc.error)}: "
                f"{html.escape(exc.description or '')}</p>",
            )
        except oauth_errors.OAuth2Error as exc:
            return Reply(302, {"Location": exc.in_uri(exc.redirect_uri)})
        params = parse_qs(query)
        if method == "POST":
            params.update(parse_qs(body.decode("utf-8", "replace")))
        user_index = self._pick_user(platform, params)
        if user_index is None:
            names = ", ".join(
                f"{index} ({user['login']})"
                for index, user in enumerate(self.users[platform])
            )
            return html_reply(
                400,
                "Unknown sandbox user",
                f"<p>sandbox_user names no {platform} sandbox user; choose one of "
                f"{html.escape(names)}.</p>",
            )
        if method == "POST" and (params.get("decision") or [""])[0] != "approve":
            location = add_params_to_uri(
                info["redirect_uri"],
                [("error", "access_denied")]
                + ([("state", info["state"])] if info["state"] else []),
            )
            return Reply(302, {"Location": location})
        if method == "POST" or self.auto_consent:
            response_headers, _, status = server.create_authorization_response(
                uri, "GET", None, headers, scopes, credentials={"user": user_index}
            )
            log.info("Consent given on %s for sandbox user %d", platform, user_index)
            location = response_headers["Location"]
            if method == "GET" and self.deliver_callback:
                if deliver_callback(location):
                    return html_reply(
                        200,
                        "Consent given",
                        "<p>Consent given. The sandbox sent the authorization "
                        "response to the redirect URI; this tab may be closed.</p>",
                    )
            return Reply(status, {"Location": location})
        return self._consent_page(platform, uri, scopes, user_index)

    def _consent_page(
        self, platform: str, uri: str, scopes: list, selected: int
    ) -> Reply:
        options = "".join(
            f"<label><input type='radio' name='sandbox_user' value='{index}'"
            f"{' checked' if index == selected else ''}> {html.escape(user['login'])}"
            f" ({html.escape(str(user['name']))})</label><br>"
            for index, user in enumerate(self.users[platform])
        )
        scope_items = "".join(f"<li>{html.escape(scope)}</li>" for scope in scopes)
        content = (
            f"<h1>Sandbox {html.escape(platform)}: authorize access</h1>"
            "<p>The application "
            f"<code>{html.escape(self.settings[platform].client_id)}</code>"
            f" requests:</p><ul>{scope_items}</ul>"
            f"<form method='post' action='{html.escape(uri)}'>"
            f"<fieldset><legend>Sign in as</legend>{options}</fieldset>"
            "<button type='submit' name='decision' value='approve'>Approve</button> "
            "<button type='submit' name='decision' value='deny'>Deny</button></form>"
        )
        return html_reply(200, "Sandbox consent", content)

    def _token(self, platform, method, uri, headers, body) -> Reply:
        if method != "POST":
            return json_reply(
                405, {"error": "invalid_request", "error_description": "Use POST."}
            )
        server = self.servers[platform]
        response_headers, response_body, status = server.create_token_response(
            uri, "POST", body.decode("utf-8", "replace"), headers
        )
        payload = json.loads(response_body) if response_body else {}
        if status != 200 and self.settings[platform].token_error_with_200:
            payload = self._github_error(payload, body)
            status = 200
        reply_headers = {
            key: value
            for key, value in response_headers.items()
            if key.lower() != "content-type"
        }
        accept = headers.get("Accept", headers.get("accept", ""))
        if platform == "github" and "json" not in accept:
            # GitHub's token endpoint returns a form-encoded body unless the
            # request's Accept header names JSON.
            encoded = urlencode({key: str(value) for key, value in payload.items()})
            return Reply(
                status,
                {**reply_headers, "Content-Type": "application/x-www-form-urlencoded"},
                encoded.encode(),
            )
        return json_reply(status, payload, reply_headers)

    def _github_error(self, payload: dict, body: bytes) -> dict:
        grant_type = (
            parse_qs(body.decode("utf-8", "replace")).get("grant_type") or [None]
        )[0]
        error = payload.get("error", "invalid_request")
        code = GITHUB_ERROR_CODES.get((error, grant_type)) or GITHUB_ERROR_CODES.get(
            (error, None), error
        )
        if (
            error == "invalid_request"
            and "redirect" in (payload.get("error_description") or "").lower()
        ):
            code = "redirect_uri_mismatch"
        return {
            "error": code,
            "error_description": payload.get("error_description")
            or code.replace("_", " "),
            "error_uri": "https://docs.github.com/apps/oauth-apps/maintaining-oauth-apps/"
            "troubleshooting-oauth-app-access-token-request-errors",
        }

    def _revoke(self, platform, method, uri, headers, body) -> Reply:
        if not self.settings[platform].revoke_supported:
            return json_reply(
                404,
                {
                    "error": "not_found",
                    "message": f"{platform} has no revocation endpoint",
                },
            )
        if method == "DELETE" and platform == "github":
            return self._github_revoke(headers, body)
        if method != "POST":
            return json_reply(
                405, {"error": "invalid_request", "error_description": "Use POST."}
            )
        response_headers, response_body, status = self.servers[
            platform
        ].create_revocation_response(
            uri, "POST", body.decode("utf-8", "replace"), headers
        )
        return Reply(
            status, dict(response_headers), (response_body or "").encode("utf-8")
        )

    def _github_revoke(self, headers, body) -> Reply:
        """Revoke a token as GitHub's DELETE /applications/{client_id}/token does."""
        expected = (
            self.settings["github"].client_id,
            self.settings["github"].client_secret,
        )
        if basic_credentials(headers) != expected:
            return json_reply(
                401,
                {
                    "message": "Requires authentication",
                    "documentation_url": "https://docs.github.com/rest",
                },
            )
        try:
            token = json.loads(body or b"{}").get("access_token", "")
        except (ValueError, AttributeError):
            token = ""
        with self.store.lock:
            record = self.store.access.get(token)
            if record is None or record.grant.platform != "github":
                return json_reply(
                    404,
                    {
                        "message": "Not Found",
                        "documentation_url": "https://docs.github.com/rest",
                    },
                )
            self.store.revoke_grant(record.grant)
        return Reply(204)

    # API --------------------------------------------------------------------
    def _find_route(self, api: PlatformApi, path: str):
        """Return (route, path parameters), or (None, {}) when no route matches."""
        for candidate in api.routes:
            match = candidate.pattern.match(path)
            if match:
                params = {k: v for k, v in match.groupdict().items() if v is not None}
                return candidate, params
        return None, {}

    def _bearer(self, headers) -> str | None:
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() in ("bearer", "token", "oauth") and token.strip():
            return token.strip()
        return None

    def _api(self, platform, method, path, query, headers, body) -> Reply:
        api = self.apis[platform]
        if platform == "github" and method == "DELETE":
            if path.startswith("/applications/"):
                reply = self._github_revoke(headers, body)
                self.stats.record(platform, "revoke", reply.status, [])
                return reply
        if path == "/oauth2/validate" and self.settings[platform].validate_supported:
            found, path_params, route_name = None, {}, "validate"
        else:
            found, path_params = self._find_route(api, path)
            route_name = found.name if found else "unknown"
        fired: list[Fault] = []
        if found is None and route_name != "validate":
            reply = self._to_reply(api.error(404, f"Not found: {path}", "notFound"))
        elif method != "GET":
            reply = self._to_reply(api.error(405, f"Method {method} is not allowed"))
        else:
            record, reply = self._authenticate(platform, headers, route_name)
            if reply is None and route_name == "validate":
                reply = self._validate_reply(platform, record)
            elif reply is None:
                call = ApiRequest(
                    platform=platform,
                    method=method,
                    path=path,
                    query=parse_qs(query, keep_blank_values=True),
                    headers=headers,
                    api_root=f"{self.base_url}/{platform}/api",
                    user=self.users[platform][record.grant.user_index],
                    user_index=record.grant.user_index,
                    scopes=frozenset(record.grant.scopes),
                    client_id=record.grant.client_id,
                    expires_in=record.expires_in(time.time()),
                    route_name=route_name,
                    path_params=path_params,
                )
                reply = self._call_route(api, found, call, record, fired)
        self._deliver(platform, {route_name}, path, reply, fired)
        self.stats.record(platform, route_name, reply.status, fired)
        log.debug("%s %s/api%s -> %d", method, platform, path, reply.status)
        return reply

    def _authenticate(
        self, platform: str, headers, route_name: str
    ) -> tuple[AccessToken | None, Reply | None]:
        """Return (token record, None), or (None, the 401 reply) for a bad token."""
        token_value = self._bearer(headers)
        with self.store.lock:
            record = self.store.access.get(token_value or "")
            status = record.status(time.time()) if record else "missing"
        if record is not None and record.grant.platform == platform:
            if status == "valid":
                return record, None
        if route_name == "validate":
            return None, json_reply(
                401, {"status": 401, "message": "invalid access token"}
            )
        if status == "expired":
            message = "The access token expired"
        else:
            message = "Invalid access token"
        reply = self._to_reply(self.apis[platform].unauthorized(message))
        reply.headers["WWW-Authenticate"] = invalid_token_challenge(message)
        return None, reply

    def _validate_reply(self, platform: str, record: AccessToken) -> Reply:
        """Return Twitch's GET /oauth2/validate response for a valid token."""
        grant = record.grant
        user = self.users[platform][grant.user_index]
        expires_in = record.expires_in(time.time())
        body = {
            "client_id": grant.client_id,
            "login": user["login"],
            "scopes": list(grant.scopes),
            "user_id": user["id"],
            "expires_in": 0 if expires_in is None else expires_in,
        }
        return json_reply(200, body)

    def _call_route(
        self,
        api: PlatformApi,
        found,
        call: ApiRequest,
        record: AccessToken,
        fired: list[Fault],
    ) -> Reply:
        """Check headers, scope, rate limit and faults, then run the route handler."""
        grant = record.grant
        precheck = api.check_request(call.headers, grant.client_id)
        if precheck is not None:
            return self._to_reply(precheck)
        if found.scope and found.scope not in grant.scopes:
            denied = api.error(
                403, "Insufficient client scope", "insufficientPermissions"
            )
            return self._to_reply(denied)

        allowed, window = self.limiter.check(
            call.platform, grant.client_id, grant.user_index
        )
        limit_headers = api.rate_limit_headers(window) if window else {}
        if not allowed:
            reply = self._to_reply(api.rate_limited_response(window))
            reply.headers.update(limit_headers)
            reply.headers["Retry-After"] = str(max(1, math.ceil(window["reset_after"])))
            return reply

        fired += self.faults.take(
            call.platform, {call.route_name}, call.path, API_FAULTS
        )
        faulted = self._fault_reply(call.platform, fired, record)
        if faulted is not None:
            faulted.headers.update(limit_headers)
            return faulted

        try:
            response = found.handler(call)
        except ApiError as exc:
            response = api.error(exc.status, exc.message, exc.reason)
        reply = self._to_reply(response)
        reply.headers.update(limit_headers)
        if getattr(api, "uses_etags", False) and reply.status == 200:
            return self._conditional(api, call, record, reply, window)
        return reply

    def _conditional(
        self, api, call: ApiRequest, record, reply: Reply, window
    ) -> Reply:
        """Add an ETag; return 304 when If-None-Match carries it (GitHub)."""
        etag = 'W/"' + hashlib.sha256(reply.body).hexdigest()[:40] + '"'
        reply.headers["ETag"] = etag
        sent = [
            value.strip()
            for value in (call.headers.get("If-None-Match") or "").split(",")
        ]
        if etag not in sent and "*" not in sent:
            return reply
        # GitHub does not count a 304 against the rate limit.
        grant = record.grant
        self.limiter.refund(call.platform, grant.client_id, grant.user_index)
        headers = {"ETag": etag}
        if window:
            refunded = {**window, "used": window["used"] - 1}
            refunded["remaining"] = window["remaining"] + 1
            headers.update(api.rate_limit_headers(refunded))
        return Reply(304, headers)

    def _to_reply(self, response: ApiResponse) -> Reply:
        data = response.encoded()
        headers = dict(response.headers)
        if response.body is not None and not isinstance(response.body, bytes):
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return Reply(response.status, headers, data)

    def _fault_reply(
        self, platform: str, fired: list[Fault], record: AccessToken | None
    ) -> Reply | None:
        """Return the response a replacing fault sends, or None when none fired."""
        api = self.apis[platform]
        for fault in fired:
            if fault.kind not in REPLACING:
                continue
            log.info(
                "Fault %s fired on %s (fault id %d)", fault.kind, platform, fault.id
            )
            if fault.kind == "rate_limit":
                # Status 403 imitates GitHub's secondary rate limit.
                status = fault.status or 429
                message = (
                    "You have exceeded a secondary rate limit."
                    if status == 403
                    else "Too Many Requests"
                )
                reply = self._to_reply(api.error(status, message, "rateLimitExceeded"))
                reply.headers["Retry-After"] = retry_after_value(fault)
                return reply
            if fault.kind == "server_error":
                status = fault.status or 503
                reply = self._to_reply(
                    api.error(
                        status, "The service is temporarily unavailable", "backendError"
                    )
                )
                if fault.status in (None, 503):
                    reply.headers["Retry-After"] = retry_after_value(fault)
                return reply
            if fault.kind == "forbidden":
                return self._to_reply(api.error(403, "Forbidden", "forbidden"))
            if fault.kind == "expire_token" and record is not None:
                with self.store.lock:
                    record.expires_at = time.time() - 1
                reply = self._to_reply(api.unauthorized("The access token expired"))
                reply.headers["WWW-Authenticate"] = invalid_token_challenge(
                    "The access token expired"
                )
                return reply
        return None

    def _deliver(
        self, platform: str, names: set[str], path: str, reply: Reply, fired: list
    ) -> None:
        """Apply the faults that change delivery: a delay and a truncated body."""
        if reply.status == 200 and len(reply.body) > 1:
            cuts = self.faults.take(platform, names, path, ("truncate",))
            if cuts:
                fired += cuts
                reply.body = reply.body[: len(reply.body) // 2]
        for fault in fired:
            if fault.kind == "slow":
                reply.delay += fault.delay

    # Admin ------------------------------------------------------------------
    def _admin(self, method: str, path: str, query: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return json_reply(400, {"error": "The request body is not valid JSON."})
        params = {key: values[0] for key, values in parse_qs(query).items()}
        try:
            return self._admin_action(method, path.rstrip("/"), params, payload)
        except KeyError as exc:
            return json_reply(
                400, {"error": f"Missing field {exc.args[0]!r} in the request."}
            )
        except (ValueError, TypeError) as exc:
            return json_reply(400, {"error": str(exc)})

    def _admin_action(
        self, method: str, path: str, params: dict, payload: dict
    ) -> Reply:
        if path == "/_sandbox/health":
            return json_reply(200, {"ok": True})
        if path == "/_sandbox/stats":
            if method == "DELETE":
                self.stats.reset()
                return json_reply(200, {"reset": True})
            snapshot = self.stats.snapshot()
            snapshot["oauth"] = dict(self.store.counters)
            return json_reply(200, snapshot)
        if path == "/_sandbox/faults":
            if method == "POST":
                options = dict(payload)
                platform = options.pop("platform", "*")
                if platform != "*":
                    self.check_platform(platform)
                kind = options.pop("kind", None)
                endpoint = options.pop("endpoint", "*")
                fault = self.faults.add(platform, kind, endpoint, **options)
                return json_reply(201, {"id": fault.id})
            if method == "DELETE":
                fault_id = int(params["id"]) if "id" in params else None
                removed = self.faults.clear(params.get("platform"), fault_id)
                return json_reply(200, {"removed": removed})
            return json_reply(200, {"faults": self.faults.list()})
        if path == "/_sandbox/rate-limits":
            if method == "POST":
                self.set_rate_limit(
                    payload["platform"],
                    payload.get("requests"),
                    float(payload.get("per_seconds", 60.0)),
                    payload.get("counted_per"),
                )
            rules = {name: self.limiter.rule(name) for name in self.settings}
            return json_reply(
                200, {name: rule and rule.__dict__ for name, rule in rules.items()}
            )
        if path == "/_sandbox/users":
            return json_reply(200, self.user_list())
        if path == "/_sandbox/consent-user" and method == "POST":
            self.set_consent_user(payload["platform"], int(payload["user"]))
            return json_reply(
                200, {"platform": payload["platform"], "user": int(payload["user"])}
            )
        if path == "/_sandbox/items" and method == "POST":
            total = self.add_items(
                payload["platform"],
                int(payload["user"]),
                payload["endpoint"],
                int(payload.get("count", 1)),
            )
            return json_reply(200, {"total": total})
        if path == "/_sandbox/expire-tokens" and method == "POST":
            count = self.store.expire_access_tokens(payload.get("platform"))
            return json_reply(200, {"expired": count})
        if path == "/_sandbox/token-lifetime" and method == "POST":
            self.set_token_lifetime(float(payload["seconds"]))
            return json_reply(200, {"seconds": float(payload["seconds"])})
        return json_reply(404, {"error": f"No admin route {method} {path}"})
