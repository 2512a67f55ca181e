"""Set-up checks: what passes, what must be fixed, and the CLI exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from twinme_lab import doctor, keys

CLI = [
    sys.executable,
    "-c",
    "import sys; from twinme_lab.cli import main; sys.exit(main(sys.argv[1:]))",
]


@pytest.fixture(autouse=True)
def clean_platform_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("TWINME_") and name != keys.CONFIG_DIR_ENV:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def levels(findings, check, platform=None):
    return [f.level for f in findings if f.check == check and f.platform == platform]


def test_healthy_workspace_passes(workspace, monkeypatch):
    for name in (
        "spotify",
        "github",
        "discord",
        "linkedin",
        "youtube",
        "reddit",
        "twitch",
    ):
        monkeypatch.setenv(f"TWINME_{name.upper()}_CLIENT_ID", f"{name}-id")
        monkeypatch.setenv(f"TWINME_{name.upper()}_CLIENT_SECRET", f"{name}-secret")
    findings = doctor.run(workspace.root)
    assert not doctor.must_fix(findings)
    assert levels(findings, "cipher") == ["ok"]
    assert levels(findings, "key") == ["ok"]
    assert levels(findings, "workspace") == ["ok"]
    assert levels(findings, "client", "spotify") == ["ok"]


def test_platform_rules_reported(workspace):
    findings = doctor.run(workspace.root)
    messages = " ".join(f.message for f in findings)
    assert "at most five users" in messages
    assert "expire after 7 days" in messages
    assert "Reddit's approval" in messages
    redirect = [f for f in findings if f.check == "redirect_uri"]
    assert len(redirect) == 7
    assert all("http://127.0.0.1:8086/oauth/callback" in f.message for f in redirect)
    assert levels(findings, "user_agent", "reddit") == ["warn"]


def test_missing_clients_warn_until_used(workspace):
    findings = doctor.run(workspace.root)
    assert levels(findings, "client", "github") == ["warn"]
    assert not doctor.must_fix(findings)
    chosen = doctor.run(workspace.root, ["github"])
    assert levels(chosen, "client", "github") == ["fail"]
    assert doctor.must_fix(chosen)


def test_missing_key_must_be_fixed(workspace):
    keys.default_key_file(workspace.workspace_id).unlink()
    findings = doctor.run(workspace.root)
    assert "fail" in levels(findings, "key")
    assert doctor.must_fix(findings)


def test_readable_key_file_must_be_fixed(workspace):
    path = keys.default_key_file(workspace.workspace_id)
    path.chmod(0o644)
    findings = doctor.run(workspace.root)
    failing = [f for f in findings if f.check == "key" and f.level == "fail"]
    assert failing
    assert "chmod 600" in failing[0].message


def test_wrong_key_must_be_fixed(workspace, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, keys.generate_key())
    findings = doctor.run(workspace.root)
    assert levels(findings, "workspace") == ["fail"]


def test_missing_workspace_must_be_fixed(tmp_path):
    findings = doctor.run(tmp_path / "absent")
    assert levels(findings, "workspace") == ["fail"]


def test_invalid_redirect_must_be_fixed(workspace, monkeypatch):
    monkeypatch.setenv("TWINME_TWITCH_REDIRECT_URI", "http://lab.example.edu/cb")
    findings = doctor.run(workspace.root)
    assert levels(findings, "redirect_uri", "twitch") == ["fail"]


def test_invalid_sandbox_url_must_be_fixed(workspace, monkeypatch):
    monkeypatch.setenv("TWINME_SANDBOX_URL", "https://example.org:8443")
    findings = doctor.run(workspace.root)
    assert levels(findings, "sandbox") == ["fail"]


def test_pending_rotation_must_be_fixed(workspace):
    from twinme_lab.rotation import pending_path

    pending_path(workspace.workspace_id).write_text("{}")
    findings = doctor.run(workspace.root)
    assert levels(findings, "rotation") == ["fail"]


def test_cli_exit_codes(workspace):
    ok = subprocess.run(
        [*CLI, "doctor", "--json", "--workspace", str(workspace.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["must_fix"] is False
    failing = subprocess.run(
        [*CLI, "doctor", "--platform", "spotify", "--workspace", str(workspace.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failing.returncode == 1
    assert "FAIL  client: [spotify] TWINME_SPOTIFY_CLIENT_ID" in failing.stdout
