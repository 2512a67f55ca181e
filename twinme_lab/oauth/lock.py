"""A cross-process lock per connection, so one refresh token is spent once.

``fcntl.flock`` on a file under ``<workspace>/locks/``: the lock is released when
the holder closes the file or dies, so a killed process never leaves it held.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import WorkspaceBusyError
from ..workspace import Workspace

LOCK_TIMEOUT = 60.0


@contextmanager
def connection_lock(
    workspace: Workspace,
    participant_id: str,
    platform: str,
    timeout: float = LOCK_TIMEOUT,
) -> Iterator[None]:
    """Hold the exclusive lock of one connection for the block."""
    folder = workspace.root / "locks"
    folder.mkdir(mode=0o700, exist_ok=True)
    # Named by a digest, so no participant id is left in a file name after forget.
    digest = hashlib.sha256(f"{participant_id}|{platform}".encode()).hexdigest()
    path = folder / f"{digest[:24]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceBusyError(
                        f"Another process has been refreshing the {platform} token "
                        f"of {participant_id} for over {timeout:.0f} seconds; "
                        "wait for it to finish and try again."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
