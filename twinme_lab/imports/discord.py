"""Discord data packages: the participant's own messages and the channels they wrote in.

Two layouts occur. Older packages (about 2018-2022) have ``Messages/<channel id>/``
folders with ``channel.json`` (``type`` as a number: 0 server text, 1 direct
message, 3 group) and ``messages.csv`` (``ID,Timestamp,Contents,Attachments``,
CRLF line ends, timestamps such as ``2018-09-10 01:29:23.095000+00:00``). Current
packages have ``Messages/c<channel id>/`` folders with ``channel.json`` (``type``
as a name such as ``DM``, ``GROUP_DM``, ``GUILD_TEXT``, ``PUBLIC_THREAD``) and
``messages.json``, an array of objects with the same four keys, ``ID`` as a
number and ``Timestamp`` as ``YYYY-MM-DD HH:MM:SS`` in UTC.

A package holds only messages the participant sent. ``Messages/index.json`` names
direct-message partners by user tag and is not read. Recipient and mentioned user
ids are replaced by keyed pseudonyms; message text is measured for the
communication features and kept only with ``keep_text``.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import PurePosixPath

from .common import ImportJob, SourceFile, register
from .pseudonyms import Pseudonymizer
from .rows import stage_records
from .text_style import measure

FORMATS = (
    ("discord_messages_csv", r"messages\.csv"),
    ("discord_messages_json", r"messages\.json"),
    ("discord_channel", r"channel\.json"),
)
_CHANNEL_FOLDER = re.compile(r"c?([0-9]{5,25})")
_CSV_HEADER = ["ID", "Timestamp", "Contents", "Attachments"]
_USER_MENTION = re.compile(r"<@!?([0-9]{5,25})>")

# Channel types: numbers in older packages (Discord API channel types), names in
# current ones.
CHANNEL_KINDS = {
    0: "guild",
    2: "guild",
    5: "guild",
    13: "guild",
    15: "guild",
    16: "guild",
    1: "dm",
    3: "group_dm",
    10: "thread",
    11: "thread",
    12: "thread",
    "GUILD_TEXT": "guild",
    "GUILD_VOICE": "guild",
    "GUILD_NEWS": "guild",
    "GUILD_ANNOUNCEMENT": "guild",
    "GUILD_STAGE_VOICE": "guild",
    "GUILD_FORUM": "guild",
    "GUILD_MEDIA": "guild",
    "DM": "dm",
    "GROUP_DM": "group_dm",
    "PUBLIC_THREAD": "thread",
    "PRIVATE_THREAD": "thread",
    "ANNOUNCEMENT_THREAD": "thread",
    "GUILD_NEWS_THREAD": "thread",
    "GUILD_PUBLIC_THREAD": "thread",
    "GUILD_PRIVATE_THREAD": "thread",
}

CHANNEL_COLUMNS = {
    "channel_id": "VARCHAR",
    "channel_kind": "VARCHAR",
    "guild_id": "VARCHAR",
    "partner_key": "VARCHAR",
    "recipient_count": "INTEGER",
}

MESSAGE_COLUMNS = {
    "platform": "VARCHAR",
    "kind": "VARCHAR",
    "item_id": "VARCHAR",
    "written_at": "TIMESTAMPTZ",
    "time_precision": "VARCHAR",
    "conversation_key": "VARCHAR",
    "is_own": "BOOLEAN",
    "chars": "INTEGER",
    "words": "INTEGER",
    "questions": "INTEGER",
    "exclamations": "INTEGER",
    "emoji": "INTEGER",
    "first_singular": "INTEGER",
    "first_plural": "INTEGER",
    "positive_words": "INTEGER",
    "negative_words": "INTEGER",
    "english_function_words": "INTEGER",
    "lexicon": "VARCHAR",
    "mentions": "INTEGER",
    "attachments": "INTEGER",
    "body": "VARCHAR",
}


class _Rejected(ValueError):
    """A record problem, turned into an InputError naming file and record."""

    def __init__(self, problem: str, record: int | None = None) -> None:
        super().__init__(problem)
        self.record = record


def _folder_of(source: SourceFile) -> PurePosixPath:
    inner = source.member if source.member is not None else str(source.path)
    return PurePosixPath(inner.replace("\\", "/")).parent


def _channel_id(source: SourceFile) -> str | None:
    """Return the channel id named by the file's folder, or None if it is not one."""
    folder = _folder_of(source)
    match = _CHANNEL_FOLDER.fullmatch(folder.name)
    if match is None or folder.parent.name.lower() != "messages":
        return None
    return match.group(1)


def parse_timestamp(text: str) -> tuple[datetime, str]:
    """Parse a package timestamp; one without a zone is UTC (current layout)."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    precision = "microsecond" if "." in text else "second"
    return value.astimezone(UTC), precision


def parse_channel(data, expected_id: str, pseudonyms: Pseudonymizer) -> dict:
    """Turn a channel.json object into a discord_channels record."""
    if not isinstance(data, dict):
        raise _Rejected("expected a JSON object describing the channel")
    found_id = str(data.get("id", expected_id))
    if found_id != expected_id:
        raise _Rejected(
            f"the channel id {found_id} does not match its folder ({expected_id})"
        )
    kind = CHANNEL_KINDS.get(data.get("type"), "unknown")
    guild = data.get("guild")
    guild_id = str(guild["id"]) if isinstance(guild, dict) and "id" in guild else None
    recipients = data.get("recipients")
    partner_key = None
    count = None
    if isinstance(recipients, list):
        ids = sorted(str(r) for r in recipients)
        count = len(ids)
        if kind == "dm" and ids:
            # The participant is one of the recipients of every DM, so the sorted
            # pair identifies the partner whether or not the own id is known.
            partner_key = pseudonyms.identifier("discord_dm", ",".join(ids))
    return {
        "channel_id": expected_id,
        "channel_kind": kind,
        "guild_id": guild_id,
        "partner_key": partner_key,
        "recipient_count": count,
    }


def _message_rows_csv(text: str) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise _Rejected("the file is empty")
    if header != _CSV_HEADER:
        raise _Rejected(
            "expected the header ID,Timestamp,Contents,Attachments, found "
            + ",".join(header)
        )
    rows = []
    for number, row in enumerate(reader, start=1):
        if len(row) != len(_CSV_HEADER):
            raise _Rejected(f"expected 4 fields, found {len(row)}", number)
        rows.append((number, dict(zip(_CSV_HEADER, row, strict=True))))
    return rows


def _message_rows_json(data) -> list[tuple[int, dict]]:
    if not isinstance(data, list):
        raise _Rejected("expected a JSON array of messages")
    rows = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict) or not {"ID", "Timestamp"} <= item.keys():
            raise _Rejected("expected an object with ID and Timestamp", number)
        rows.append((number, item))
    return rows


def parse_message(
    number: int,
    item: dict,
    channel_id: str,
    pseudonyms: Pseudonymizer,
    keep_text: bool,
) -> dict:
    """Turn one package message into a written_items record."""
    message_id = str(item.get("ID", "")).strip()
    if not message_id.isdigit():
        raise _Rejected(f"the message ID {message_id!r} is not a number", number)
    try:
        written_at, precision = parse_timestamp(str(item.get("Timestamp") or ""))
    except ValueError:
        raise _Rejected(
            f"the Timestamp {item.get('Timestamp')!r} is not a date and time", number
        ) from None
    contents = item.get("Contents") or ""
    if not isinstance(contents, str):
        raise _Rejected("Contents is not text", number)
    attachments = str(item.get("Attachments") or "").split()
    counts = measure(contents)
    body = None
    if keep_text:
        body = _USER_MENTION.sub(
            lambda m: f"<@{pseudonyms.identifier('discord_user', m.group(1))}>",
            contents,
        )
    return {
        "platform": "discord",
        "kind": "message",
        "item_id": message_id,
        "written_at": written_at.isoformat(),
        "time_precision": precision,
        "conversation_key": channel_id,
        "is_own": True,
        **counts.columns(),
        "mentions": len(_USER_MENTION.findall(contents)),
        "attachments": len(attachments),
        "body": body,
    }


def read_messages(
    source: SourceFile,
    fmt: str,
    channel_id: str,
    pseudonyms: Pseudonymizer,
    keep_text: bool,
) -> list[dict]:
    """Parse a messages.csv or messages.json file into written_items records."""
    if fmt == "discord_messages_csv":
        rows = _message_rows_csv(source.read_text())
    else:
        rows = _message_rows_json(source.read_json())
    return [
        parse_message(number, item, channel_id, pseudonyms, keep_text)
        for number, item in rows
    ]


@register("discord")
def import_discord(job: ImportJob) -> None:
    """Stage the channels and messages of a Discord package (both layouts).

    All files of one kind go into one staged part, because a package can have
    thousands of channel folders. Messages in a folder without channel.json are
    stored without a channel row, so their channel kind stays unknown.
    """
    keep_text = bool(job.options.get("keep_text"))
    pseudonyms = Pseudonymizer.for_workspace(job.workspace)
    channel_sources: list[SourceFile] = []
    channel_records: list[dict] = []
    messages: dict[str, tuple[list[SourceFile], list[dict]]] = {}

    for source, fmt in job.match(FORMATS):
        channel_id = _channel_id(source)
        if channel_id is None:
            if job.single_file:
                raise job.reject(
                    source,
                    "the file is not inside a Messages/<channel id> folder, so its "
                    "channel is unknown",
                    fix="import the whole package folder or ZIP",
                )
            job.summary.ignored_files += 1
            continue
        try:
            if fmt == "discord_channel":
                record = parse_channel(source.read_json(), channel_id, pseudonyms)
                record["_file"] = len(channel_sources)
                channel_sources.append(source)
                channel_records.append(record)
                continue
            records = read_messages(source, fmt, channel_id, pseudonyms, keep_text)
        except _Rejected as exc:
            raise job.reject(source, str(exc), exc.record) from None
        sources, staged = messages.setdefault(fmt, ([], []))
        for record in records:
            record["_file"] = len(sources)
        sources.append(source)
        staged.extend(records)

    for fmt, (sources, records) in sorted(messages.items()):
        stage_records(
            job,
            sources,
            fmt,
            "written_items",
            records,
            MESSAGE_COLUMNS,
            key_columns=("platform", "kind", "item_id"),
            kind="message",
        )
    if channel_sources:
        stage_records(
            job,
            channel_sources,
            "discord_channel",
            "discord_channels",
            channel_records,
            CHANNEL_COLUMNS,
            key_columns=("channel_id",),
            kind="channel",
        )
    if keep_text:
        job.audit_notes["keep_text"] = True
