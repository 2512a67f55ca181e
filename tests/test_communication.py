"""Communication-style counts and features, pseudonyms, and the privacy scan."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from pathlib import Path

import pytest
from conftest import DATA, REAL, feature_value

from twinme_lab import participants, traits
from twinme_lab.features import compute_features
from twinme_lab.imports import import_path
from twinme_lab.imports.pseudonyms import Pseudonymizer, pseudonym_key
from twinme_lab.imports.text_style import count_emoji, lexicon, measure
from twinme_lab.logs import configure
from twinme_lab.workspace import init_workspace

DISCORD_LEGACY = REAL / "discord_package" / "a"
DISCORD_CURRENT = DATA / "constructed" / "discord_package_current"
LINKEDIN = REAL / "linkedin_export"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _discord_package(folder: Path, messages: list[tuple[str, str]]) -> Path:
    """Write a current-layout package with one server channel of ``messages``."""
    channel = folder / "Messages" / "c1200000000000000001"
    channel.mkdir(parents=True)
    (channel / "channel.json").write_text(
        json.dumps(
            {
                "id": "1200000000000000001",
                "type": "GUILD_TEXT",
                "name": "general",
                "guild": {"id": "1200000000000000900", "name": "Test"},
            }
        )
    )
    items = [
        {
            "ID": 1290000000000000000 + i,
            "Timestamp": when,
            "Contents": text,
            "Attachments": "",
        }
        for i, (when, text) in enumerate(messages)
    ]
    (channel / "messages.json").write_text(json.dumps(items))
    return folder


# ---------------------------------------------------------------- text counts


def test_measure_english_message():
    counts = measure("I love this game! We hate waiting? 😀")
    assert counts.words == 7
    assert counts.first_singular == 1
    assert counts.first_plural == 1
    assert counts.positive == 1
    assert counts.negative == 1
    assert counts.questions == 1
    assert counts.exclamations == 1
    assert counts.emoji == 1
    assert counts.english_function_words == 1


def test_measure_ignores_links_and_mentions():
    counts = measure("<@!123456789> look https://example.com/a?b=1 <#42>")
    assert counts.words == 1
    assert counts.questions == 0
    assert counts.exclamations == 0
    assert counts.chars == len("look")


def test_measure_html_message():
    counts = measure(
        '<p class="spinmail-quill-editor__spin-break">Hi &amp; thanks, I&#39;m in</p>',
        html_markup=True,
    )
    assert counts.words == 4
    assert counts.first_singular == 1
    assert counts.chars == len("Hi & thanks, I'm in")


def test_measure_curly_apostrophe_contraction():
    assert measure("I\u2019m sure we\u2019re fine").first_singular == 1
    assert measure("I\u2019m sure we\u2019re fine").first_plural == 1


def test_emoji_sequences_count_once():
    assert count_emoji("👍🏽") == 1
    assert count_emoji("👨‍👩‍👧") == 1
    assert count_emoji("🇮🇳🇩🇪") == 2
    assert count_emoji("(╯°□°）╯︵ ┻━┻") == 0
    assert count_emoji("ok ☀ ok ⭐") == 2


def test_lexicon_single_words():
    words = lexicon()
    assert words["love"] == 3
    assert words["hate"] == -3
    assert "can't stand" not in words
    assert len(words) == 3382 - 30


# ----------------------------------------------------------------- pseudonyms


def test_pseudonym_stable_and_normalised(workspace):
    first = Pseudonymizer.for_workspace(workspace)
    second = Pseudonymizer.for_workspace(workspace)
    assert first.name("Ilvaro  Quent") == second.name("ilvaro quent")
    assert first.url(
        "https://www.linkedin.com/in/obokarut-zoful-%F0%9F%87%AE%F0%9F%87%B3-0a1836d6f/"
    ) == first.url("https://linkedin.com/in/obokarut-zoful-🇮🇳-0a1836d6f")
    assert first.email(" Name01@Example.com") == first.email("name01@example.com")
    assert first.name("Ilvaro Quent") != first.url("Ilvaro Quent")
    assert first.name("") is None


def test_pseudonym_depends_on_workspace_key(tmp_path, monkeypatch):
    one, _ = init_workspace(tmp_path / "one")
    two, _ = init_workspace(tmp_path / "two")
    assert pseudonym_key(one) != pseudonym_key(two)
    assert pseudonym_key(one) not in (
        one.key.raw,
        bytes.fromhex(one.key.database_key()),
        one.key.token_key(),
    )
    name = "Ilvaro Quent"
    assert Pseudonymizer.for_workspace(one).name(name) != Pseudonymizer.for_workspace(
        two
    ).name(name)


def test_scrub_text_replaces_emails_and_profiles(workspace):
    pseudonyms = Pseudonymizer.for_workspace(workspace)
    text = "mail name01@example.com or see https://www.linkedin.com/in/kch5899 ok"
    scrubbed = pseudonyms.scrub_text(text)
    assert "example.com" not in scrubbed
    assert "kch5899" not in scrubbed
    assert scrubbed.startswith("mail [email:")
    assert scrubbed.endswith(" ok")


# ------------------------------------------------------------------- features


def _english_messages() -> list[tuple[str, str]]:
    """20 messages: 5 at 06:00 UTC, 15 at 15:00 UTC, half of them questions."""
    messages = []
    for i in range(10):
        hour = "06" if i < 5 else "15"
        messages.append((f"2024-01-{i + 1:02d} {hour}:00:00", "I love this game! 😀"))
    for i in range(10):
        messages.append((f"2024-01-{i + 11:02d} 15:00:00", "We hate waiting?"))
    return messages


def test_style_features_by_hand(workspace, tmp_path):
    participants.add(workspace, "P001", timezone_name="America/New_York")
    package = _discord_package(tmp_path / "package", _english_messages())
    import_path(workspace, "discord", package, "P001")
    compute_features(workspace)

    # "I love this game! 😀" is 19 characters and 4 words, "We hate waiting?"
    # 16 characters and 3 words: 70 words in all.
    assert feature_value(workspace, "comm_message_length") == (17.5, 20)
    assert feature_value(workspace, "comm_question_rate") == (0.5, 20)
    assert feature_value(workspace, "comm_exclamation_rate") == (0.5, 20)
    assert feature_value(workspace, "comm_emoji_rate") == (0.5, 20)
    assert feature_value(workspace, "comm_first_singular_rate")[0] == pytest.approx(
        10 / 70
    )
    assert feature_value(workspace, "comm_first_plural_rate")[0] == pytest.approx(
        10 / 70
    )
    assert feature_value(workspace, "comm_positive_rate")[0] == pytest.approx(10 / 70)
    assert feature_value(workspace, "comm_negative_rate")[0] == pytest.approx(10 / 70)

    # New York is UTC-5 in January: 06:00 UTC is 01:00 local, 15:00 is 10:00.
    assert feature_value(workspace, "comm_night_share") == (0.25, 20)
    angle = math.atan2(
        (5 * math.sin(2 * math.pi * 1 / 24) + 15 * math.sin(2 * math.pi * 10 / 24))
        / 20,
        (5 * math.cos(2 * math.pi * 1 / 24) + 15 * math.cos(2 * math.pi * 10 / 24))
        / 20,
    )
    mean_hour = (math.degrees(angle) / 15 + 24) % 24
    assert feature_value(workspace, "comm_mean_hour")[0] == pytest.approx(mean_hour)
    # Discord packages hold own messages only: no replies to time.
    assert feature_value(workspace, "comm_response_latency") == (None, 0)


def test_style_features_null_below_minimum(workspace, tmp_path):
    participants.add(workspace, "P001", timezone_name="UTC")
    package = _discord_package(tmp_path / "package", _english_messages()[:19])
    import_path(workspace, "discord", package, "P001")
    compute_features(workspace)
    for name in (
        "comm_message_length",
        "comm_question_rate",
        "comm_emoji_rate",
        "comm_first_singular_rate",
        "comm_positive_rate",
        "comm_night_share",
        "comm_mean_hour",
    ):
        assert feature_value(workspace, name) == (None, 19), name


def test_time_of_day_null_without_timezone(workspace, tmp_path):
    participants.add(workspace, "P001")
    package = _discord_package(tmp_path / "package", _english_messages())
    import_path(workspace, "discord", package, "P001")
    compute_features(workspace)
    assert feature_value(workspace, "comm_night_share") == (None, 20)
    assert feature_value(workspace, "comm_mean_hour") == (None, 20)
    assert feature_value(workspace, "comm_message_length") == (17.5, 20)


def test_word_lists_null_for_non_english(workspace):
    participants.add(workspace, "P001", timezone_name="UTC")
    import_path(workspace, "discord", DISCORD_LEGACY, "P001")
    compute_features(workspace)
    length, n_obs = feature_value(workspace, "comm_message_length")
    assert length is not None
    # 29 messages of the larger channel and 1 of the smaller one hold only
    # mentions, links or nothing.
    assert n_obs == 321 - 29 - 1
    for name in (
        "comm_first_singular_rate",
        "comm_first_plural_rate",
        "comm_positive_rate",
        "comm_negative_rate",
    ):
        assert feature_value(workspace, name) == (None, n_obs), name


def test_style_across_platforms(workspace, tmp_path):
    participants.add(workspace, "P001", timezone_name="UTC")
    package = _discord_package(tmp_path / "package", _english_messages())
    import_path(workspace, "discord", package, "P001")
    import_path(workspace, "linkedin", LINKEDIN / "b" / "Shares.csv", "P001")
    compute_features(workspace)
    # 13 shares, 2 of them without commentary, join the 20 Discord messages.
    assert feature_value(workspace, "comm_message_length")[1] == 31


# --------------------------------------------------------------- privacy scan


def _linkedin_people(folder: Path) -> set[str]:
    found: set[str] = set()

    def rows(name: str, skip: int = 0):
        path = folder / name
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").split("\n")[skip:]
        return list(csv.DictReader(io.StringIO("\n".join(lines))))

    preamble = 3 if (folder / "Connections.csv").read_text().startswith("Notes") else 0
    for row in rows("Connections.csv", preamble):
        found.add(f"{row['First Name'].strip()} {row['Last Name'].strip()}")
        found.update({row["URL"].strip(), row["Email Address"].strip()})
    for row in rows("Invitations.csv"):
        found.update({row["From"], row["To"]})
        found.update(v for k, v in row.items() if k.startswith("invite"))
    for row in rows("messages.csv"):
        found.update({row["FROM"], row["TO"], row["SENDER PROFILE URL"]})
        found.update(row["RECIPIENT PROFILE URLS"].split(","))
    for row in rows("Profile.csv"):
        found.add(f"{row['First Name']} {row['Last Name']}")
    comments = folder / "Comments.csv"
    if comments.exists():
        found.update(EMAIL.findall(comments.read_text()))
    # Short values (initials, "LinkedIn Member") are not names of one person.
    return {
        v.strip()
        for v in found
        if len(v.strip()) >= 6 and v.strip() != "LinkedIn Member"
    }


def _discord_people() -> set[str]:
    found: set[str] = set()
    for package in (DISCORD_LEGACY, DISCORD_CURRENT):
        index = json.loads((package / "Messages" / "index.json").read_text())
        for name in index.values():
            if name and name.startswith("Direct Message with "):
                tag = name.removeprefix("Direct Message with ")
                found.update({tag, tag.split("#")[0]})
        for path in package.rglob("messages.*"):
            found.update(re.findall(r"<@!?([0-9]+)>", path.read_text()))
        for path in package.rglob("channel.json"):
            found.update(json.loads(path.read_text()).get("recipients", []))
    return {v for v in found if len(v) >= 4}


def _text_cells(ws) -> list[str]:
    cells = []
    with ws.connect() as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "AND data_type IN ('VARCHAR', 'JSON')"
        ).fetchall()
        for table, column in columns:
            cells += [
                value
                for (value,) in con.execute(
                    f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{table}" '
                    f'WHERE "{column}" IS NOT NULL'
                ).fetchall()
            ]
    return cells


def test_no_other_person_reaches_database_logs_or_report(tmp_path, caplog, capfd):
    people = _linkedin_people(LINKEDIN / "a") | _linkedin_people(LINKEDIN / "b")
    people |= _discord_people()
    assert len(people) > 600
    assert "name01@example.com" in people
    assert "https://www.linkedin.com/in/kch5899" in people

    configure("DEBUG")
    caplog.set_level(logging.DEBUG, logger="twinme_lab")
    ws, _ = init_workspace(tmp_path / "ws")
    participants.add(ws, "P001", timezone_name="UTC")
    participants.add(ws, "P002", timezone_name="UTC")
    summaries = [
        import_path(ws, "linkedin", LINKEDIN / "b", "P001"),
        import_path(ws, "linkedin", LINKEDIN / "a", "P002"),
        import_path(ws, "discord", DISCORD_LEGACY, "P001"),
        import_path(ws, "discord", DISCORD_CURRENT, "P002"),
    ]
    compute_features(ws)
    traits.score(ws)
    from twinme_lab.reports import run_report

    paths = run_report(ws, "P001")

    cells = "\n".join(_text_cells(ws))
    outputs = "\n".join(
        json.dumps(s.to_dict()) + "\n".join(s.lines()) for s in summaries
    )
    logs = caplog.text + "\n".join(capfd.readouterr())
    report = "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for path in Path(paths.folder).rglob("*")
        if path.is_file()
    )
    # The scan reads decrypted values: stored company names and skills show up.
    assert "Hmto - همتو" in cells
    assert "P001" in report
    for value in sorted(people):
        assert value not in cells, f"{value!r} is stored in the database"
        assert value not in outputs, f"{value!r} is in an import summary"
        assert value not in logs, f"{value!r} is in the log"
        assert value not in report, f"{value!r} is in the report"


def test_forget_removes_export_rows(workspace):
    participants.add(workspace, "P001", timezone_name="UTC")
    participants.add(workspace, "P002", timezone_name="UTC")
    import_path(workspace, "linkedin", LINKEDIN / "b", "P001")
    import_path(workspace, "discord", DISCORD_CURRENT, "P001")
    import_path(workspace, "discord", DISCORD_CURRENT, "P002")
    participants.forget(workspace, "P001")
    tables = (
        "written_items",
        "discord_channels",
        "linkedin_connections",
        "linkedin_invitations",
        "linkedin_positions",
        "linkedin_education",
        "linkedin_skills",
        "linkedin_profile",
        "linkedin_reactions",
        "youtube_events",
    )
    with workspace.connect() as con:
        for table in tables:
            left = con.execute(
                f"SELECT count(*) FROM {table} WHERE participant_id = 'P001'"
            ).fetchone()[0]
            assert left == 0, table
        kept = con.execute(
            "SELECT count(*) FROM written_items WHERE participant_id = 'P002'"
        ).fetchone()[0]
    assert kept == 8
