"""LinkedIn export importer and features on the real samples and variants."""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
import zipfile
from datetime import datetime

import pytest
from conftest import REAL, feature_value, kinds_of, query

from twinme_lab.errors import InputError
from twinme_lab.features import compute_features
from twinme_lab.imports import import_path

EXPORT_A = REAL / "linkedin_export" / "a"
EXPORT_B = REAL / "linkedin_export" / "b"
OWN_URL_B = "https://www.linkedin.com/in/kch5899"

# Table and kind of each sample file, for the expected counts.
FILE_KINDS = {
    "Connections.csv": "connection",
    "Education.csv": "education",
    "Invitations.csv": "invitation",
    "Positions.csv": "position",
    "Profile.csv": "profile",
    "Skills.csv": "skill",
    "Comments.csv": "comment",
    "Reactions.csv": "reaction",
    "Shares.csv": "share",
    "messages.csv": "message",
}


def _dict_rows(path, skip_lines=0) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[skip_lines:]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@pytest.mark.parametrize("export", ["a", "b"])
def test_sample_counts_match_expected(ws, expected_counts, export):
    folder = REAL / "linkedin_export" / export
    summary = import_path(ws, "linkedin", folder, "P001")
    expected = {}
    for path in folder.iterdir():
        entry = expected_counts[f"linkedin_export/{export}/{path.name}"]
        expected[FILE_KINDS[path.name]] = (entry["records"], 0)
    assert kinds_of(summary) == expected
    assert summary.ignored_files == 0


def test_reimport_adds_nothing(ws):
    first = import_path(ws, "linkedin", EXPORT_B, "P001")
    again = import_path(ws, "linkedin", EXPORT_B, "P001")
    assert again.added == 0
    assert again.skipped == first.added


def test_export_zip_with_other_files(ws, tmp_path):
    archive = tmp_path / "Basic_LinkedInDataExport_03-20-2024.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in EXPORT_A.iterdir():
            zf.write(path, path.name)
        zf.writestr("Registration.csv", "Registered At\n1/1/20\n")
    summary = import_path(ws, "linkedin", archive, "P001")
    assert summary.added == 300 + 2 + 67 + 4 + 1 + 27
    assert summary.ignored_files == 1


def test_connections_preamble_and_keys(ws):
    import_path(ws, "linkedin", EXPORT_A / "Connections.csv", "P001")
    rows = _dict_rows(EXPORT_A / "Connections.csv", skip_lines=3)
    assert len(rows) == 300
    stored = query(
        ws,
        "SELECT count(*), count(DISTINCT contact_key), min(connected_on), "
        "max(connected_on) FROM linkedin_connections",
    )[0]
    dates = [datetime.strptime(r["Connected On"], "%d %b %Y").date() for r in rows]
    with_person = sum(
        1 for r in rows if r["URL"].strip() or (r["First Name"] + r["Last Name"])
    )
    assert stored[0] == 300
    assert stored[1] == with_person
    assert stored[2] == min(dates)
    assert stored[3] == max(dates)


def test_connections_2018_columns(ws, tmp_path):
    rows = _dict_rows(EXPORT_A / "Connections.csv", skip_lines=3)
    path = tmp_path / "Connections.csv"
    columns = [
        "First Name",
        "Last Name",
        "Email Address",
        "Company",
        "Position",
        "Connected On",
    ]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    summary = import_path(ws, "linkedin", path, "P001")
    assert kinds_of(summary) == {"connection": (300, 0)}


def test_pseudonyms_stable_across_files(ws):
    import_path(ws, "linkedin", EXPORT_B, "P001")
    # Both the connection and the accepted invitation name the same person by
    # profile URL, so their pseudonyms meet.
    shared = query(
        ws,
        "SELECT count(DISTINCT c.contact_key) FROM linkedin_connections c "
        "JOIN linkedin_invitations i USING (participant_id, contact_key)",
    )[0][0]
    connections = {r["URL"].strip() for r in _dict_rows(EXPORT_B / "Connections.csv")}
    invited = {
        r["inviteeProfileUrl"].strip()
        for r in _dict_rows(EXPORT_B / "Invitations.csv")
        if r["Direction"] == "OUTGOING"
    } | {
        r["inviterProfileUrl"].strip()
        for r in _dict_rows(EXPORT_B / "Invitations.csv")
        if r["Direction"] == "INCOMING"
    }
    assert shared == len((connections & invited) - {""})
    assert shared > 0


def test_comments_multiline_recovered(ws):
    summary = import_path(
        ws, "linkedin", EXPORT_B / "Comments.csv", "P001", keep_text=True
    )
    assert kinds_of(summary) == {"comment": (44, 0)}
    body = query(
        ws,
        "SELECT body FROM written_items WHERE kind = 'comment' AND written_at = "
        "CAST('2023-12-10 09:53:09+00' AS TIMESTAMPTZ)",
    )[0][0]
    lines = body.split("\n")
    assert lines[0] == "Adipiscing"
    assert lines[1] == "EST (pariatur pariatur)"
    assert lines[2].startswith("[email:")
    assert "example.com" not in body
    quoted = query(
        ws,
        "SELECT body FROM written_items WHERE kind = 'comment' AND written_at = "
        "CAST('2024-01-15 20:57:34+00' AS TIMESTAMPTZ)",
    )[0][0]
    assert (
        quoted == "Veniam culpa(culpa) ut occaecat esse Duisconsectetu nulla "
        'Laboris= "O1"'
    )


def test_comment_with_blank_continuation(ws):
    import_path(ws, "linkedin", EXPORT_B / "Comments.csv", "P001", keep_text=True)
    body = query(
        ws,
        "SELECT body FROM written_items WHERE kind = 'comment' AND written_at = "
        "CAST('2023-06-21 08:49:40+00' AS TIMESTAMPTZ)",
    )[0][0]
    assert body == "E'e incididunt\n"


def test_comments_orphan_line_rejected(ws, tmp_path):
    path = tmp_path / "Comments.csv"
    path.write_bytes(
        b"Date,Link,Message\r\nstray text\r\n"
        + b"\r\n".join((EXPORT_B / "Comments.csv").read_bytes().split(b"\r\n")[1:])
    )
    with pytest.raises(InputError, match="line 2"):
        import_path(ws, "linkedin", path, "P001")
    assert query(ws, "SELECT count(*) FROM written_items")[0][0] == 0


def test_comments_unclosed_quote_rejected(ws, tmp_path):
    path = tmp_path / "Comments.csv"
    path.write_text(
        "Date,Link,Message\n"
        '2024-01-01 10:00:00,https://www.linkedin.com/feed/update/x,"open quote\n'
        "2024-01-02 10:00:00,https://www.linkedin.com/feed/update/y,fine\n"
    )
    with pytest.raises(InputError, match="line 2"):
        import_path(ws, "linkedin", path, "P001")


def test_shares_multiline_and_empty(ws):
    import_path(ws, "linkedin", EXPORT_B / "Shares.csv", "P001", keep_text=True)
    rows = _dict_rows(EXPORT_B / "Shares.csv")
    bodies = query(
        ws, "SELECT body FROM written_items WHERE kind = 'share' ORDER BY written_at"
    )
    assert len(bodies) == 13
    assert sum(1 for (b,) in bodies if b is None) == 2
    with_breaks = sum(1 for r in rows if "\n" in r["ShareCommentary"])
    assert sum(1 for (b,) in bodies if b and "\n" in b) == with_breaks == 3


def test_shares_utf16_tabs_variant(ws, tmp_path):
    rows = list(
        csv.reader(
            io.StringIO(
                (EXPORT_B / "Shares.csv").read_text(encoding="utf-8"), newline=""
            )
        )
    )
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter="\t", lineterminator="\r\n").writerows(rows)
    path = tmp_path / "Shares.csv"
    path.write_text(buffer.getvalue(), encoding="utf-16")
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")

    summary = import_path(ws, "linkedin", path, "P001")
    assert kinds_of(summary) == {"share": (13, 0)}
    original = import_path(ws, "linkedin", EXPORT_B / "Shares.csv", "P001")
    assert kinds_of(original) == {"share": (0, 13)}


def test_messages_own_and_others(ws):
    import_path(ws, "linkedin", EXPORT_B, "P001")
    rows = _dict_rows(EXPORT_B / "messages.csv")
    own = sum(1 for r in rows if r["SENDER PROFILE URL"] == OWN_URL_B)
    stored = query(
        ws,
        "SELECT is_own, count(*), count(chars), count(author_key), count(body) "
        "FROM written_items WHERE kind = 'message' GROUP BY is_own ORDER BY is_own",
    )
    with_sender = sum(
        1
        for r in rows
        if r["SENDER PROFILE URL"] != OWN_URL_B
        and (r["SENDER PROFILE URL"] or r["FROM"])
    )
    assert stored == [
        (False, 300 - own, 0, with_sender, 0),
        (True, own, own, 0, 0),
    ]


def test_messages_capitalised_name(ws, tmp_path):
    shutil.copy(EXPORT_B / "messages.csv", tmp_path / "Messages.csv")
    summary = import_path(ws, "linkedin", tmp_path / "Messages.csv", "P001")
    assert kinds_of(summary) == {"message": (300, 0)}


def test_messages_older_header(ws, tmp_path):
    path = tmp_path / "Messages.csv"
    path.write_text(
        "From,To,Date,Subject,Content,Direction,Folder\n"
        "Ilvaro Quent,Me Myself,2018-02-10 16:22:00 UTC,Hi,Hello there?,INCOMING,"
        "INBOX\n"
        "Me Myself,Ilvaro Quent,2018-02-10 16:52:00 UTC,Re: Hi,I am well!,OUTGOING,"
        "INBOX\n"
    )
    summary = import_path(ws, "linkedin", path, "P001")
    assert kinds_of(summary) == {"message": (2, 0)}
    rows = query(
        ws,
        "SELECT is_own, words, questions, exclamations, first_singular, "
        "author_key IS NOT NULL FROM written_items ORDER BY written_at",
    )
    assert rows == [
        (False, None, None, None, None, True),
        (True, 3, 0, 1, 1, False),
    ]
    conversations = query(
        ws, "SELECT count(DISTINCT conversation_key) FROM written_items"
    )[0][0]
    assert conversations == 1


def test_messages_self_unknown_rejected(ws, tmp_path):
    path = tmp_path / "messages.csv"
    path.write_text(
        "CONVERSATION ID,CONVERSATION TITLE,FROM,SENDER PROFILE URL,TO,"
        "RECIPIENT PROFILE URLS,DATE,SUBJECT,CONTENT,FOLDER\n"
        "c1,,Ann Vel,https://www.linkedin.com/in/annvel,Bo Rin,"
        "https://www.linkedin.com/in/borin,2024-01-01 10:00:00 UTC,,hi,INBOX\n"
    )
    with pytest.raises(InputError, match="Profile.csv"):
        import_path(ws, "linkedin", path, "P001")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("Connections.csv", "First Name,Last Name,URL\nA,B,x\n", "Connected On"),
        (
            "Connections.csv",
            "First Name,Last Name,URL,Connected On\nA,B,x,yesterday\n",
            "record 1",
        ),
        (
            "Positions.csv",
            "Company Name,Title,Started On,Finished On\nAcme,Dev,Spring 2020,\n",
            "Started On",
        ),
        ("Reactions.csv", "Date,Type,Link\n2024/01/01,LIKE,x\n", "Date"),
        (
            "Invitations.csv",
            'From,To,Sent At,Direction\nA,B,"1/2/24, 1:00 AM",UP\n',
            "Direction",
        ),
        ("Skills.csv", "", "empty"),
    ],
)
def test_malformed_file_adds_nothing(ws, tmp_path, name, content, problem):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT_A, folder)
    (folder / name).write_text(content)
    with pytest.raises(InputError) as error:
        import_path(ws, "linkedin", folder, "P001")
    assert problem in str(error.value)
    assert name in str(error.value)
    for table in (
        "linkedin_connections",
        "linkedin_positions",
        "linkedin_skills",
        "imports",
    ):
        assert query(ws, f"SELECT count(*) FROM {table}")[0][0] == 0


def test_profile_keeps_industry_only(ws):
    import_path(ws, "linkedin", EXPORT_A, "P001")
    row = _dict_rows(EXPORT_A / "Profile.csv")[0]
    assert query(ws, "SELECT industry FROM linkedin_profile") == [(row["Industry"],)]


def test_career_dates_precision(ws):
    import_path(ws, "linkedin", EXPORT_A, "P001")
    education = query(
        ws,
        "SELECT started_on, started_precision, finished_on FROM linkedin_education "
        "ORDER BY started_on",
    )
    assert [(str(a), b, c) for a, b, c in education] == [
        ("2015-01-01", "year", datetime(2020, 1, 1).date()),
        ("2021-11-01", "month", None),
    ]
    current = query(
        ws, "SELECT company FROM linkedin_positions WHERE finished_on IS NULL"
    )
    assert current == [("Hmto - همتو",)]


def test_features_network_and_career(ws):
    import_path(ws, "linkedin", EXPORT_A, "P001")
    compute_features(ws)
    rows = _dict_rows(EXPORT_A / "Connections.csv", skip_lines=3)
    years = [datetime.strptime(r["Connected On"], "%d %b %Y").year for r in rows]
    assert feature_value(ws, "linkedin_connections") == (300.0, 300)
    value, n_obs = feature_value(ws, "linkedin_connections_per_year")
    assert value == pytest.approx(300 / (max(years) - min(years) + 1))
    assert feature_value(ws, "linkedin_career_moves") == (3.0, 4)
    assert feature_value(ws, "linkedin_skills") == (27.0, 27)
    # Export a has no Shares, Comments or Reactions file: unknown, not zero.
    assert feature_value(ws, "linkedin_posts_per_month") == (None, 0)
    assert feature_value(ws, "linkedin_reactions_per_month") == (None, 0)


def test_features_activity_per_month(ws):
    import_path(ws, "linkedin", EXPORT_B, "P001")
    compute_features(ws)
    dates = [
        r["Date"]
        for name in ("Shares.csv", "Reactions.csv")
        for r in _dict_rows(EXPORT_B / name)
    ]
    comment_dates = [
        line[:19]
        for line in (EXPORT_B / "Comments.csv").read_text().split("\n")[1:]
        if line[:4].isdigit()
    ]
    assert len(comment_dates) == 44
    every = sorted(dates + comment_dates)
    first, last = datetime.fromisoformat(every[0]), datetime.fromisoformat(every[-1])
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    assert feature_value(ws, "linkedin_posts_per_month") == (
        pytest.approx(13 / months),
        71,
    )
    assert feature_value(ws, "linkedin_comments_per_month") == (
        pytest.approx(44 / months),
        71,
    )
    assert feature_value(ws, "linkedin_reactions_per_month") == (
        pytest.approx(14 / months),
        71,
    )


def test_response_latency_by_hand(ws):
    import_path(ws, "linkedin", EXPORT_B, "P001")
    compute_features(ws)
    rows = _dict_rows(EXPORT_B / "messages.csv")
    conversations: dict[str, list] = {}
    for row in rows:
        when = datetime.strptime(row["DATE"], "%Y-%m-%d %H:%M:%S UTC")
        own = row["SENDER PROFILE URL"] == OWN_URL_B
        conversations.setdefault(row["CONVERSATION ID"], []).append((when, own))
    gaps = []
    for messages in conversations.values():
        # Within one second the participant's message counts as the earlier.
        messages.sort(key=lambda m: (m[0], not m[1]))
        pairs = zip(messages, messages[1:], strict=False)
        for (before, before_own), (after, after_own) in pairs:
            if after_own and not before_own:
                gaps.append((after - before).total_seconds() / 60)
    value, n_obs = feature_value(ws, "comm_response_latency")
    assert n_obs == len(gaps)
    assert value == pytest.approx(statistics.median(gaps))


def _import_audits(ws) -> list[dict]:
    rows = query(
        ws,
        "SELECT counts FROM audit_log WHERE kind = 'import.linkedin' ORDER BY audit_id",
    )
    return [json.loads(counts) for (counts,) in rows]


def test_keep_text_recorded_in_audit(ws):
    import_path(ws, "linkedin", EXPORT_B / "Shares.csv", "P001")
    import_path(ws, "linkedin", EXPORT_B / "Comments.csv", "P001", keep_text=True)
    first, second = _import_audits(ws)
    assert "keep_text" not in first
    assert second["keep_text"] is True
    kept = query(
        ws, "SELECT kind, count(body) FROM written_items GROUP BY kind ORDER BY kind"
    )
    assert kept == [("comment", 44), ("share", 0)]


def test_two_members_in_one_folder_rejected(ws):
    from twinme_lab.errors import InputError

    with pytest.raises(InputError, match="2 different LinkedIn profiles"):
        import_path(ws, "linkedin", REAL / "linkedin_export", "P001")
    assert query(ws, "SELECT count(*) FROM imports") == [(0,)]
