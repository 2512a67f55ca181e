"""The report's communication-style and platform sections, read from the HTML.

One workspace contains four participants: A with the real Discord package and
LinkedIn export a, B with only the Shares.csv of LinkedIn export b (too few posts
for any communication feature), C with no data, and D with a small Discord
package of English messages written here, whose word rates are counted by hand.
The expected values for the real samples are counted here from the files with
the csv module, following the rule that links and mentions are not prose.
"""

from __future__ import annotations

import csv
import html
import re
import shutil

import pytest
from conftest import REAL

from twinme_lab import keys, participants, traits
from twinme_lab.features import compute_features
from twinme_lab.imports import import_path
from twinme_lab.reports import sections
from twinme_lab.reports.batch import run_reports
from twinme_lab.workspace import init_workspace

DISCORD = REAL / "discord_package" / "a"
LINKEDIN_A = REAL / "linkedin_export" / "a"
SHARES_B = REAL / "linkedin_export" / "b" / "Shares.csv"

LINK = re.compile(r"https?://\S+|www\.\S+")
MENTION = re.compile(r"<(?:@[!&]?|#)[0-9]+>")

COMMUNICATION = [
    "comm_emoji_rate",
    "comm_exclamation_rate",
    "comm_first_plural_rate",
    "comm_first_singular_rate",
    "comm_mean_hour",
    "comm_message_length",
    "comm_negative_rate",
    "comm_night_share",
    "comm_positive_rate",
    "comm_question_rate",
    "comm_response_latency",
]


def prose(text: str) -> str:
    """Return ``text`` without links and Discord mentions, white space collapsed."""
    return " ".join(MENTION.sub(" ", LINK.sub(" ", text)).split())


def discord_messages() -> list[str]:
    """Return the prose of every Discord message in sample a that has some."""
    found = []
    for path in sorted(DISCORD.glob("Messages/*/messages.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                text = prose(row["Contents"])
                if text:
                    found.append(text)
    return found


def write_english_package(root) -> None:
    """Write a legacy Discord package of 20 English messages in one server channel.

    12 messages read "I love this game and the music is good" (38 characters, 9
    words, AFINN positive: love, good) and 8 read "We lost the match because
    the team was bad" (42 characters, 9 words, AFINN negative: lost, bad).
    """
    channel = root / "Messages" / "900000000000000001"
    channel.mkdir(parents=True)
    (root / "Messages" / "index.json").write_text(
        '{"900000000000000001": "general"}', encoding="utf-8"
    )
    (channel / "channel.json").write_text(
        '{"guild": {"id": "900000000000000009", "name": "Test Server"}, '
        '"type": 0, "id": "900000000000000001", "name": "general"}',
        encoding="utf-8",
    )
    lines = ["ID,Timestamp,Contents,Attachments"]
    for number in range(20):
        text = (
            "I love this game and the music is good"
            if number < 12
            else "We lost the match because the team was bad"
        )
        lines.append(
            f"{910000000000000000 + number},"
            f"2024-03-{number + 1:02d} 14:00:00.000000+00:00,{text},"
        )
    (channel / "messages.csv").write_text(
        "\r\n".join(lines) + "\r\n", encoding="utf-8", newline=""
    )


def share_commentaries() -> list[str]:
    with SHARES_B.open(encoding="utf-8", newline="") as handle:
        texts = [prose(row["ShareCommentary"]) for row in csv.DictReader(handle)]
    return [text for text in texts if text]


def section_rows(page: str) -> dict[str, list[str]]:
    """Return the six-cell rows of the section tables, keyed by feature name.

    The trait tables of the same report have four or nine cells per row, so only
    rows of the communication and platform tables are returned.
    """
    rows = {}
    for body in re.findall(r"<tr>(.*?)</tr>", page, re.DOTALL):
        cells = [
            html.unescape(cell.strip())
            for cell in re.findall(r"<td>(.*?)</td>", body, re.DOTALL)
        ]
        if len(cells) == 6:
            rows[cells[0]] = cells
    return rows


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Import the samples, score, and run the real report notebook for A, B, C."""
    base = tmp_path_factory.mktemp("sections")
    shares = base / "shares"
    shares.mkdir()
    shutil.copy(SHARES_B, shares / "Shares.csv")
    english = base / "english"
    write_english_package(english)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(keys.CONFIG_DIR_ENV, str(base / "config"))
        patch.setenv(keys.KEY_ENV, keys.generate_key())
        ws, _ = init_workspace(base / "ws")
        participants.add(ws, "A", "Europe/Berlin")
        participants.add(ws, "B")
        participants.add(ws, "C", "Europe/Berlin")
        participants.add(ws, "D", "UTC")
        import_path(ws, "discord", DISCORD, "A")
        import_path(ws, "linkedin", LINKEDIN_A, "A")
        import_path(ws, "linkedin", shares, "B")
        import_path(ws, "discord", english, "D")
        compute_features(ws)
        traits.score(ws)
        ids = ["A", "B", "C", "D"]
        result = run_reports(ws, ids, jobs=2, force=True)
        assert [o.status for o in result.outcomes] == ["written"] * 4
        return {
            pid: (ws.reports_dir / pid / "trait_report.html").read_text() for pid in ids
        }


def test_message_count_from_sample(pages):
    rows = section_rows(pages["A"])
    expected = len(discord_messages())
    # 321 rows: 23 without contents, 3 only a link, 4 only a mention.
    assert expected == 291
    for feature in COMMUNICATION:
        if feature == "comm_response_latency":
            continue
        assert rows[feature][3] == str(expected), feature
        assert rows[feature][4] == "20", feature


def test_question_rate_from_sample(pages):
    rows = section_rows(pages["A"])
    messages = discord_messages()
    asking = sum("?" in text or "\uff1f" in text for text in messages)
    assert rows["comm_question_rate"][1] == f"{asking / len(messages):.3f}"
    assert rows["comm_question_rate"][2] == "ratio 0-1"


def test_message_length_from_sample(pages):
    rows = section_rows(pages["A"])
    messages = discord_messages()
    # No message of the sample contains a custom emoji, which would count as one
    # character each.
    assert not any(re.search(r"<a?:\w+:\d+>", text) for text in messages)
    mean = sum(len(text) for text in messages) / len(messages)
    assert rows["comm_message_length"][1] == f"{mean:.1f}"


def test_unmeasured_rates_are_not_numbers(pages):
    rows = section_rows(pages["A"])
    # The sample's words were replaced by filler, so it is not English text.
    for feature in sorted(sections.WORD_LIST_FEATURES):
        assert rows[feature][1] == "not measured: too few English words", feature
    # Discord packages hold only the participant's own messages: no replies.
    assert rows["comm_response_latency"][1] == "not enough replies (0 of 5 needed)"


def test_english_word_rates_by_hand(pages):
    rows = section_rows(pages["D"])
    # 20 messages of 9 words each: 180 words.
    assert rows["comm_positive_rate"][1] == f"{24 / 180:.3f}"  # 12 x (love, good)
    assert rows["comm_negative_rate"][1] == f"{16 / 180:.3f}"  # 8 x (lost, bad)
    assert rows["comm_first_singular_rate"][1] == f"{12 / 180:.3f}"  # 12 x I
    assert rows["comm_first_plural_rate"][1] == f"{8 / 180:.3f}"  # 8 x we
    assert rows["comm_message_length"][1] == "39.6"  # (12 x 38 + 8 x 42) / 20
    assert rows["comm_question_rate"][1] == "0.000"
    assert rows["comm_message_length"][3] == "20"
    # Every message was written at 14:00 UTC.
    assert rows["comm_night_share"][1] == "0.000"
    assert rows["comm_mean_hour"][1] == "14.0"
    assert "Contains information from AFINN" in pages["D"]


def test_linkedin_counts_from_sample(pages, expected_counts):
    rows = section_rows(pages["A"])
    connections = expected_counts["linkedin_export/a/Connections.csv"]["connections"]
    skills = expected_counts["linkedin_export/a/Skills.csv"]["records"]
    assert rows["linkedin_connections"][1] == f"{connections:.3g}"
    assert rows["linkedin_connections"][3] == str(connections)
    assert rows["linkedin_skills"][1] == str(skills)
    # Export a has no Shares.csv: the monthly post rate is unknown.
    assert rows["linkedin_posts_per_month"][1] == "not enough data (0 of 1 needed)"


def test_platform_tables_only_with_data(pages):
    headings = re.findall(r"<h3[^>]*>\s*([^<]+?)\s*<", pages["A"])
    assert headings == ["Discord", "LinkedIn"]
    assert re.findall(r"<h3[^>]*>\s*([^<]+?)\s*<", pages["C"]) == []
    assert "No data from YouTube, Discord, LinkedIn" in pages["C"]


def test_few_posts_show_not_enough(pages):
    rows = section_rows(pages["B"])
    posts = len(share_commentaries())
    # 13 shares, two of them with an empty commentary.
    assert posts == 11
    for feature in COMMUNICATION:
        if feature == "comm_response_latency":
            continue
        value = rows[feature][1]
        assert value == f"not enough messages ({posts} of 20 needed)", feature
        assert not re.search(r"\d\.\d", value), feature


def test_afinn_notice_beside_table(pages):
    notice = (
        "Contains information from AFINN, which is made available here under the ODbL"
    )
    assert notice in pages["A"]
    assert notice in pages["B"]
    # No table of word rates, so no notice.
    assert notice not in pages["C"]
    assert "No messages, posts or comments of this participant" in pages["C"]


def test_no_interests_without_profile(pages):
    for page in pages.values():
        assert "interest" not in page.lower()
