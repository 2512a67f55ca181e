"""Errors of the OAuth layer; each names the participant and platform involved."""

from __future__ import annotations

from ..errors import TwinMeError


class OAuthFlowError(TwinMeError):
    """An authorization request was rejected, cancelled or failed."""


class StateError(OAuthFlowError):
    """A callback's state is unknown, used, expired or bound to another request."""


class AccountBoundError(OAuthFlowError):
    """The platform account is already connected to another participant."""


class ReauthRequired(TwinMeError):
    """The connection's tokens no longer work; the participant must reconnect."""


class TransientTokenError(TwinMeError):
    """The token endpoint failed with a 5xx, timeout or network error."""
