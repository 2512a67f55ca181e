"""Write the skeleton of a new platform: its module, its test and a sample config.

The files follow the existing platform modules. The generated module imports and
passes its generated test as written, and marks with TODO each value that must
come from the platform's documentation. Registering the platform means adding its
name to ``PLATFORM_NAMES`` in ``twinme_lab/platforms/__init__.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UsageError

NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

_MODULE = '''"""{display} API: TODO: say what the connector reads."""

from __future__ import annotations

from .base import Endpoint, Platform, RateLimit, Scope

PLATFORM = Platform(
    name="{name}",
    display_name="{display}",
    # TODO: the platform's OAuth 2.0 endpoints.
    authorize_url="https://{name}.example/oauth/authorize",
    token_url="https://{name}.example/oauth/token",
    revoke_url=None,
    api_base="https://api.{name}.example",
    identity_path="/me",
    scopes=(
        # TODO: one Scope per scope, naming the endpoints that use it.
        Scope("read", ("me",)),
    ),
    endpoints=(Endpoint("me", "/me", "none"),),
    # TODO: the documented limit, and whether it counts per token or per app.
    rate_limit=RateLimit(60, 60, "token", source="TODO"),
    issues_refresh_tokens=True,
    pkce=True,
    client_auth="body",
    extra_authorize_params={{}},
    brand_colour="#444444",
    reveals="TODO: what the participant's data shows.",
    insights="TODO: the features computed from it.",
)
'''

_TEST = '''"""Checks of the {display} platform description."""

from urllib.parse import urlsplit

from twinme_lab.platforms.{name} import PLATFORM


def test_{name}_urls_use_https():
    for url in (PLATFORM.authorize_url, PLATFORM.token_url, PLATFORM.api_base):
        assert urlsplit(url).scheme == "https"


def test_{name}_scopes_name_endpoints():
    endpoint_names = {{endpoint.name for endpoint in PLATFORM.endpoints}}
    for scope in PLATFORM.scopes:
        assert scope.used_by
        assert set(scope.used_by) <= endpoint_names


def test_{name}_rate_limit_is_counted():
    assert PLATFORM.rate_limit.counted_per in ("token", "app")
    assert PLATFORM.rate_limit.requests > 0
'''

_CONFIG = """# {display} app credentials for Twin Me Lab. Copy into .env and fill in.
# Register this redirect URI with {display}: http://127.0.0.1:8086/oauth/callback
TWINME_{upper}_CLIENT_ID=
TWINME_{upper}_CLIENT_SECRET=
# TWINME_{upper}_REDIRECT_URI=http://127.0.0.1:8086/oauth/callback
# TWINME_{upper}_AUTHORIZE_URL=
# TWINME_{upper}_TOKEN_URL=
# TWINME_{upper}_API_BASE=
"""


def scaffold(
    name: str, root: Path | str = ".", display_name: str | None = None
) -> list[Path]:
    """Write the three files for platform ``name`` under ``root``; never overwrite."""
    if not NAME.match(name or ""):
        raise UsageError(
            f"Invalid platform name {name!r}: use 2 to 31 lower-case letters, digits "
            "or '_', starting with a letter."
        )
    root = Path(root)
    display = display_name or name.replace("_", " ").title()
    values = {"name": name, "display": display, "upper": name.upper()}
    targets = {
        root / "twinme_lab" / "platforms" / f"{name}.py": _MODULE,
        root / "tests" / f"test_platform_{name}.py": _TEST,
        root / "config" / f"{name}.env.example": _CONFIG,
    }
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise UsageError(
            f"Not written, because these files exist: {', '.join(existing)}."
        )
    for path, template in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return list(targets)
