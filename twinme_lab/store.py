"""The encrypted DuckDB store: opening, schema migrations, and safe error text.

The database file is attached with DuckDB's AES-256-GCM encryption. DuckDB only
writes encrypted files when the httpfs extension supplies its cipher, so the
extension is loaded from the file the ``duckdb-extension-httpfs`` wheel installs,
with signature checks on and autoloading and autoinstalling off: nothing is
downloaded, and no copy in ``~/.duckdb`` can be loaded in its place.

Every call opens the file, works in short transactions and closes it, so a notebook
never holds the file locked against a batch run. DuckDB lets one process at a time
attach a file read-write, or any number of processes read-only.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from .errors import StoreError, WorkspaceBusyError, WorkspaceKeyError

log = logging.getLogger(__name__)

ALIAS = "ws"
BUSY_RETRY_SECONDS = 5.0
# Caps the threads of each DuckDB connection. Parallel report workers set it so
# that two reports on two cores do not run four DuckDB threads between them.
THREADS_ENV = "TWINME_DUCKDB_THREADS"

_CONFIG = {
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_community_extensions": False,
}


def httpfs_extension_path() -> Path:
    """Return the httpfs extension file shipped by the duckdb-extension-httpfs wheel."""
    try:
        import duckdb_extension_httpfs
    except ImportError:
        raise StoreError(
            "The duckdb-extension-httpfs package is not installed, and DuckDB needs "
            "it to write encrypted files; run 'pip install -e .' in the repository."
        ) from None
    root = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    version = duckdb.__version__
    path = root / f"v{version}" / "httpfs.duckdb_extension"
    if not path.is_file():
        raise StoreError(
            f"No httpfs extension for DuckDB {version} under {root}; install "
            f"duckdb-extension-httpfs=={version}."
        )
    return path


def quote_literal(text: str) -> str:
    """Quote text as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def is_interrupt(exc: BaseException) -> bool:
    """Tell whether DuckDB raised ``exc`` because Ctrl-C arrived during a query.

    DuckDB 1.5.5 checks for signals while it works and consumes the
    KeyboardInterrupt: it raises InterruptException, or a plain
    ``RuntimeError("Query interrupted")`` when the signal arrives while a result
    is fetched.
    """
    if isinstance(exc, duckdb.InterruptException):
        return True
    return type(exc) is RuntimeError and str(exc) == "Query interrupted"


def scrub(message: str, *secrets: str) -> str:
    """Remove every secret from a message."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    return message


def _disable_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """Stop DuckDB drawing a progress bar on the terminal during long queries."""
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        # Inside Jupyter, DuckDB rejects the setting unless ipywidgets is
        # installed, and without ipywidgets it draws no bar there anyway.
        pass


def new_connection(temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB connection with the cipher extension loaded."""
    config = dict(_CONFIG)
    threads = os.environ.get(THREADS_ENV)
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise StoreError(
                f"{THREADS_ENV} is {threads!r}; set it to a whole number of threads "
                "(1 or more), or unset it to let DuckDB use every core."
            )
        config["threads"] = int(threads)
    con = duckdb.connect(":memory:", config=config)
    try:
        con.execute(f"LOAD {quote_literal(str(httpfs_extension_path()))}")
        con.execute("SET temp_file_encryption = true")
        _disable_progress_bar(con)
        if temp_directory is not None:
            temp_directory.mkdir(parents=True, exist_ok=True)
            con.execute(f"SET temp_directory = {quote_literal(str(temp_directory))}")
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"Could not load DuckDB's cipher extension: {exc}") from None
    return con


def attach(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    key_hex: str | None,
    alias: str = ALIAS,
    key_origin: str = "the workspace key",
    read_only: bool = False,
) -> None:
    """Attach a database file, encrypted when ``key_hex`` is given.

    Retries for a few seconds while another process holds the file's lock, then
    raises :class:`WorkspaceBusyError`. DuckDB's error text is scrubbed of the key.
    With ``read_only``, several processes can attach the file at once, but none
    of them while a process has it attached read-write.
    """
    options = ["READ_ONLY"] if read_only else []
    if key_hex:
        options.append(f"ENCRYPTION_KEY {quote_literal(key_hex)}")
    suffix = f" ({', '.join(options)})" if options else ""
    sql = f"ATTACH {quote_literal(str(path))} AS {alias}{suffix}"
    deadline = time.monotonic() + BUSY_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            con.execute(sql)
            return
        except duckdb.IOException as exc:
            text = scrub(str(exc), key_hex or "")
            if "lock" not in text.lower():
                raise StoreError(f"Could not open {path}: {text}") from None
            if time.monotonic() >= deadline:
                raise WorkspaceBusyError(
                    f"The workspace database {path} is in use by another process; "
                    "wait for that command or notebook cell to finish, or close the "
                    "program holding it, and try again."
                ) from None
            log.info("workspace database busy, retrying")
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 0.5)
        except duckdb.Error as exc:
            text = scrub(str(exc), key_hex or "")
            if "encryption key" in text.lower() or "without a key" in text.lower():
                raise WorkspaceKeyError(
                    f"The key from {key_origin} does not open {path}; set "
                    "TWINME_KEY or TWINME_KEY_FILE to the workspace's current key "
                    "(saved at init, or written by the last rotate-key), or unset "
                    "them to use the key file init wrote."
                ) from None
            raise StoreError(f"Could not open {path}: {text}") from None


def migration_files() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every bundled migration, in order."""
    found = []
    for entry in resources.files("twinme_lab.migrations").iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        number, _, rest = name.partition("_")
        found.append((int(number), rest.removesuffix(".sql"), entry.read_text()))
    found.sort()
    versions = [version for version, _, _ in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"Duplicate migration numbers in {versions}")
    return found


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """Return the highest applied migration, 0 for an empty database."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_name = 'schema_migrations'",
        [ALIAS],
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute(
        "SELECT coalesce(max(version), 0) FROM schema_migrations"
    ).fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction."""
    current = schema_version(con)
    applied = []
    for version, name, sql in migration_files():
        if version <= current:
            continue
        con.execute("BEGIN")
        try:
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name]
            )
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise StoreError(f"Migration {version} ({name}) failed: {exc}") from None
        applied.append(version)
        log.info("applied migration %s (%s)", version, name)
    return applied


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block in one transaction: commit on success, roll back on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def fsync_directory(path: Path) -> None:
    """Flush a directory entry so a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
