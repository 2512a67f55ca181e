"""Listing connections: rows for the CLI and platform cards for notebooks."""

from __future__ import annotations

import html

from .. import platforms, vault
from ..workspace import Workspace
from . import records


class ConnectionList(list):
    """Connections as dicts (never tokens); shown as platform cards in notebooks."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No connections.</p>"
        cards = [_card(row) for row in self]
        return (
            "<div style='display:flex;flex-wrap:wrap;gap:12px'>"
            + "".join(cards)
            + "</div>"
        )


_STATUS_COLOURS = {
    records.CONNECTED: "#1a7f37",
    records.REQUIRES_REAUTH: "#bf8700",
    records.REVOKED: "#6e7781",
}


def _card(row: dict) -> str:
    def text(value) -> str:
        return html.escape("" if value is None else str(value))

    status = row["status"]
    if row.get("token_error"):
        status_text = "token unreadable: " + row["token_error"]
    elif row.get("status_reason") and status != records.CONNECTED:
        status_text = f"{status}: {row['status_reason']}"
    else:
        status_text = status
    colour = _STATUS_COLOURS.get(status, "#cf222e")
    role = "essential" if row.get("essential") else "optional"
    sandbox = " (sandbox)" if row.get("origin") == "sandbox" else ""
    return (
        "<div style='border:1px solid #d0d7de;border-radius:8px;width:260px;"
        f"padding:10px;border-top:6px solid {text(row.get('brand_colour'))}'>"
        f"<div style='font-weight:bold'>{text(row.get('display_name'))}{sandbox}"
        f"</div><div style='font-size:90%'>Participant "
        f"{text(row['participant_id'])} &middot; {role}</div>"
        f"<div style='color:{colour};margin:6px 0'>{text(status_text)}</div>"
        f"<div style='font-size:85%'><b>Reveals:</b> {text(row.get('reveals'))}</div>"
        f"<div style='font-size:85%'><b>Insights:</b> {text(row.get('insights'))}"
        "</div>"
        "<div style='font-size:85%;color:#57606a'>Last extraction: "
        f"{text(row.get('last_extraction_at') or 'never')}</div></div>"
    )


def connections(
    workspace: Workspace, participant_id: str | None = None
) -> ConnectionList:
    """Return connections with their status and platform details, never tokens.

    A connection whose tokens do not decrypt under the workspace key gets a
    ``token_error`` message; the other connections are listed as usual.
    """
    with workspace.connect() as con:
        rows = records.load_all(con, participant_id)
    result = ConnectionList()
    for record in rows:
        row = record.public()
        row["token_error"] = None
        if record.access_token is not None and workspace.key is not None:
            try:
                record.open_tokens(workspace.key)
            except vault.TokenDecryptError as exc:
                row["token_error"] = str(exc)
        try:
            platform = platforms.get(record.platform)
        except KeyError:
            platform = None
        if platform is not None:
            row.update(
                display_name=platform.display_name,
                brand_colour=platform.brand_colour,
                reveals=platform.reveals,
                insights=platform.insights,
                essential=platform.essential,
            )
        result.append(row)
    return result
