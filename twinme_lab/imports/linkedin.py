"""LinkedIn data exports: connections, career, skills, posts, comments, reactions
and messages.

The export is a ZIP of CSV files. Quirks handled here:

- ``Connections.csv`` may start with a ``Notes:`` preamble (a quoted paragraph and
  a blank line) before its header. Exports from about 2018 have no URL column.
- ``Shares.csv`` has quoted multi-line commentaries, and one export vintage wrote
  it as UTF-16 with tabs between fields.
- ``Comments.csv`` does not quote multi-line comments: the continuation lines
  follow as lines of their own. A line that does not start with a ``Date`` value
  continues the comment before it, so a comment is never split into several.
- ``messages.csv`` (or ``Messages.csv``) comes in two header generations: the
  upper-case one with ``CONVERSATION ID`` and profile URLs, and the older
  ``From,To,Date,Subject,Content,Direction,Folder``.

Other people are stored only as keyed pseudonyms (profile URL, else name).
Connection e-mail addresses, companies and positions, conversation titles, the
participant's own name, birth date and contact details are not stored. Text of
shares, comments and the participant's own messages is measured for the
communication features and kept only with ``keep_text``; other people's message
text is never kept.

Times: ``Shares.csv`` dates match the UTC time encoded in each share's id, and
``Comments.csv`` and ``Reactions.csv`` use the same ``YYYY-MM-DD HH:MM:SS`` form,
so all three are read as UTC. ``Invitations.csv`` times (``6/17/23, 6:18 AM``)
carry no zone and are stored without one.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, date, datetime

from ..errors import InputError
from .common import ImportJob, SourceFile, register
from .pseudonyms import Pseudonymizer
from .rows import stage_records
from .text_style import measure

FORMATS = (
    ("linkedin_connections", r"Connections\.csv"),
    ("linkedin_invitations", r"Invitations\.csv"),
    ("linkedin_positions", r"Positions\.csv"),
    ("linkedin_education", r"Education\.csv"),
    ("linkedin_skills", r"Skills\.csv"),
    ("linkedin_profile", r"Profile\.csv"),
    ("linkedin_shares", r"Shares\.csv"),
    ("linkedin_comments", r"Comments\.csv"),
    ("linkedin_reactions", r"Reactions\.csv"),
    ("linkedin_messages", r"[Mm]essages\.csv"),
)

_COMMENT_START = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},")
_MONTH_NAMES = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}

WRITTEN_COLUMNS = {
    "platform": "VARCHAR",
    "kind": "VARCHAR",
    "written_at": "TIMESTAMPTZ",
    "time_precision": "VARCHAR",
    "conversation_key": "VARCHAR",
    "is_own": "BOOLEAN",
    "author_key": "VARCHAR",
    "target_key": "VARCHAR",
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
    "body": "VARCHAR",
}
WRITTEN_KEY = (
    "platform",
    "kind",
    "conversation_key",
    "written_at",
    "is_own",
    "author_key",
    "target_key",
)


class Rejected(ValueError):
    """A problem in one record (1-based data row) or in the file as a whole."""

    def __init__(self, problem: str, record: int | None = None) -> None:
        super().__init__(problem)
        self.record = record


# ------------------------------------------------------------------ CSV reading


def _strip_preamble(text: str, first_column: str) -> str:
    """Drop a ``Notes:`` preamble: everything before the line naming the header."""
    if not text.startswith("Notes:"):
        return text
    for match in re.finditer(r"^(.*)$", text, re.MULTILINE):
        if match.group(1).startswith(first_column + ","):
            return text[match.start() :]
    raise Rejected(f"the Notes preamble is not followed by a {first_column} header")


def read_table(
    text: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[list[str], list[tuple[int, dict]]]:
    """Parse CSV text (comma- or tab-separated) into ``(header, [(row, dict)])``.

    Header names are matched case-insensitively against ``required`` and
    ``optional``; the dicts use the names as given there. Cells are trimmed.
    Blank lines are skipped. A row with more fields than the header raises
    :class:`Rejected`.
    """
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise Rejected("the file is empty")
    header = [h.strip() for h in header]
    wanted = {name.casefold(): name for name in required + optional}
    names = [wanted.get(h.casefold()) for h in header]
    missing = [r for r in required if r not in names]
    if missing:
        raise Rejected(
            f"the header {','.join(header)} lacks {', '.join(missing)}; this is "
            "not the LinkedIn file of that name"
        )
    rows = []
    for number, row in enumerate(reader, start=1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise Rejected(
                f"{len(row)} fields where the header has {len(header)}", number
            )
        record = {
            name: (row[i].strip() if i < len(row) else "")
            for i, name in enumerate(names)
            if name is not None
        }
        rows.append((number, record))
    return header, rows


def read_comments(text: str) -> list[tuple[int, dict]]:
    """Parse Comments.csv, joining unquoted continuation lines to their comment.

    Returns ``[(line, {"Date", "Link", "Message"})]`` with the 1-based line of
    each comment's first line (the header is line 1).
    """
    lines = text.split("\n")
    if lines[0].strip().casefold() != "date,link,message":
        raise Rejected(
            f"expected the header Date,Link,Message, found {lines[0].strip()}"
        )
    while lines and not lines[-1].strip():
        lines.pop()
    grouped: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines[1:], start=2):
        if _COMMENT_START.match(line):
            grouped.append((number, [line]))
        elif grouped:
            grouped[-1][1].append(line)
        else:
            raise Rejected(
                f"line {number} does not start with a date, and there is no "
                "comment before it that it could continue"
            )
    return [(number, _split_comment(number, parts)) for number, parts in grouped]


def _split_comment(number: int, parts: list[str]) -> dict:
    date_text, link, message = "\n".join(parts).split(",", 2)
    if message.startswith('"'):
        # A quoted message: LinkedIn quotes one that contains a comma or a quote.
        # It must close at the end of the record, with inner quotes doubled.
        inner = message[1:]
        if not inner.endswith('"') or '"' in inner[:-1].replace('""', ""):
            raise Rejected(
                f"the quoted comment starting on line {number} is not closed at "
                "the end of the comment"
            )
        message = inner[:-1].replace('""', '"')
    return {"Date": date_text, "Link": link.strip(), "Message": message}


# ---------------------------------------------------------------------- values


def parse_utc(text: str, record: int, column: str) -> datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS`` with an optional `` UTC`` suffix as UTC."""
    cleaned = text.strip().removesuffix(" UTC")
    try:
        value = datetime.strptime(cleaned, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Rejected(
            f"{column} {text!r} is not a date and time like 2024-03-17 18:03:34",
            record,
        ) from None
    return value.replace(tzinfo=UTC)


def parse_month_or_year(text: str, record: int, column: str):
    """Parse ``Nov 2021`` or ``2015`` into (first day, 'month' | 'year')."""
    cleaned = text.strip()
    if not cleaned:
        return None, None
    if re.fullmatch(r"\d{4}", cleaned):
        return date(int(cleaned), 1, 1), "year"
    match = re.fullmatch(r"([A-Za-z]{3})[a-z]* (\d{4})", cleaned)
    if match and match.group(1).lower() in _MONTHS:
        return date(int(match.group(2)), _MONTHS[match.group(1).lower()], 1), "month"
    raise Rejected(f"{column} {text!r} is not a month and year like Nov 2021", record)


def parse_connected_on(text: str, record: int) -> date:
    """Parse ``04 Jul 2023``, the form of the 2023 and 2024 samples."""
    try:
        return datetime.strptime(text.strip(), "%d %b %Y").date()
    except ValueError:
        raise Rejected(
            f"Connected On {text!r} is not a date like 04 Jul 2023", record
        ) from None


def parse_sent_at(text: str, record: int) -> datetime:
    """Parse an invitation time such as ``6/17/23, 6:18 AM`` (month first)."""
    for pattern in ("%m/%d/%y, %I:%M %p", "%m/%d/%Y, %I:%M %p"):
        try:
            return datetime.strptime(text.strip(), pattern)
        except ValueError:
            continue
    raise Rejected(f"Sent At {text!r} is not a time like 6/17/23, 6:18 AM", record)


def _person_key(pseudonyms: Pseudonymizer, url: str, name: str) -> str | None:
    """Pseudonym of a person: by profile URL or URN when given, else by name."""
    if url.strip():
        return pseudonyms.url(url)
    return pseudonyms.name(name)


def _text_counts(text: str, html_markup: bool) -> dict:
    return measure(text, html_markup=html_markup).columns()


# ------------------------------------------------------------------- per file


class LinkedInReader:
    """Turns each LinkedIn CSV into records for its table."""

    def __init__(
        self, pseudonyms: Pseudonymizer, keep_text: bool, own_name: str | None = None
    ) -> None:
        self.pseudonyms = pseudonyms
        self.keep_text = keep_text
        self.own_name = own_name

    def _kept(self, text: str) -> str | None:
        if not self.keep_text or not text:
            return None
        return self.pseudonyms.scrub_text(text)

    def connections(self, text: str) -> list[dict]:
        _, rows = read_table(
            _strip_preamble(text, "First Name"),
            ("First Name", "Last Name", "Connected On"),
            ("URL", "Email Address", "Company", "Position"),
        )
        return [
            {
                "contact_key": _person_key(
                    self.pseudonyms,
                    row.get("URL", ""),
                    f"{row['First Name']} {row['Last Name']}",
                ),
                "connected_on": parse_connected_on(row["Connected On"], number),
            }
            for number, row in rows
        ]

    def invitations(self, text: str) -> list[dict]:
        _, rows = read_table(
            text,
            ("From", "To", "Sent At", "Direction"),
            (
                "Message",
                "inviterProfileUrn",
                "inviteeProfileUrn",
                "inviterProfileUrl",
                "inviteeProfileUrl",
            ),
        )
        records = []
        for number, row in rows:
            direction = row["Direction"].upper()
            if direction not in ("INCOMING", "OUTGOING"):
                raise Rejected(
                    f"Direction {row['Direction']!r} is neither INCOMING nor OUTGOING",
                    number,
                )
            side = "invitee" if direction == "OUTGOING" else "inviter"
            url = row.get(f"{side}ProfileUrl") or row.get(f"{side}ProfileUrn") or ""
            name = row["To"] if direction == "OUTGOING" else row["From"]
            records.append(
                {
                    "direction": direction,
                    "sent_at": parse_sent_at(row["Sent At"], number),
                    "contact_key": _person_key(self.pseudonyms, url, name),
                    "has_message": bool(row.get("Message")),
                }
            )
        return records

    def positions(self, text: str) -> list[dict]:
        _, rows = read_table(
            text,
            ("Company Name", "Title", "Started On"),
            ("Finished On", "Description", "Location"),
        )
        records = []
        for number, row in rows:
            started, started_precision = parse_month_or_year(
                row["Started On"], number, "Started On"
            )
            finished, finished_precision = parse_month_or_year(
                row.get("Finished On", ""), number, "Finished On"
            )
            records.append(
                {
                    "company": row["Company Name"] or None,
                    "title": row["Title"] or None,
                    "started_on": started,
                    "started_precision": started_precision,
                    "finished_on": finished,
                    "finished_precision": finished_precision,
                }
            )
        return records

    def education(self, text: str) -> list[dict]:
        _, rows = read_table(
            text,
            ("School Name", "Start Date", "End Date"),
            ("Degree Name", "Notes", "Activities"),
        )
        records = []
        for number, row in rows:
            started, started_precision = parse_month_or_year(
                row["Start Date"], number, "Start Date"
            )
            finished, finished_precision = parse_month_or_year(
                row["End Date"], number, "End Date"
            )
            records.append(
                {
                    "school": row["School Name"] or None,
                    "degree": row.get("Degree Name") or None,
                    "started_on": started,
                    "started_precision": started_precision,
                    "finished_on": finished,
                    "finished_precision": finished_precision,
                }
            )
        return records

    def skills(self, text: str) -> list[dict]:
        _, rows = read_table(text, ("Name",))
        return [{"skill": row["Name"]} for _, row in rows if row["Name"]]

    def profile(self, text: str) -> list[dict]:
        _, rows = read_table(text, ("First Name", "Last Name"), ("Industry",))
        return [
            {"_section": "profile", "industry": row.get("Industry") or None}
            for _, row in rows
        ]

    def shares(self, text: str) -> list[dict]:
        _, rows = read_table(
            text,
            ("Date", "ShareLink", "ShareCommentary"),
            ("SharedURL", "MediaURL", "Visibility"),
        )
        return [
            self._own_item(
                "share", number, row["Date"], row["ShareLink"], row["ShareCommentary"]
            )
            for number, row in rows
        ]

    def comments(self, text: str) -> list[dict]:
        records = []
        for index, (line, row) in enumerate(read_comments(text), start=1):
            try:
                records.append(
                    self._own_item(
                        "comment", index, row["Date"], row["Link"], row["Message"]
                    )
                )
            except Rejected as exc:
                raise Rejected(f"the comment on line {line}: {exc}") from None
        return records

    def _own_item(
        self, kind: str, number: int, when: str, link: str, text: str
    ) -> dict:
        return {
            "platform": "linkedin",
            "kind": kind,
            "written_at": parse_utc(when, number, "Date"),
            "time_precision": "second",
            "is_own": True,
            "target_key": self.pseudonyms.url(link),
            **_text_counts(text, html_markup=False),
            "body": self._kept(text),
        }

    def reactions(self, text: str) -> list[dict]:
        _, rows = read_table(text, ("Date", "Type", "Link"))
        return [
            {
                "reacted_at": parse_utc(row["Date"], number, "Date"),
                "reaction": row["Type"],
                "target_key": self.pseudonyms.url(row["Link"]),
            }
            for number, row in rows
        ]

    def messages(self, text: str) -> list[dict]:
        header, rows = read_table(
            text,
            ("FROM", "TO", "DATE", "CONTENT"),
            (
                "CONVERSATION ID",
                "CONVERSATION TITLE",
                "SENDER PROFILE URL",
                "RECIPIENT PROFILE URLS",
                "SUBJECT",
                "FOLDER",
                "DIRECTION",
            ),
        )
        by_url = "SENDER PROFILE URL" in {h.upper() for h in header}
        has_direction = "DIRECTION" in {h.upper() for h in header}
        own = None if has_direction else self._own_identity(rows, by_url)
        records = []
        for number, row in rows:
            if has_direction:
                is_own = row["DIRECTION"].upper() == "OUTGOING"
            else:
                is_own = _people(row, by_url)[0] == own
            if row.get("CONVERSATION ID"):
                conversation = self.pseudonyms.identifier(
                    "linkedin_conversation", row["CONVERSATION ID"]
                )
            else:
                # Files without a conversation id: a conversation is everything
                # exchanged with one other party.
                conversation = self.pseudonyms.name(
                    row["TO"] if is_own else row["FROM"]
                )
            record = {
                "platform": "linkedin",
                "kind": "message",
                "written_at": _parse_message_date(row["DATE"], number),
                "time_precision": "second",
                "conversation_key": conversation,
                "is_own": is_own,
                "author_key": None
                if is_own
                else _person_key(
                    self.pseudonyms, row.get("SENDER PROFILE URL", ""), row["FROM"]
                ),
            }
            if is_own:
                record.update(_text_counts(row["CONTENT"], html_markup=True))
                record["body"] = self._kept(row["CONTENT"])
            records.append(record)
        return records

    def _own_identity(self, rows: list[tuple[int, dict]], by_url: bool) -> str:
        """Find the participant: the identity taking part in most conversations.

        Identities are profile URLs where the file has them, else names. The
        participant takes part in every conversation, so theirs is the most
        frequent; a tie is broken by the name in Profile.csv.
        """
        per_conversation: dict[str, set[str]] = {}
        for _, row in rows:
            sender, recipients = _people(row, by_url)
            people = per_conversation.setdefault(row.get("CONVERSATION ID", ""), set())
            people.update(p for p in (sender, *recipients) if p)
        counts = Counter(p for people in per_conversation.values() for p in people)
        ranked = counts.most_common()
        if not ranked:
            return ""
        top = [identity for identity, n in ranked if n == ranked[0][1]]
        if len(top) == 1:
            return top[0]
        if self.own_name:
            own = self.own_name.casefold()
            for _, row in rows:
                sender = _people(row, by_url)[0]
                if row["FROM"].casefold() == own and sender:
                    return sender
        raise Rejected(
            "the file does not show which sender is the participant (the same "
            "people take part in every conversation); import it together with "
            "Profile.csv from the same export"
        )


def _people(row: dict, by_url: bool) -> tuple[str | None, list[str]]:
    """Return (sender, recipients) as folded profile URLs, or names without URLs."""
    if by_url:
        sender = row.get("SENDER PROFILE URL", "").strip().casefold() or None
        listed = row.get("RECIPIENT PROFILE URLS", "")
    else:
        sender = row["FROM"].strip().casefold() or None
        listed = row["TO"]
    recipients = [p.strip().casefold() for p in listed.split(",") if p.strip()]
    return sender, recipients


def _parse_message_date(text: str, number: int) -> datetime:
    cleaned = text.strip()
    try:
        return parse_utc(cleaned, number, "DATE")
    except Rejected:
        pass
    for pattern in ("%m/%d/%y, %I:%M %p", "%m/%d/%Y, %I:%M %p"):
        try:
            # NOTE: the older generation's time zone is undocumented; read as UTC.
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise Rejected(f"DATE {text!r} is not a date and time", number)


# ----------------------------------------------------------------- the importer

# format -> (reader method, table, kind, column types, record key columns)
_TABLES = {
    "linkedin_connections": (
        "connections",
        "linkedin_connections",
        "connection",
        {"contact_key": "VARCHAR", "connected_on": "DATE"},
        ("contact_key", "connected_on"),
    ),
    "linkedin_invitations": (
        "invitations",
        "linkedin_invitations",
        "invitation",
        {
            "direction": "VARCHAR",
            "sent_at": "TIMESTAMP",
            "contact_key": "VARCHAR",
            "has_message": "BOOLEAN",
        },
        ("direction", "sent_at", "contact_key"),
    ),
    "linkedin_positions": (
        "positions",
        "linkedin_positions",
        "position",
        {
            "company": "VARCHAR",
            "title": "VARCHAR",
            "started_on": "DATE",
            "started_precision": "VARCHAR",
            "finished_on": "DATE",
            "finished_precision": "VARCHAR",
        },
        ("company", "title", "started_on"),
    ),
    "linkedin_education": (
        "education",
        "linkedin_education",
        "education",
        {
            "school": "VARCHAR",
            "degree": "VARCHAR",
            "started_on": "DATE",
            "started_precision": "VARCHAR",
            "finished_on": "DATE",
            "finished_precision": "VARCHAR",
        },
        ("school", "degree", "started_on"),
    ),
    "linkedin_skills": (
        "skills",
        "linkedin_skills",
        "skill",
        {"skill": "VARCHAR"},
        ("skill",),
    ),
    # NOTE: one profile row per participant; a later export with another industry
    # does not replace the first one stored.
    "linkedin_profile": (
        "profile",
        "linkedin_profile",
        "profile",
        {"industry": "VARCHAR", "_section": "VARCHAR"},
        ("_section",),
    ),
    "linkedin_shares": (
        "shares",
        "written_items",
        "share",
        WRITTEN_COLUMNS,
        WRITTEN_KEY,
    ),
    "linkedin_comments": (
        "comments",
        "written_items",
        "comment",
        WRITTEN_COLUMNS,
        WRITTEN_KEY,
    ),
    "linkedin_reactions": (
        "reactions",
        "linkedin_reactions",
        "reaction",
        {"reacted_at": "TIMESTAMPTZ", "reaction": "VARCHAR", "target_key": "VARCHAR"},
        ("reacted_at", "reaction", "target_key"),
    ),
    "linkedin_messages": (
        "messages",
        "written_items",
        "message",
        WRITTEN_COLUMNS,
        WRITTEN_KEY,
    ),
}


def _own_name(job: ImportJob, matched: list[tuple[SourceFile, str]]) -> str | None:
    """Return the participant's name from Profile.csv, used to spot own messages."""
    for source, fmt in matched:
        if fmt != "linkedin_profile":
            continue
        try:
            _, rows = read_table(source.read_text(), ("First Name", "Last Name"))
        except Rejected as exc:
            raise job.reject(source, str(exc), exc.record) from None
        if rows:
            row = rows[0][1]
            return f"{row['First Name']} {row['Last Name']}".strip()
    return None


def _reject_several_profiles(job: ImportJob, matched) -> None:
    """Raise when PATH contains the exports of more than one LinkedIn member.

    One export has one Profile.csv; two that differ mean two people's exports in
    one folder, and importing both under one participant would mix them.
    """
    profiles = [source for source, fmt in matched if fmt == "linkedin_profile"]
    if len({source.sha256() for source in profiles}) > 1:
        where = ", ".join(source.label for source in profiles)
        raise InputError(
            f"{job.path.name} contains {len(profiles)} different LinkedIn profiles "
            f"({where}); import each export folder separately, under its own "
            "participant. Nothing was imported."
        )


@register("linkedin")
def import_linkedin(job: ImportJob) -> None:
    """Stage every recognised CSV of a LinkedIn export; see the module docstring."""
    keep_text = bool(job.options.get("keep_text"))
    pseudonyms = Pseudonymizer.for_workspace(job.workspace)
    matched = job.match(FORMATS)
    _reject_several_profiles(job, matched)
    reader = LinkedInReader(pseudonyms, keep_text, _own_name(job, matched))
    for source, fmt in matched:
        method, table, kind, columns, key = _TABLES[fmt]
        try:
            records = getattr(reader, method)(source.read_text())
        except Rejected as exc:
            raise job.reject(source, str(exc), exc.record) from None
        stage_records(
            job, [source], fmt, table, records, columns, key_columns=key, kind=kind
        )
    if keep_text:
        job.audit_notes["keep_text"] = True
