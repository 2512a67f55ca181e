"""The import framework every platform importer is built on.

An importer is a function registered for a platform name::

    from .common import ImportJob, register

    @register("youtube")
    def import_youtube(job: ImportJob) -> None:
        for source, fmt in job.match([("watch_history", r"watch-history\\.json")]):
            with source.disk_path() as path:
                part = job.stage(
                    source, fmt, "youtube_events",
                    "SELECT ... , row_number() OVER () AS _row "
                    "FROM read_json(?, format='array', columns={...})",
                    [str(path)], key_columns=("watched_at", "title"),
                    kind="video", disk_path=path,
                )
            job.check(part, "watched_at IS NULL", "the time is missing")

:func:`import_path` finds the candidate files (:func:`discover`), checks that the
participant is enrolled, calls the importer, and then writes everything it staged
in one transaction. The importer only reads and validates. It turns each file into
a TEMP table with :meth:`ImportJob.stage` (several files of one format with
:meth:`ImportJob.stage_files`) and raises :class:`InputError` (best via
:meth:`ImportJob.reject` or :meth:`ImportJob.check`) for anything malformed. Because
nothing is written until every file has been staged, a bad file adds nothing at all.

Uniqueness: each staged row gets ``record_key``, an md5 digest of its identifying
fields, and ``record_ordinal``, which counts identical rows (same key) within one
file in file order. Only rows whose ``(record_key, record_ordinal)`` the
participant does not have yet are inserted (an anti-join, the set-based form of
``INSERT ... ON CONFLICT DO NOTHING`` on the table's primary key
``(participant_id, record_key, record_ordinal)``). So importing the same file
again adds nothing, a later export that overlaps an earlier one adds only the
records not stored yet, and identical records inside one file all stay. Tables
that hold sets rather than events (``library_items``) have no ordinal column, and
their key is ``(participant_id, record_key)``.

Provenance: one ``imports`` row per file with its base name and sha256 only (folder
names often contain a participant's real name) and the counts; one ``audit_log``
entry per import with counts only.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import duckdb

from .. import participants
from ..errors import InputError, UsageError
from ..store import quote_literal, transaction
from ..workspace import Workspace

log = logging.getLogger(__name__)

# Order in which summaries list kinds; kinds not named here follow alphabetically.
KIND_ORDER = (
    "music",
    "podcast",
    "audiobook",
    "video",
    "viewing",
    "supplemental",
    "library",
)

# Separator (unit separator, U+001F) and NULL marker (record separator, U+001E)
# inside the text that record keys are digests of, as SQL expressions. Both are
# control characters that do not occur in export text fields.
_KEY_SEPARATOR = "chr(31)"
_KEY_NULL = "chr(30)"

# Names that archive tools add and that are never export files.
_IGNORED_PARTS = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}

# The fix that errors name for an export file that is cut off or not valid JSON.
CUT_OFF_FIX = (
    "download the export again, or extract it again if it was unpacked from a "
    "ZIP archive"
)

# DuckDB 1.5.5's read_json parse error, after the file path is replaced by a label.
_MALFORMED_JSON = re.compile(
    r'Malformed JSON in file "[^"]*", at byte (?P<byte>\d+) in record/value '
    r"(?P<record>\d+): (?P<problem>[^.]+)"
)

# The JSON whitespace characters (RFC 8259, section 2).
_JSON_WHITESPACE = " \t\n\r"

# DuckDB errors that mean the input is bad; any other error is a bug and propagates.
READER_ERRORS = (
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.IOException,
)

Importer = Callable[["ImportJob"], None]
_REGISTRY: dict[str, Importer] = {}


def register(platform: str) -> Callable[[Importer], Importer]:
    """Register ``func(job: ImportJob) -> None`` as the importer for ``platform``.

    The platform name is the one the CLI takes (``twinme-lab import PLATFORM``).
    Registering a second importer for the same platform raises ``ValueError``.
    """

    def decorator(func: Importer) -> Importer:
        if platform in _REGISTRY and _REGISTRY[platform] is not func:
            raise ValueError(f"An importer for {platform!r} is already registered.")
        _REGISTRY[platform] = func
        return func

    return decorator


def platforms() -> list[str]:
    """Return the names of the platforms that have an importer, sorted."""
    return sorted(_REGISTRY)


def importer_for(platform: str) -> Importer:
    """Return the importer registered for ``platform`` or raise :class:`UsageError`."""
    try:
        return _REGISTRY[platform]
    except KeyError:
        known = ", ".join(platforms()) or "none"
        raise UsageError(
            f"No importer for platform {platform!r}; available: {known}."
        ) from None


# --------------------------------------------------------------------------- text


def decode_text(data: bytes, label: str) -> str:
    """Decode export bytes as UTF-8 or UTF-16 and normalise line ends to LF.

    A UTF-8 byte-order mark is stripped, a UTF-16 file needs its BOM (``FF FE`` or
    ``FE FF``), and CRLF and lone CR line ends become LF. Anything else raises
    :class:`InputError` naming ``label``.
    """
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data
    else:
        encoding, body = "utf-8", data
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not valid {encoding.upper()} text (invalid byte at offset "
            f"{exc.start}); re-download the export, or save the file as UTF-8."
        ) from None
    if encoding == "utf-16":
        text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# The bracket that closes a JSON array or object, by its opening bracket.
_JSON_CLOSERS = {"[": "]", "{": "}"}


def _has_utf16_bom(head: bytes) -> bool:
    return head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


# -------------------------------------------------------------------- source files


@dataclass(frozen=True)
class SourceFile:
    """One candidate export file: a file on disk or a member of a ZIP archive.

    ``name`` is the base name (what is stored in ``imports``); ``label`` is the path
    relative to the imported file, folder or archive, used in messages only.
    Exactly one of ``path`` and (``archive``, ``member``) is set.
    """

    name: str
    label: str
    path: Path | None = None
    archive: Path | None = None
    member: str | None = None

    @property
    def in_archive(self) -> bool:
        return self.archive is not None

    @property
    def size(self) -> int:
        """Uncompressed size in bytes."""
        if self.path is not None:
            return self.path.stat().st_size
        with zipfile.ZipFile(self.archive) as archive:
            return archive.getinfo(self.member).file_size

    @contextmanager
    def open(self) -> Iterator:
        """Open the raw bytes for reading (a ZIP member is decompressed as read)."""
        if self.path is not None:
            with open(self.path, "rb") as handle:
                yield handle
        else:
            with zipfile.ZipFile(self.archive) as archive:
                with archive.open(self.member) as handle:
                    yield handle

    def read_bytes(self) -> bytes:
        with self.open() as handle:
            return handle.read()

    def head(self, size: int = 4096) -> bytes:
        """Return the first ``size`` bytes, for sniffing the format."""
        with self.open() as handle:
            return handle.read(size)

    def sha256(self) -> str:
        """Return the hex sha256 of the raw bytes, read in 1 MiB blocks."""
        digest = hashlib.sha256()
        with self.open() as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def read_text(self) -> str:
        """Return the decoded text (see :func:`decode_text`)."""
        return decode_text(self.read_bytes(), self.label)

    def read_json(self):
        """Parse the file as JSON, raising :class:`InputError` with line and column."""
        text = self.read_text()
        if not text.strip():
            raise InputError(f"{self.label} is empty; re-download the export.")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text.rstrip(_JSON_WHITESPACE)):
                problem = (
                    "and appears to be cut off, because it ends before the JSON "
                    f"is complete (line {exc.lineno}, column {exc.colno})"
                )
            else:
                problem = f"(line {exc.lineno}, column {exc.colno}: {exc.msg})"
            raise InputError(
                f"{self.label} is not valid JSON {problem}. Nothing was imported; "
                f"{CUT_OFF_FIX}."
            ) from None

    def first_char(self) -> str:
        """Return the first character that is not whitespace or a BOM ("" if none).

        Lets an importer tell a JSON array from an object, or an empty file, before
        reading it.
        """
        head = self.head(4096)
        for bom, encoding in (
            (codecs.BOM_UTF8, "utf-8"),
            (codecs.BOM_UTF16_LE, "utf-16-le"),
            (codecs.BOM_UTF16_BE, "utf-16-be"),
        ):
            if head.startswith(bom):
                head, encoding = head[len(bom) :], encoding
                break
        else:
            encoding = "utf-8"
        text = head.decode(encoding, errors="ignore").lstrip()
        return text[:1]

    def last_char(self) -> str:
        """Return the last character that is not JSON whitespace ("" if none).

        Reads only the last 4 KiB of a file on disk. A ZIP member is read to its
        end, because a compressed stream cannot be entered at an offset.
        """
        head = self.head(2)
        utf16 = {
            codecs.BOM_UTF16_LE: "utf-16-le",
            codecs.BOM_UTF16_BE: "utf-16-be",
        }.get(head)
        size = 4096
        if self.path is not None:
            with open(self.path, "rb") as handle:
                end = handle.seek(0, 2)
                start = max(0, end - size)
                handle.seek(start)
                tail = handle.read()
        else:
            start, tail = 0, b""
            with self.open() as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    window = (tail + block)[-size:]
                    start += len(tail) + len(block) - len(window)
                    tail = window
        if utf16 and start % 2:
            # UTF-16 code units start at even offsets, after the 2-byte BOM.
            tail = tail[1:]
        text = tail.decode(utf16 or "utf-8", errors="ignore")
        text = text.removeprefix("\ufeff").rstrip(_JSON_WHITESPACE)
        if not text and start > 0:
            # The last 4 KiB are all whitespace, so the whole file is read.
            text = self.read_text().rstrip(_JSON_WHITESPACE)
        return text[-1:]

    def readable_on_disk(self) -> bool:
        """Whether DuckDB can read the file in place (on disk, UTF-8 with or
        without BOM; DuckDB's readers skip a UTF-8 BOM and accept CRLF)."""
        return self.path is not None and not _has_utf16_bom(self.head(2))

    @contextmanager
    def disk_path(self) -> Iterator[Path]:
        """Yield a path DuckDB can read: the file itself when possible.

        A ZIP member or a UTF-16 file is decoded into a UTF-8 copy in a private
        temporary folder (mode 0700) that is removed when the block ends.

        NOTE: that copy is unencrypted while the import runs, because DuckDB's
        readers take file paths and this DuckDB build cannot read from Python
        file objects without fsspec.
        """
        if self.readable_on_disk():
            yield self.path
            return
        folder = Path(tempfile.mkdtemp(prefix="twinme-import-"))
        try:
            copy = folder / "data"
            if self.path is None and not _has_utf16_bom(self.head(2)):
                with self.open() as handle, open(copy, "wb") as out:
                    shutil.copyfileobj(handle, out, 1 << 20)
            else:
                copy.write_text(self.read_text(), encoding="utf-8")
            yield copy
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def disk_paths(sources: Sequence[SourceFile]) -> Iterator[list[Path]]:
    """Yield :meth:`SourceFile.disk_path` for several files at once."""
    with ExitStack() as stack:
        yield [stack.enter_context(source.disk_path()) for source in sources]


def numbered_json_files_sql(columns: dict[str, str]) -> str:
    """Return SQL reading JSON array files with ``_file`` and ``_row`` columns.

    ``columns`` maps each declared key to its DuckDB type; keys not declared are
    never read. The SQL takes three parameters: the list of paths, the same list
    again, and its length. ``_row`` relies on DuckDB returning the files in list
    order and each file's records in file order (``preserve_insertion_order``,
    on by default). The file index comes from a hash join on the file name.
    """
    declared = ", ".join(
        f"{quote_literal(k)}: {quote_literal(v)}" for k, v in columns.items()
    )
    return (
        "(SELECT *, row_number() OVER () AS _row FROM read_json(?, "
        f"format = 'array', filename = true, columns = {{{declared}}})) "
        "JOIN (SELECT unnest(CAST(? AS VARCHAR[])) AS filename, "
        "unnest(range(?)) AS _file) USING (filename)"
    )


def _member_is_safe(name: str) -> bool:
    """Reject absolute paths, drive letters and ``..`` parts (zip-slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return False
    parts = re.split(r"[\\/]+", name)
    return ".." not in parts


def _ignored(parts: Sequence[str]) -> bool:
    return any(p in _IGNORED_PARTS or p.startswith("._") for p in parts)


def _archive_members(archive_path: Path, prefix: str) -> list[SourceFile]:
    try:
        archive = zipfile.ZipFile(archive_path)
    except zipfile.BadZipFile as exc:
        raise InputError(
            f"{prefix or archive_path.name} is not a readable ZIP archive ({exc}); "
            "re-download it."
        ) from None
    found = []
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if not _member_is_safe(info.filename):
                raise InputError(
                    f"{archive_path.name} contains the unsafe member path "
                    f"{info.filename!r}, which points outside the archive; "
                    "nothing was imported. Use the archive as the platform sent it."
                )
            parts = PurePosixPath(info.filename).parts
            if _ignored(parts):
                continue
            label = f"{prefix}{archive_path.name}:{info.filename}"
            found.append(
                SourceFile(
                    name=parts[-1],
                    label=label,
                    archive=archive_path,
                    member=info.filename,
                )
            )
    return found


def discover(path: str | Path) -> list[SourceFile]:
    """List the candidate files in a file, a folder or a ZIP archive.

    A folder is searched recursively (names may contain spaces), and ZIP archives
    found inside it are listed member by member. A ZIP member path that could point
    outside the archive raises :class:`InputError`. Archive-tool litter such as
    ``__MACOSX/`` and ``.DS_Store`` is skipped. The result is sorted by label.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root} was not found; check the path.")
    if root.is_dir():
        found: list[SourceFile] = []
        for item in sorted(root.rglob("*")):
            relative = item.relative_to(root)
            if not item.is_file() or _ignored(relative.parts):
                continue
            if item.suffix.lower() == ".zip":
                _check_zip(item)
                parent = relative.parent.as_posix()
                prefix = "" if parent == "." else parent + "/"
                found.extend(_archive_members(item, prefix))
                continue
            found.append(SourceFile(item.name, relative.as_posix(), path=item))
        return sorted(found, key=lambda s: s.label)
    if root.suffix.lower() == ".zip":
        _check_zip(root)
    if zipfile.is_zipfile(root):
        return sorted(_archive_members(root, ""), key=lambda s: s.label)
    return [SourceFile(root.name, root.name, path=root)]


def _check_zip(path: Path) -> None:
    """Raise :class:`InputError` for a ``.zip`` file that is not a whole archive."""
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{path.name} is not a complete ZIP archive (damaged or cut short); "
            "download the export again and import the new file."
        )


# ------------------------------------------------------------------------ summary


@dataclass
class KindCount:
    """Rows of one kind: ``added`` were new, ``skipped`` were already stored."""

    added: int = 0
    skipped: int = 0


@dataclass
class ImportSummary:
    """Counts of one import, per kind of record and per file."""

    platform: str
    participant_id: str
    kinds: dict[str, KindCount] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    ignored_files: int = 0

    def count(self, kind: str, added: int, skipped: int) -> None:
        entry = self.kinds.setdefault(kind, KindCount())
        entry.added += added
        entry.skipped += skipped

    def ordered_kinds(self) -> list[str]:
        known = [k for k in KIND_ORDER if k in self.kinds]
        return known + sorted(k for k in self.kinds if k not in KIND_ORDER)

    @property
    def added(self) -> int:
        return sum(c.added for c in self.kinds.values())

    @property
    def skipped(self) -> int:
        return sum(c.skipped for c in self.kinds.values())

    def to_dict(self) -> dict:
        """Return the summary as plain JSON-ready data (for ``--json``)."""
        return {
            "platform": self.platform,
            "participant": self.participant_id,
            "kinds": {
                k: {"added": self.kinds[k].added, "skipped": self.kinds[k].skipped}
                for k in self.ordered_kinds()
            },
            "added": self.added,
            "skipped": self.skipped,
            "files": list(self.files),
            "ignored_files": self.ignored_files,
        }

    def lines(self) -> list[str]:
        """Return one text line per kind, e.g. ``music: 300 added, 0 skipped``."""
        return [
            f"{k}: {self.kinds[k].added} added, {self.kinds[k].skipped} skipped "
            "(already stored)"
            for k in self.ordered_kinds()
        ]


# --------------------------------------------------------------------- import job


@dataclass
class StagedPart:
    """A TEMP table of validated rows from one or more files, not yet written.

    Row ``_file`` of the table is the index of its file in ``sources``.
    """

    sources: list[SourceFile]
    format: str
    table: str
    staging: str
    rows: int

    @property
    def source(self) -> SourceFile:
        """The first (for a single-file part, the only) file of the part."""
        return self.sources[0]


def _key_sql(columns: Sequence[str]) -> str:
    parts = [f"coalesce(CAST({_ident(c)} AS VARCHAR), {_KEY_NULL})" for c in columns]
    return f"md5(concat_ws({_KEY_SEPARATOR}, {', '.join(parts)}))"


def _pattern_display(pattern: str) -> str:
    """Show a file-name regex as a name pattern, e.g. ``endsong_N.json``."""
    return pattern.replace(r"\d+", "N").replace(r"[\w-]+", "*").replace("\\", "")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ImportJob:
    """The state of one import: the files found, the options and the staged rows.

    Attributes an importer uses: ``con`` (the open workspace connection, outside
    any transaction while staging), ``files`` (every :class:`SourceFile` found),
    ``options`` (keyword options given to :func:`import_path`), ``participant_id``,
    ``platform``, ``summary`` and ``single_file`` (True when the user named one
    file rather than a folder or archive).
    """

    def __init__(
        self,
        workspace: Workspace,
        con: duckdb.DuckDBPyConnection,
        platform: str,
        participant_id: str,
        path: Path,
        files: list[SourceFile],
        options: dict,
    ) -> None:
        self.workspace = workspace
        self.con = con
        self.platform = platform
        self.participant_id = participant_id
        self.path = path
        self.files = files
        self.options = options
        self.single_file = len(files) == 1 and files[0].path == path
        self.summary = ImportSummary(platform, participant_id)
        self.parts: list[StagedPart] = []
        # Extra audit entries an importer may set, such as {"keep_text": True};
        # counts and flags only, never personal values.
        self.audit_notes: dict = {}
        # Steps run inside the import's transaction after the rows are written,
        # each called with the connection, e.g. to drop rows the import supersedes.
        self.after_write: list = []
        self._counter = 0

    # ---- selecting files

    def match(
        self, patterns: Sequence[tuple[str, str]]
    ) -> list[tuple[SourceFile, str]]:
        """Pair each file whose base name fully matches a pattern with its format.

        ``patterns`` is a sequence of ``(format, regex)``, tried in order and
        matched case-sensitively against the base name. Files that match nothing
        are counted in ``summary.ignored_files``, except when the user named a
        single file: then an unmatched file raises :class:`InputError`. No match
        at all raises :class:`InputError` too.
        """
        compiled = [(fmt, re.compile(rx)) for fmt, rx in patterns]
        names = ", ".join(_pattern_display(rx) for _, rx in patterns)
        matched = []
        for source in self.files:
            fmt = next((f for f, rx in compiled if rx.fullmatch(source.name)), None)
            if fmt is None:
                if self.single_file:
                    raise InputError(
                        f"{source.label} is not a recognised {self.platform} export "
                        f"file; expected a file named like {names}."
                    )
                self.summary.ignored_files += 1
                continue
            matched.append((source, fmt))
        if not matched:
            raise InputError(
                f"No {self.platform} export file found in {self.path.name}; "
                f"expected files named like {names}."
            )
        return matched

    # ---- errors

    def reject(
        self,
        source: SourceFile,
        problem: str,
        record: int | None = None,
        fix: str = "re-download the export and import it again",
    ) -> InputError:
        """Return an :class:`InputError` naming the file, the record and the fix.

        ``record`` is the 1-based record index (for CSV: the data row, header
        excluded). Use it as ``raise job.reject(source, "msPlayed is missing", 7)``.
        """
        where = f"{source.label}, record {record}" if record else source.label
        return InputError(f"{where}: {problem}; nothing was imported; {fix}.")

    def duckdb_error(
        self, source: SourceFile, exc: duckdb.Error, disk_path: Path | None = None
    ) -> InputError:
        """Turn a DuckDB reader error into an :class:`InputError` naming the file.

        The file's full path is replaced by its label, because folder names may
        carry personal names, and DuckDB's SQL excerpt is dropped.
        """
        # The first line is DuckDB's message; later lines hold reader hints
        # (auto_detect, ignore_errors) and a SQL excerpt that do not apply here.
        text = str(exc).strip().split("\n", 1)[0].strip().rstrip(".")
        for path in {disk_path, source.path} - {None}:
            text = text.replace(str(path), source.label)
        text = re.sub(r"^[A-Za-z ]+Error: ", "", text)
        malformed = _MALFORMED_JSON.match(text)
        if malformed:
            # In DuckDB 1.5.5 the byte offset counts from the start of the record
            # being parsed, and record/value numbers differ from record numbers.
            detail = (
                f"DuckDB: {malformed['problem']} at byte {malformed['byte']} of "
                f"record/value {malformed['record']}"
            )
            cut_off = malformed["problem"] == "unexpected end of data"
            cut_off_text = " and appears to be cut off" if cut_off else ""
            return InputError(
                f"{source.label} is not valid JSON{cut_off_text} ({detail}). "
                f"Nothing was imported; {CUT_OFF_FIX}."
            )
        return InputError(
            f"{source.label} could not be read: {text}. Nothing was imported; "
            "check that this is the original export file and not a truncated or "
            "edited copy."
        )

    def require_content(self, source: SourceFile, expected_first: str) -> None:
        """Raise :class:`InputError` unless the file starts with ``expected_first``.

        ``expected_first`` is the character the format must begin with after any
        BOM and whitespace, such as ``"["`` for a JSON array or ``"{"`` for an
        object. An empty file is rejected with its own message.
        """
        first = source.first_char()
        if not first:
            raise self.reject(source, "the file is empty")
        if first != expected_first:
            shape = {"[": "a JSON array", "{": "a JSON object"}.get(
                expected_first, repr(expected_first)
            )
            raise self.reject(
                source,
                f"expected {shape}, but the file starts with {first!r}",
                fix="check that this file is the one the platform exported",
            )
        if expected_first in _JSON_CLOSERS:
            self.require_complete_json(source, expected_first)

    def require_complete_json(self, source: SourceFile, opening: str) -> None:
        """Raise :class:`InputError` unless the JSON ends with the closing bracket.

        ``opening`` is the file's first character, ``"["`` or ``"{"``. DuckDB
        1.5.5's ``read_json(format = 'array')`` accepts an array whose ``]`` is
        missing when the file ends after a complete record. Without this check,
        an export cut off between two records would import only the records
        before the cut, with no error.
        """
        closing = _JSON_CLOSERS[opening]
        last = source.last_char()
        if last != closing:
            shape = "array" if opening == "[" else "object"
            raise self.reject(
                source,
                "the file is not valid JSON and appears to be cut off, because "
                f"it ends with {last!r} instead of the {closing!r} that closes "
                f"its JSON {shape}",
                fix=CUT_OFF_FIX,
            )

    # ---- staging

    def stage(
        self,
        source: SourceFile,
        fmt: str,
        table: str,
        select_sql: str,
        params: Sequence | None = None,
        *,
        key_columns: Sequence[str],
        kind: str | None = None,
        kind_sql: str | None = None,
        disk_path: Path | None = None,
    ) -> StagedPart:
        """Stage the rows of ``select_sql``, read from one file, for ``table``.

        ``select_sql`` must return columns named like ``table``'s columns (all but
        participant_id, record_key, record_ordinal and import_id, which are filled
        in here; a missing nullable column stays NULL; extra columns, best named
        with a leading ``_``, are kept for checks and keys but not stored) plus
        ``_row``, the 1-based record index in the file. ``key_columns`` are the
        identifying fields the record key is a digest of (include a
        ``source``/format column if the table has one). The summary kind is the
        constant ``kind`` or the SQL expression ``kind_sql`` over the selected
        columns. DuckDB reader errors become :class:`InputError` naming the file
        (see :meth:`duckdb_error`; pass ``disk_path`` when reading a copy).
        """
        return self.stage_files(
            [source],
            fmt,
            table,
            f"SELECT *, 0 AS _file FROM ({select_sql})",
            params,
            key_columns=key_columns,
            kind=kind,
            kind_sql=kind_sql,
            disk_paths=[disk_path] if disk_path is not None else None,
        )

    def stage_files(
        self,
        sources: Sequence[SourceFile],
        fmt: str,
        table: str,
        select_sql: str,
        params: Sequence | None = None,
        *,
        key_columns: Sequence[str],
        kind: str | None = None,
        kind_sql: str | None = None,
        disk_paths: Sequence[Path] | None = None,
    ) -> StagedPart:
        """Stage the rows of several files of one format with one query.

        Like :meth:`stage`, but ``select_sql`` reads every file in ``sources``
        at once, which lets DuckDB parse them in parallel. It must return
        ``_file``, the 0-based index of the row's file in ``sources``, and
        ``_row``, the 1-based index over all files read in order.
        :func:`numbered_json_files_sql` builds such a relation for JSON arrays.
        Every record of every file must be selected, because record numbers in
        messages are counted from ``_row`` and the sizes of the earlier files.
        """
        if (kind is None) == (kind_sql is None):
            raise ValueError("Give exactly one of kind and kind_sql.")
        self._counter += 1
        staging = f"_import_stage_{self._counter}"
        kind_expr = quote_literal(kind) if kind is not None else kind_sql
        sql = (
            f"CREATE TEMP TABLE {staging} AS "
            f"SELECT *, {_key_sql(key_columns)} AS record_key, "
            f"({kind_expr}) AS _kind, CAST(1 AS INTEGER) AS record_ordinal "
            f"FROM ({select_sql})"
        )
        try:
            self.con.execute(sql, list(params or []))
        except READER_ERRORS as exc:
            raise self._reader_error(sources, exc, disk_paths) from None
        if self._has_column(table, "record_ordinal"):
            self._number_identical_rows(staging)
        rows = self.con.execute(f"SELECT count(*) FROM {staging}").fetchone()[0]
        part = StagedPart(list(sources), fmt, table, staging, rows)
        self.parts.append(part)
        return part

    def _reader_error(self, sources, exc, disk_paths) -> InputError:
        paths = list(disk_paths or [None] * len(sources))
        text = str(exc)
        culprit = sources[0]
        for source, path in zip(sources, paths, strict=True):
            for candidate in {path, source.path} - {None}:
                if str(candidate) in text:
                    culprit = source
                    text = text.replace(str(candidate), source.label)
        return self.duckdb_error(culprit, type(exc)(text))

    def _number_identical_rows(self, staging: str) -> None:
        """Set record_ordinal to 1, 2, ... for rows with the same key in one file.

        Only keys that occur more than once are numbered, because a window over
        every row costs a full sort and repeated keys are rare.
        """
        self.con.execute(
            f"UPDATE {staging} SET record_ordinal = numbered.ordinal FROM ("
            "SELECT _file, _row, CAST(row_number() OVER (PARTITION BY _file, "
            "record_key ORDER BY _row) AS INTEGER) AS ordinal "
            f"FROM {staging} SEMI JOIN (SELECT _file, record_key FROM {staging} "
            "GROUP BY ALL HAVING count(*) > 1) USING (_file, record_key)"
            f") AS numbered WHERE {staging}._file = numbered._file "
            f"AND {staging}._row = numbered._row AND numbered.ordinal > 1"
        )

    def check(
        self,
        part: StagedPart,
        bad_sql: str,
        problem: str,
        fix: str = "re-download the export and import it again",
    ) -> None:
        """Raise :class:`InputError` for the first staged row where ``bad_sql`` holds.

        ``bad_sql`` is a boolean SQL expression over the staged columns, e.g.
        ``"ended_at IS NULL"``; the message names the file and record index.
        """
        found = self.con.execute(
            f"SELECT _file, _row FROM {part.staging} WHERE ({bad_sql}) "
            "ORDER BY _file, _row LIMIT 1"
        ).fetchone()
        if found is None:
            return
        file_index, row = found
        if len(part.sources) > 1:
            earlier = self.con.execute(
                f"SELECT count(*) FROM {part.staging} WHERE _file < ?", [file_index]
            ).fetchone()[0]
            row -= earlier
        raise self.reject(part.sources[file_index], problem, int(row), fix)

    def _has_column(self, table: str, column: str) -> bool:
        return column in self._columns(table)

    def _columns(self, table: str, catalog: str | None = None) -> list[str]:
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_catalog = coalesce(?, current_database()) "
            "AND table_name = ? ORDER BY ordinal_position",
            [catalog, table],
        ).fetchall()
        if not rows:
            raise ValueError(f"No table {table!r} in the workspace schema.")
        return [name for (name,) in rows]

    # ---- writing

    def write(self) -> ImportSummary:
        """Write every staged part in one transaction and fill in the summary."""
        files: list[tuple[StagedPart, int]] = [
            (part, index) for part in self.parts for index in range(len(part.sources))
        ]
        digests = [part.sources[index].sha256() for part, index in files]
        counts: list[dict[str, dict[str, int]]] = [{} for _ in files]
        with transaction(self.con):
            import_ids = [
                self._insert_import_row(part, index, digest)
                for (part, index), digest in zip(files, digests, strict=True)
            ]
            tables = list(dict.fromkeys(part.table for part in self.parts))
            for table in tables:
                self._insert_table(table, files, import_ids, counts)
            for file_counts in counts:
                for kind, entry in file_counts.items():
                    self.summary.count(kind, entry["added"], entry["skipped"])
            for sequence, (part, index) in enumerate(files):
                self.con.execute(
                    "UPDATE imports SET counts = ? WHERE import_id = ?",
                    [
                        json.dumps(counts[sequence], sort_keys=True),
                        import_ids[sequence],
                    ],
                )
                self.summary.files.append(
                    {
                        "file": part.sources[index].name,
                        "format": part.format,
                        "records": sum(
                            c["added"] + c["skipped"] for c in counts[sequence].values()
                        ),
                        "kinds": counts[sequence],
                    }
                )
            for step in self.after_write:
                step(self.con)
            audit_counts = {
                "files": len(files),
                "ignored_files": self.summary.ignored_files,
                "kinds": self.summary.to_dict()["kinds"],
                **self.audit_notes,
            }
            self.workspace.audit(
                self.con, f"import.{self.platform}", self.participant_id, audit_counts
            )
        return self.summary

    def _insert_import_row(self, part: StagedPart, index: int, digest: str) -> int:
        return self.con.execute(
            "INSERT INTO imports (participant_id, platform, format, file_name, "
            "file_sha256, imported_at, counts) VALUES (?, ?, ?, ?, ?, now(), '{}') "
            "RETURNING import_id",
            [
                self.participant_id,
                self.platform,
                part.format,
                part.sources[index].name,
                digest,
            ],
        ).fetchone()[0]

    def _insert_table(
        self,
        table: str,
        files: list[tuple[StagedPart, int]],
        import_ids: list[int],
        counts: list[dict[str, dict[str, int]]],
    ) -> None:
        """Insert the new rows of every part staged for ``table`` in one statement.

        New rows are found with an anti-join against the participant's stored
        keys, and a row staged twice in this import (the same file found twice,
        or two overlapping exports in one folder) is kept from its first file
        only. What remains cannot conflict with the primary key, so the insert
        needs no ON CONFLICT DO NOTHING, which made the insert of 1,000,000 rows
        about 60% slower in a DuckDB 1.5.5 test.
        """
        target = self._columns(table)
        ordinal = "record_ordinal" in target
        key = ["record_key", "record_ordinal"] if ordinal else ["record_key"]
        data_columns = [
            c
            for c in target
            if c not in {"participant_id", "import_id", "record_key", "record_ordinal"}
        ]
        selects = []
        sequence_of = {
            (part.staging, index): sequence
            for sequence, (part, index) in enumerate(files)
        }
        parts = [p for p in self.parts if p.table == table]
        for part in parts:
            staged = set(self._columns(part.staging, "temp"))
            values = ", ".join(
                _ident(c) if c in staged else f"NULL AS {_ident(c)}"
                for c in data_columns
            )
            sequences = [
                sequence_of[(part.staging, i)] for i in range(len(part.sources))
            ]
            ids = [import_ids[s] for s in sequences]
            selects.append(
                f"SELECT {values}, {', '.join(key)}, _kind, "
                f"list_extract({ids}, _file + 1) AS import_id, "
                f"list_extract({sequences}, _file + 1) AS _sequence "
                f"FROM {part.staging}"
            )
            for file_index, kind, total in self.con.execute(
                f"SELECT _file, _kind, count(*) FROM {part.staging} GROUP BY ALL"
            ).fetchall():
                # Every row counts as skipped until the anti-join below finds
                # it new.
                counts[sequences[file_index]][kind] = {"added": 0, "skipped": total}
        using = ", ".join(key)
        rows_sql = " UNION ALL ".join(selects)
        stored_sql = f"(SELECT {using} FROM {_ident(table)} WHERE participant_id = ?)"
        repeated = self.con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM ({rows_sql}) GROUP BY {using} "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
        if repeated:
            rows_sql = self._first_copies(rows_sql, key)
        for sequence, kind, added in self.con.execute(
            f"SELECT _sequence, _kind, count(*) FROM ({rows_sql}) "
            f"ANTI JOIN {stored_sql} USING ({using}) GROUP BY ALL",
            [self.participant_id],
        ).fetchall():
            entry = counts[sequence][kind]
            entry["added"] = added
            entry["skipped"] -= added
        column_sql = ", ".join(_ident(c) for c in data_columns + key)
        self.con.execute(
            f"INSERT INTO {_ident(table)} (participant_id, import_id, {column_sql}) "
            f"SELECT ?, import_id, {column_sql} FROM ({rows_sql}) "
            f"ANTI JOIN {stored_sql} USING ({using})",
            [self.participant_id, self.participant_id],
        )
        self.con.execute("DROP TABLE IF EXISTS _import_first_copies")
        for part in parts:
            self.con.execute(f"DROP TABLE IF EXISTS {part.staging}")

    def _first_copies(self, rows_sql: str, key: list[str]) -> str:
        """Keep, of rows staged more than once in this import, the first file's."""
        using = ", ".join(key)
        self.con.execute(
            f"CREATE TEMP TABLE _import_first_copies AS SELECT * FROM ({rows_sql}) "
            f"QUALIFY _sequence = min(_sequence) OVER (PARTITION BY {using})"
        )
        return "SELECT * FROM _import_first_copies"


def import_path(
    workspace: Workspace,
    platform: str,
    path: str | Path,
    participant_id: str,
    **options,
) -> ImportSummary:
    """Import the export at ``path`` (file, folder or ZIP) for an enrolled participant.

    Every file is read and validated before anything is written; the writes happen
    in one transaction. Raises :class:`UsageError` for an unknown platform or an
    invalid participant id, :class:`NotFoundError` when the participant is not
    enrolled, and :class:`InputError` (nothing stored) for a malformed or
    unrecognised file. ``options`` are passed to the importer (``job.options``).
    """
    importer = importer_for(platform)
    participants.validate_id(participant_id)
    root = Path(path)
    files = discover(root)
    with workspace.connect() as con:
        participants.require(con, participant_id)
        job = ImportJob(workspace, con, platform, participant_id, root, files, options)
        try:
            importer(job)
            if not job.parts:
                raise InputError(
                    f"No {platform} records found in {root.name}; nothing was imported."
                )
            summary = job.write()
        finally:
            for part in job.parts:
                con.execute(f"DROP TABLE IF EXISTS {part.staging}")
    log.info(
        "imported %s: %d added, %d skipped", platform, summary.added, summary.skipped
    )
    return summary
