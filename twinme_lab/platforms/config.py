"""Resolve a platform's URLs, client credentials and TLS trust from the environment.

Every URL can be overridden with ``TWINME_<PLATFORM>_AUTHORIZE_URL``,
``_TOKEN_URL``, ``_REVOKE_URL``, ``_VALIDATE_URL`` and ``_API_BASE`` (GitHub
Enterprise Server, regional endpoints, another provider standing in). Client
credentials come from ``TWINME_<PLATFORM>_CLIENT_ID`` and ``_CLIENT_SECRET``, and
the redirect URI from ``_REDIRECT_URI``. Each variable may also be set in a
``.env`` file in the working directory; the environment wins.

With ``TWINME_SANDBOX_URL`` set to a loopback HTTPS URL, every platform points at
the local sandbox instead, with the sandbox's public client pair
``sandbox-<name>-client`` / ``sandbox-<name>-secret`` and the sandbox's CA
certificate from ``TWINME_SANDBOX_CA``. Overrides and real credentials are ignored
then, so a real token or secret is never sent to the sandbox.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UsageError
from .base import Platform

SANDBOX_URL_ENV = "TWINME_SANDBOX_URL"
SANDBOX_CA_ENV = "TWINME_SANDBOX_CA"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8086/oauth/callback"
USER_AGENT = "twinme-lab/0.1 (digital-footprint research workbench)"


class ConfigError(UsageError):
    """A platform setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class ResolvedPlatform:
    """A platform with its URLs, credentials and TLS trust for this process."""

    platform: Platform
    authorize_url: str
    token_url: str
    revoke_url: str | None
    validate_url: str | None
    api_base: str
    client_id: str
    client_secret: str = ""
    redirect_uri: str = DEFAULT_REDIRECT_URI
    # A CA bundle path, or True for the default trust store (REQUESTS_CA_BUNDLE).
    verify: str | bool = True
    sandbox: bool = False
    user_agent: str = USER_AGENT

    def __repr__(self) -> str:
        return (
            f"ResolvedPlatform({self.platform.name!r}, sandbox={self.sandbox}, "
            f"token_url={self.token_url!r})"
        )

    @property
    def name(self) -> str:
        return self.platform.name

    def api_url(self, path: str) -> str:
        """Return the absolute URL of an API path under this platform's base."""
        return self.api_base.rstrip("/") + path

    def origin(self) -> str:
        """Return where tokens of this platform are valid: 'sandbox' or 'platform'."""
        return "sandbox" if self.sandbox else "platform"


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Return the variables of a ``.env`` file (empty when there is none)."""
    target = path or Path.cwd() / ".env"
    if not target.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(target).items() if v is not None}


def setting(name: str, dotenv: dict[str, str] | None = None) -> str | None:
    """Return an environment variable, falling back to the ``.env`` file."""
    value = os.environ.get(name)
    if value:
        return value
    if dotenv is None:
        dotenv = read_dotenv()
    return dotenv.get(name) or None


def sandbox_url() -> str | None:
    """Return the checked sandbox URL, or None when no sandbox is configured."""
    value = os.environ.get(SANDBOX_URL_ENV)
    if not value:
        return None
    return check_loopback_url(value, SANDBOX_URL_ENV)


def check_loopback_url(url: str, variable: str, schemes=("https",)) -> str:
    """Return ``url`` when it is a loopback IP literal URL, else raise naming it."""
    parts = urlsplit(url)
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        address = None
    if parts.scheme not in schemes or address is None or not address.is_loopback:
        raise ConfigError(
            f"{variable}={url!r} is invalid: it must be a "
            f"{' or '.join(schemes)} URL on a loopback IP address such as "
            "https://127.0.0.1:8443."
        )
    return url.rstrip("/")


def redirect_uri_for(platform: Platform, dotenv: dict[str, str] | None = None) -> str:
    """Return the redirect URI a platform's app must have registered."""
    variable = platform.env_prefix() + "REDIRECT_URI"
    value = setting(variable, dotenv) or DEFAULT_REDIRECT_URI
    parts = urlsplit(value)
    if parts.scheme == "http":
        check_loopback_url(value, variable, schemes=("http",))
    elif parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            f"{variable}={value!r} is invalid: use http://127.0.0.1:PORT/PATH or "
            "an https:// URL."
        )
    return value


def sandbox_ca() -> str | bool:
    """Return the sandbox CA certificate path, or True to use the default trust."""
    path = os.environ.get(SANDBOX_CA_ENV)
    if not path:
        return True
    if not Path(path).is_file():
        raise ConfigError(f"{SANDBOX_CA_ENV}={path!r} is not a file.")
    return path


def resolve(platform: Platform, require_credentials: bool = True) -> ResolvedPlatform:
    """Resolve a platform for this process, from the sandbox or the environment.

    Raises :class:`ConfigError` naming the variable and the redirect URI to
    register when a client id or secret is missing.
    """
    dotenv = read_dotenv()
    redirect_uri = redirect_uri_for(platform, dotenv)
    base = sandbox_url()
    if base is not None:
        oauth = f"{base}/{platform.name}/oauth"
        return ResolvedPlatform(
            platform=platform,
            authorize_url=f"{oauth}/authorize",
            token_url=f"{oauth}/token",
            revoke_url=f"{oauth}/revoke" if platform.revoke_url else None,
            validate_url=f"{oauth}/validate" if platform.validate_url else None,
            api_base=f"{base}/{platform.name}/api",
            client_id=f"sandbox-{platform.name}-client",
            client_secret=f"sandbox-{platform.name}-secret",
            redirect_uri=redirect_uri,
            verify=sandbox_ca(),
            sandbox=True,
        )

    prefix = platform.env_prefix()
    client_id = setting(prefix + "CLIENT_ID", dotenv) or ""
    client_secret = setting(prefix + "CLIENT_SECRET", dotenv) or ""
    if require_credentials:
        missing = [
            prefix + suffix
            for suffix, value in (
                ("CLIENT_ID", client_id),
                ("CLIENT_SECRET", client_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set. Register an app with "
                f"{platform.display_name} using the redirect URI {redirect_uri}, "
                "then set the variables (or put them in a .env file)."
            )

    def url(suffix: str, default: str | None) -> str | None:
        return setting(prefix + suffix, dotenv) or default

    user_agent = setting(prefix + "USER_AGENT", dotenv) or USER_AGENT
    return ResolvedPlatform(
        platform=platform,
        authorize_url=url("AUTHORIZE_URL", platform.authorize_url),
        token_url=url("TOKEN_URL", platform.token_url),
        revoke_url=url("REVOKE_URL", platform.revoke_url),
        validate_url=url("VALIDATE_URL", platform.validate_url),
        api_base=url("API_BASE", platform.api_base),
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        verify=True,
        sandbox=False,
        user_agent=user_agent,
    )
