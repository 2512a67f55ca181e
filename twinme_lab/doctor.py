"""Set-up checks: key, database cipher, workspace, platform apps and their rules.

Each check returns a :class:`Finding` with a level. ``ok`` passed, ``info`` is
something to know (such as the redirect URI to register), and ``warn`` works with
a caveat. ``fail`` must be fixed, and the CLI then exits non-zero.
"""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from . import keys, platforms, store
from .errors import TwinMeError
from .platforms import config
from .workspace import DB_NAME, Workspace, read_meta, resolve_path

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    """The result of one check."""

    check: str
    level: str
    message: str
    platform: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def check_cipher() -> Finding:
    """Check that DuckDB's cipher extension loads."""
    try:
        con = store.new_connection()
    except TwinMeError as exc:
        return Finding("cipher", FAIL, str(exc))
    con.close()
    return Finding("cipher", OK, "DuckDB's cipher extension (httpfs) loads.")


def check_key(workspace_id: str | None) -> list[Finding]:
    """Check that a key is found and, when it comes from a file, is private."""
    findings = []
    named = os.environ.get(keys.KEY_FILE_ENV)
    path = Path(named) if named else None
    if path is None and workspace_id and not os.environ.get(keys.KEY_ENV):
        path = keys.default_key_file(workspace_id)
    if path is not None and path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            findings.append(
                Finding(
                    "key",
                    FAIL,
                    f"The key file {path} has mode {mode:o}; run 'chmod 600 {path}'.",
                )
            )
    try:
        key = keys.find_master_key(workspace_id)
    except TwinMeError as exc:
        findings.append(Finding("key", FAIL, str(exc)))
        return findings
    if not findings:
        findings.append(Finding("key", OK, f"Key {key.key_id} found in {key.origin}."))
    return findings


def check_workspace(path) -> tuple[list[Finding], Workspace | None]:
    """Check that the workspace opens with the key and its schema is current."""
    from .rotation import pending_path

    root = resolve_path(path)
    try:
        meta = read_meta(root)
    except TwinMeError as exc:
        return [Finding("workspace", FAIL, str(exc))], None
    findings = check_key(meta["workspace_id"])
    if not (root / DB_NAME).is_file():
        findings.append(Finding("workspace", FAIL, f"{root} has no {DB_NAME}."))
        return findings, None
    pending = pending_path(meta["workspace_id"])
    if pending.exists():
        findings.append(
            Finding(
                "rotation",
                FAIL,
                f"An interrupted key rotation is pending "
                f"({pending}); run any twinme-lab command on the workspace "
                "(for example 'twinme-lab connections') to finish it.",
            )
        )
    if any(f.level == FAIL for f in findings):
        return findings, None
    try:
        workspace = Workspace(
            root, meta["workspace_id"], keys.find_master_key(meta["workspace_id"])
        )
        with workspace.connect() as con:
            version = store.schema_version(con)
    except TwinMeError as exc:
        findings.append(Finding("workspace", FAIL, str(exc)))
        return findings, None
    latest = store.migration_files()[-1][0]
    level = OK if version >= latest else WARN
    findings.append(
        Finding(
            "workspace",
            level,
            f"{root} opens; schema version {version} of "
            f"{latest}" + ("." if level == OK else "; any command migrates it."),
        )
    )
    return findings, workspace


def check_platform(platform: platforms.Platform, in_use: bool) -> list[Finding]:
    """Check one platform's credentials and redirect URI, and list its rules."""
    findings = []
    name = platform.name
    try:
        redirect = config.redirect_uri_for(platform)
    except config.ConfigError as exc:
        return [Finding("redirect_uri", FAIL, str(exc), name)]
    try:
        resolved = config.resolve(platform)
    except config.ConfigError as exc:
        level = FAIL if in_use else WARN
        findings.append(Finding("client", level, str(exc), name))
    else:
        where = "the sandbox" if resolved.sandbox else resolved.token_url
        findings.append(
            Finding("client", OK, f"Client id set; tokens come from {where}.", name)
        )
    findings.append(
        Finding(
            "redirect_uri",
            INFO,
            f"Register this redirect URI with {platform.display_name}: {redirect}",
            name,
        )
    )
    if platform.requires_user_agent and not config.setting(
        platform.env_prefix() + "USER_AGENT"
    ):
        findings.append(
            Finding(
                "user_agent",
                WARN,
                f"Set {platform.env_prefix()}USER_AGENT to "
                "'platform:app-id:version (by /u/your-username)'; "
                f"{platform.display_name} throttles generic User-Agent strings.",
                name,
            )
        )
    for note in platform.doctor_notes:
        findings.append(Finding("rules", WARN, note, name))
    limit = platform.rate_limit
    if limit.counted_per == "app":
        findings.append(
            Finding(
                "rules",
                INFO,
                f"{platform.display_name} allows about "
                f"{limit.requests} requests per {limit.per_seconds:g} s for the "
                "whole app, shared by all participants.",
                name,
            )
        )
    return findings


def check_sandbox() -> list[Finding]:
    """Check TWINME_SANDBOX_URL and its CA when set."""
    if not os.environ.get(config.SANDBOX_URL_ENV):
        return []
    try:
        url = config.sandbox_url()
        config.sandbox_ca()
    except config.ConfigError as exc:
        return [Finding("sandbox", FAIL, str(exc))]
    return [
        Finding(
            "sandbox",
            WARN,
            f"Every platform points at the sandbox {url}; "
            "connections made now are sandbox connections.",
        )
    ]


def run(path=None, platform_names: list[str] | None = None) -> list[Finding]:
    """Run every check; a platform with connections must have its client set."""
    findings = [check_cipher()]
    workspace_findings, workspace = check_workspace(path)
    findings.extend(workspace_findings)
    findings.extend(check_sandbox())
    in_use: dict[str, int] = {}
    if workspace is not None:
        with workspace.connect() as con:
            rows = con.execute(
                "SELECT platform, count(*) FILTER (WHERE status = 'requires_reauth') "
                "FROM connections WHERE status <> 'revoked' GROUP BY platform"
            ).fetchall()
        for name, reauth in rows:
            in_use[name] = reauth
    names = platform_names or list(platforms.PLATFORM_NAMES)
    for name in names:
        platform = platforms.get(name)
        findings.extend(
            check_platform(platform, name in in_use or bool(platform_names))
        )
        if in_use.get(name):
            findings.append(
                Finding(
                    "connections",
                    WARN,
                    f"{in_use[name]} {platform.display_name} "
                    "connection(s) need reconnecting; see 'twinme-lab "
                    "connections'.",
                    name,
                )
            )
    return findings


def must_fix(findings: list[Finding]) -> bool:
    """Return True when any finding is a failure."""
    return any(finding.level == FAIL for finding in findings)
