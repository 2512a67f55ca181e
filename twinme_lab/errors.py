"""Exceptions raised by twinme_lab.

Every error a user can cause derives from :class:`TwinMeError`. Each class carries
the process exit code the CLI uses for it, so scripts can tell refused input from
misuse without parsing messages.
"""

from __future__ import annotations

# Exit codes, stable for scripts (see the README's command reference).
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
# Interrupted by SIGINT (Ctrl-C): 128 + the signal number, as shells report it.
EXIT_INTERRUPTED = 130


class TwinMeError(Exception):
    """Root of every error twinme_lab raises on purpose."""

    exit_code = EXIT_REFUSED


class UsageError(TwinMeError):
    """A command or API call was given arguments that cannot work together."""

    exit_code = EXIT_USAGE


class InputError(TwinMeError):
    """An input file or record was rejected; nothing from it was stored."""


class WorkspaceKeyError(TwinMeError):
    """The workspace key is missing, malformed, unsafe or wrong."""


class WorkspaceError(TwinMeError):
    """The workspace is missing, not initialised, or already initialised."""


class WorkspaceBusyError(WorkspaceError):
    """Another process holds the workspace database open for writing."""


class OutputError(TwinMeError):
    """An output file could not be written; no partly written file is left."""


class NotFoundError(TwinMeError):
    """A participant, mapping or other named object does not exist."""


class StoreError(TwinMeError):
    """DuckDB failed; the message has every key scrubbed from it."""
