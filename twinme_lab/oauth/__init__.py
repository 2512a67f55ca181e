"""OAuth connections: connect, list, use and disconnect platform accounts.

Importing this package registers a ``participants.before_forget`` hook that
revokes and deletes a participant's connections before they are forgotten.
"""

from __future__ import annotations

from .. import participants
from ..logs import quiet_noisy_loggers
from .errors import (
    AccountBoundError,
    OAuthFlowError,
    ReauthRequired,
    StateError,
    TransientTokenError,
)
from .flow import (
    PendingAuthorization,
    begin,
    complete,
    connect,
    disconnect,
    revoke_all_for_forget,
    sandbox_browser,
)
from .listing import ConnectionList, connections
from .session import AuthorizedSession, authorized_session, refresh_tokens

__all__ = [
    "AccountBoundError",
    "AuthorizedSession",
    "ConnectionList",
    "OAuthFlowError",
    "PendingAuthorization",
    "ReauthRequired",
    "StateError",
    "TransientTokenError",
    "authorized_session",
    "begin",
    "complete",
    "connect",
    "connections",
    "disconnect",
    "refresh_tokens",
    "sandbox_browser",
]

# requests-oauthlib logs tokens and codes at DEBUG level.
quiet_noisy_loggers()

if revoke_all_for_forget not in participants.before_forget:
    participants.before_forget.append(revoke_all_for_forget)
