"""Discord data-package importer and features on both package layouts."""

from __future__ import annotations

import csv
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import DATA, REAL, feature_value, kinds_of, query

from twinme_lab import participants
from twinme_lab.errors import InputError, UsageError
from twinme_lab.features import compute_features
from twinme_lab.imports import import_path
from twinme_lab.workspace import init_workspace

LEGACY = REAL / "discord_package" / "a"
LEGACY_SMALL = LEGACY / "Messages" / "477126103555899405"
LEGACY_LARGE = LEGACY / "Messages" / "487633937825398784"
CURRENT = DATA / "constructed" / "discord_package_current"
MENTION = re.compile(r"<@!?[0-9]+>")


def _csv_rows(folder: Path) -> list[dict]:
    with open(folder / "messages.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_legacy_package_counts(ws, expected_counts):
    summary = import_path(ws, "discord", LEGACY, "P001")
    small = expected_counts[
        "discord_package/a/Messages/477126103555899405/messages.csv"
    ]["records"]
    large = expected_counts[
        "discord_package/a/Messages/487633937825398784/messages.csv"
    ]["records"]
    assert kinds_of(summary) == {"channel": (2, 0), "message": (small + large, 0)}
    # index.json (names of DM partners) is not read.
    assert summary.ignored_files == 1


def test_legacy_channel_kind_and_guild(ws):
    import_path(ws, "discord", LEGACY, "P001")
    channels = query(
        ws,
        "SELECT channel_id, channel_kind, guild_id, partner_key FROM "
        "discord_channels ORDER BY channel_id",
    )
    assert channels == [
        ("477126103555899405", "guild", "317743050724081665", None),
        ("487633937825398784", "guild", "317743050724081665", None),
    ]


def test_legacy_message_fields(ws):
    import_path(ws, "discord", LEGACY, "P001")
    rows = _csv_rows(LEGACY_LARGE)
    stored = query(
        ws,
        "SELECT count(*), count(*) FILTER (WHERE chars = 0), sum(attachments), "
        "count(*) FILTER (WHERE mentions > 0), count(body) FROM written_items "
        "WHERE conversation_key = '487633937825398784'",
    )[0]
    assert stored[0] == 300
    # Mentions and links are not prose, so a message of only those has no text.
    not_prose = re.compile(r"<@!?[0-9]+>|https?://\S+")
    empty = sum(1 for r in rows if not not_prose.sub("", r["Contents"]).strip())
    assert stored[1] == empty == 29
    assert stored[2] == sum(len(r["Attachments"].split()) for r in rows) == 24
    assert stored[3] == sum(1 for r in rows if MENTION.search(r["Contents"]))
    assert stored[4] == 0


def test_legacy_timestamps_utc_with_fraction(ws):
    import_path(ws, "discord", LEGACY_SMALL, "P001")
    first = _csv_rows(LEGACY_SMALL)[0]
    row = query(
        ws,
        "SELECT strftime(written_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f'), "
        "time_precision FROM written_items WHERE item_id = ?",
        [first["ID"]],
    )[0]
    assert row == ("2019-01-28 21:57:01.578000", "microsecond")


def test_timestamp_without_fraction(ws, tmp_path):
    folder = tmp_path / "Messages" / "477126103555899405"
    shutil.copytree(LEGACY_SMALL, folder)
    text = (
        (folder / "messages.csv")
        .read_bytes()
        .replace(b"2019-01-28 21:57:01.578000+00:00", b"2019-01-28 21:57:01+00:00")
    )
    (folder / "messages.csv").write_bytes(text)
    summary = import_path(ws, "discord", tmp_path, "P001")
    assert kinds_of(summary)["message"] == (21, 0)
    row = query(
        ws,
        "SELECT time_precision FROM written_items WHERE item_id = '539564584533753867'",
    )[0]
    assert row == ("second",)


def test_current_layout(ws):
    summary = import_path(ws, "discord", CURRENT, "P001")
    assert kinds_of(summary) == {"channel": (4, 0), "message": (8, 0)}
    channels = query(
        ws,
        "SELECT channel_id, channel_kind, guild_id, partner_key IS NOT NULL, "
        "recipient_count FROM discord_channels ORDER BY channel_id",
    )
    assert channels == [
        ("1100000000000000001", "dm", None, True, 2),
        ("1100000000000000002", "group_dm", None, False, None),
        ("1100000000000000003", "guild", "1000000000000000777", False, None),
        ("1100000000000000004", "thread", "1000000000000000777", False, None),
    ]


def test_current_layout_message_counts(ws):
    import_path(ws, "discord", CURRENT, "P001")
    rows = dict(
        (item, rest)
        for item, *rest in query(
            ws,
            "SELECT item_id, words, questions, exclamations, emoji, first_singular, "
            "first_plural, mentions, attachments, time_precision FROM written_items",
        )
    )
    assert rows["1190000000000000103"] == [6, 1, 0, 1, 0, 1, 0, 0, "second"]
    assert rows["1190000000000000102"] == [3, 0, 1, 0, 1, 0, 0, 0, "second"]
    assert rows["1190000000000000101"] == [0, 0, 0, 0, 0, 0, 0, 2, "second"]
    assert rows["1190000000000000201"] == [2, 0, 0, 0, 0, 0, 1, 0, "second"]
    assert rows["1190000000000000302"] == [1, 0, 0, 1, 0, 0, 1, 0, "second"]
    assert rows["1190000000000000301"] == [4, 0, 0, 0, 0, 0, 0, 0, "second"]


def test_lowercase_messages_folder(ws, tmp_path):
    shutil.copytree(CURRENT / "Messages", tmp_path / "package" / "messages")
    summary = import_path(ws, "discord", tmp_path / "package", "P001")
    assert kinds_of(summary) == {"channel": (4, 0), "message": (8, 0)}


def test_package_zip(ws, tmp_path):
    archive = tmp_path / "package.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(LEGACY.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(LEGACY).as_posix())
        zf.writestr("Account/user.json", json.dumps({"id": "1"}))
    summary = import_path(ws, "discord", archive, "P001")
    assert kinds_of(summary) == {"channel": (2, 0), "message": (321, 0)}
    assert summary.ignored_files == 2


def test_reimport_and_overlap(ws):
    first = import_path(ws, "discord", LEGACY_SMALL, "P001")
    assert kinds_of(first) == {"channel": (1, 0), "message": (21, 0)}
    whole = import_path(ws, "discord", LEGACY, "P001")
    assert kinds_of(whole) == {"channel": (1, 1), "message": (300, 21)}
    again = import_path(ws, "discord", LEGACY, "P001")
    assert again.added == 0
    assert query(ws, "SELECT count(*) FROM written_items")[0][0] == 321


def test_single_file_outside_channel_folder(ws, tmp_path):
    path = tmp_path / "messages.csv"
    shutil.copy(LEGACY_SMALL / "messages.csv", path)
    with pytest.raises(InputError, match="channel id"):
        import_path(ws, "discord", path, "P001")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("messages.csv", b"ID,When,Contents,Attachments\r\n1,x,y,\r\n", "header"),
        (
            "messages.csv",
            b"ID,Timestamp,Contents,Attachments\r\nabc,x,y,\r\n",
            "record 1",
        ),
        (
            "messages.csv",
            b"ID,Timestamp,Contents,Attachments\r\n1,2019-13-01 00:00:00,y,\r\n",
            "Timestamp",
        ),
        (
            "messages.json",
            b'[{"ID": 1, "Timestamp": "2024-01-01 00:00:00"}',
            "not valid JSON",
        ),
        ("messages.json", b'{"ID": 1}', "JSON array"),
        ("channel.json", b'{"id": "42", "type": 0}', "does not match"),
    ],
)
def test_malformed_file_adds_nothing(ws, tmp_path, name, content, problem):
    package = tmp_path / "package" / "Messages"
    shutil.copytree(LEGACY_LARGE, package / "487633937825398784")
    broken = package / "477126103555899405"
    shutil.copytree(LEGACY_SMALL, broken)
    (broken / name).write_bytes(content)
    with pytest.raises(InputError) as error:
        import_path(ws, "discord", tmp_path / "package", "P001")
    assert problem in str(error.value)
    assert name in str(error.value)
    assert query(ws, "SELECT count(*) FROM written_items")[0][0] == 0
    assert query(ws, "SELECT count(*) FROM discord_channels")[0][0] == 0


def test_unencrypted_workspace_rejected(tmp_path):
    plain, _ = init_workspace(tmp_path / "plain", encrypted=False)
    participants.add(plain, "P001")
    with pytest.raises(UsageError, match="unencrypted"):
        import_path(plain, "discord", LEGACY, "P001")


def test_keep_text_replaces_mentions(ws):
    import_path(ws, "discord", CURRENT, "P001", keep_text=True)
    bodies = dict(query(ws, "SELECT item_id, body FROM written_items"))
    assert bodies["1190000000000000102"] == "I finished it!"
    assert bodies["1190000000000000301"] == "Line one\nline two"
    mention = bodies["1190000000000000201"]
    assert "900000000000000033" not in mention
    assert re.fullmatch(r"<@[0-9a-f]{32}> see above", mention)


def test_features_legacy(workspace):
    participants.add(workspace, "P001", timezone_name="UTC")
    import_path(workspace, "discord", LEGACY, "P001")
    compute_features(workspace)
    rows = _csv_rows(LEGACY_SMALL) + _csv_rows(LEGACY_LARGE)
    days = {r["Timestamp"][:10] for r in rows}
    night = sum(1 for r in rows if int(r["Timestamp"][11:13]) < 6)
    mentioned = sum(1 for r in rows if MENTION.search(r["Contents"]))

    value, n_obs = feature_value(workspace, "discord_messages_per_active_day")
    assert value == pytest.approx(321 / len(days))
    assert n_obs == 321
    assert feature_value(workspace, "discord_dm_share") == (0.0, 321)
    assert feature_value(workspace, "discord_distinct_servers") == (1.0, 321)
    assert feature_value(workspace, "discord_distinct_partners") == (0.0, 321)
    assert feature_value(workspace, "discord_mention_rate")[0] == pytest.approx(
        mentioned / 321
    )
    assert feature_value(workspace, "discord_night_share")[0] == pytest.approx(
        night / 321
    )


def test_features_both_layouts(workspace):
    participants.add(workspace, "P001", timezone_name="Europe/Berlin")
    import_path(workspace, "discord", LEGACY, "P001")
    import_path(workspace, "discord", CURRENT, "P001")
    compute_features(workspace)
    # 5 of the 8 constructed messages are in a DM or group DM, none of the 321.
    assert feature_value(workspace, "discord_dm_share") == (pytest.approx(5 / 329), 329)
    assert feature_value(workspace, "discord_distinct_partners") == (1.0, 329)
    assert feature_value(workspace, "discord_distinct_servers") == (2.0, 329)


def test_features_null_below_minimum(workspace):
    participants.add(workspace, "P001", timezone_name="Europe/Berlin")
    import_path(workspace, "discord", CURRENT, "P001")
    compute_features(workspace)
    assert feature_value(workspace, "discord_messages_per_active_day") == (None, 8)
    assert feature_value(workspace, "discord_dm_share") == (None, 8)
    assert feature_value(workspace, "discord_night_share") == (None, 8)
    # Counts of partners and servers need one message only.
    assert feature_value(workspace, "discord_distinct_partners") == (1.0, 8)
    assert feature_value(workspace, "discord_distinct_servers") == (1.0, 8)


def test_legacy_dm_and_group_types(ws, tmp_path):
    messages = (LEGACY_SMALL / "messages.csv").read_bytes()
    layout = {
        "300000000000000001": {
            "id": "300000000000000001",
            "type": 1,
            "recipients": ["111111111111111111", "222222222222222222"],
        },
        "300000000000000002": {
            "id": "300000000000000002",
            "type": 3,
            "recipients": [
                "111111111111111111",
                "222222222222222222",
                "333333333333333333",
            ],
        },
    }
    for channel_id, channel in layout.items():
        folder = tmp_path / "Messages" / channel_id
        folder.mkdir(parents=True)
        (folder / "channel.json").write_text(json.dumps(channel))
        (folder / "messages.csv").write_bytes(messages)
    summary = import_path(ws, "discord", tmp_path, "P001")
    # The same 21 message ids in both folders are stored once.
    assert kinds_of(summary) == {"channel": (2, 0), "message": (21, 21)}
    channels = query(
        ws,
        "SELECT channel_kind, partner_key IS NOT NULL, recipient_count "
        "FROM discord_channels ORDER BY channel_id",
    )
    assert channels == [("dm", True, 2), ("group_dm", False, 3)]


def test_dm_partner_key_order_independent(ws, tmp_path):
    for number, recipients in enumerate(
        (
            ["111111111111111111", "222222222222222222"],
            ["222222222222222222", "111111111111111111"],
        )
    ):
        folder = tmp_path / f"export{number}" / "Messages" / f"c4{number}0000000000000"
        folder.mkdir(parents=True)
        (folder / "channel.json").write_text(
            json.dumps(
                {
                    "id": f"4{number}0000000000000",
                    "type": "DM",
                    "recipients": recipients,
                }
            )
        )
        (folder / "messages.json").write_text("[]")
        import_path(ws, "discord", tmp_path / f"export{number}", "P001")
    keys = query(ws, "SELECT DISTINCT partner_key FROM discord_channels")
    assert len(keys) == 1
    assert "111111111111111111" not in keys[0][0]
