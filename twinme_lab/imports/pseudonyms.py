"""Keyed pseudonyms for other people named in data exports.

Contacts, message partners and commenters appear in exports by name, e-mail
address, profile URL or platform user id. None of these is stored. Each is
replaced by an HMAC-SHA256 of its normalised form, keyed with an HKDF subkey of the
workspace master key. The same person therefore gets the same pseudonym
everywhere in one workspace, so distinct contacts can still be counted, but a
guessed name cannot be checked against the stored values without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import UsageError

_PSEUDONYM_KEY_INFO = b"twinme-lab pseudonym key v1"

# 128 bits of the HMAC: collisions among a participant's contacts are negligible.
PSEUDONYM_HEX_CHARS = 32

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_LINKEDIN_PROFILE = re.compile(
    r"https?://(?:[a-z]{2,3}\.)?linkedin\.com/in/[^\s,\"'<>)]+", re.IGNORECASE
)


def pseudonym_key(workspace) -> bytes:
    """Derive the 32-byte pseudonym key from the workspace master key.

    Raises :class:`UsageError` for an unencrypted workspace, which has no key to
    derive from: a pseudonym without a secret could be reversed by guessing names.
    """
    master = getattr(workspace, "key", None)
    if master is None:
        raise UsageError(
            f"The workspace {workspace.root} is unencrypted, so it has no key for "
            "the pseudonyms of other people in this export. Import it into an "
            "encrypted workspace, such as one created by 'twinme-lab init'."
        )
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_PSEUDONYM_KEY_INFO
    ).derive(master.raw)


def normalise_name(value: str) -> str:
    """Fold case, Unicode compatibility forms and runs of white space in a name."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    return " ".join(folded.split())


def normalise_email(value: str) -> str:
    return value.strip().casefold()


def normalise_url(value: str) -> str:
    """Reduce a profile URL to host and path, decoded, lower-case, no trailing /."""
    text = value.strip()
    parts = urlsplit(text if "://" in text else "https://" + text)
    host = parts.netloc.casefold()
    if host.startswith("www."):
        host = host[4:]
    path = unicodedata.normalize("NFC", unquote(parts.path)).casefold().rstrip("/")
    return host + path


class Pseudonymizer:
    """Map identifying values to keyed pseudonyms, one namespace per kind of value.

    ``kind`` keeps a name and a URL with the same text apart, and names the
    platform's id space (``discord_user``, ``linkedin_conversation``).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the pseudonym key must be 32 bytes")
        self._key = key

    @classmethod
    def for_workspace(cls, workspace) -> Pseudonymizer:
        return cls(pseudonym_key(workspace))

    def __repr__(self) -> str:
        return "Pseudonymizer()"

    def digest(self, kind: str, normalised: str) -> str:
        """Return the pseudonym of an already normalised value."""
        message = kind.encode() + b"\x00" + normalised.encode("utf-8")
        mac = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return mac[:PSEUDONYM_HEX_CHARS]

    def name(self, value: str | None) -> str | None:
        """Return the pseudonym of a person's name, None for an empty one."""
        if value is None or not value.strip():
            return None
        return self.digest("name", normalise_name(value))

    def email(self, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return self.digest("email", normalise_email(value))

    def url(self, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return self.digest("url", normalise_url(value))

    def identifier(self, kind: str, value: str | int | None) -> str | None:
        """Return the pseudonym of a platform id such as a user or conversation id."""
        if value is None or not str(value).strip():
            return None
        return self.digest(kind, str(value).strip())

    def scrub_text(self, text: str) -> str:
        """Replace e-mail addresses and LinkedIn profile URLs inside free text.

        Used only for text kept with ``--keep-text``. Names written in free text
        cannot be recognised reliably and stay as written.
        """
        text = _EMAIL.sub(lambda m: "[email:" + self.email(m.group(0)) + "]", text)
        return _LINKEDIN_PROFILE.sub(
            lambda m: "[profile:" + self.url(m.group(0)) + "]", text
        )
