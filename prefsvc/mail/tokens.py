"""Signed link tokens: one salt per purpose, newest key signs, older keys still verify.

Payloads stay tiny (the contact's random public id, and a topic id) so that tokens are short
and signing is cheap; no address or database id of a person ever appears in a link.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet, MultiFernet
from cryptography.fernet import InvalidToken as FernetInvalidToken
from itsdangerous import (
    BadData,
    Serializer,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_decode, base64_encode

from prefsvc.errors import InvalidToken

UNSUBSCRIBE = "prefsvc.unsubscribe.v1"
PREFERENCES = "prefsvc.recipient.centre.v1"
SIGNIN = "prefsvc.recipient.signin.v1"
SIGNIN_VALID = timedelta(hours=24)
# A clock a little ahead of the signer's must not refuse a link signed a moment ago.
CLOCK_SKEW = timedelta(minutes=5)
RENEWAL = "prefsvc.renewal.v1"
SEALED = "prefsvc.sealed.v1"


@dataclass(frozen=True)
class UnsubscribeClaim:
    public_id: str
    topic_id: int


@dataclass(frozen=True)
class SigninClaim:
    """A fresh sign-in link: proof of holding the address now, optionally for one request."""

    public_id: str
    request_id: int | None
    issued_at: datetime


class _LinkSerializer(URLSafeSerializer):
    """``URLSafeSerializer`` that does not try zlib on the payload.

    A link payload is a random 16-character id and perhaps a number: zlib never makes it
    shorter, so itsdangerous sends it uncompressed anyway and the tokens are the same. The
    attempt was half the cost of a token (9 of 18 µs), and a campaign signs two per message.
    """

    def dump_payload(self, obj: object) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class Signer:
    """Signs and verifies link tokens with the configured keys (oldest first)."""

    def __init__(self, secret_keys: tuple[str, ...] | list[str]) -> None:
        keys = list(secret_keys)
        self._keys = keys
        self._unsubscribe = _LinkSerializer(keys, salt=UNSUBSCRIBE)
        self._preferences = _LinkSerializer(keys, salt=PREFERENCES)
        self._signin = URLSafeTimedSerializer(keys, salt=SIGNIN)
        self._renewal = _LinkSerializer(keys, salt=RENEWAL)

    def unsubscribe_token(self, public_id: str, topic_id: int) -> str:
        return self._unsubscribe.dumps([public_id, topic_id])

    def read_unsubscribe(self, token: str) -> UnsubscribeClaim:
        public_id, topic_id = _id_and_number(_loads(self._unsubscribe, token))
        return UnsubscribeClaim(public_id=public_id, topic_id=topic_id)

    def preferences_token(self, public_id: str) -> str:
        return self._preferences.dumps(public_id)

    def read_preferences(self, token: str) -> str:
        return _public_id(_loads(self._preferences, token))

    def signin_token(self, public_id: str, request_id: int | None, *, now: datetime) -> str:
        """Sign a link valid for ``SIGNIN_VALID`` from ``now`` (the app's clock, not the OS's)."""
        stamp = int(now.timestamp())
        at_now = type("_SignedAt", (TimestampSigner,), {"get_timestamp": lambda self: stamp})
        serializer = URLSafeTimedSerializer(self._keys, salt=SIGNIN, signer=at_now)
        return serializer.dumps([public_id, request_id or 0])

    def read_signin(self, token: str, *, now: datetime) -> SigninClaim:
        """Return the claim of a sign-in token no older than 24 hours, or raise InvalidToken."""
        data, issued = _loads(self._signin, token, return_timestamp=True)
        issued = issued.astimezone(UTC)
        if not issued - CLOCK_SKEW <= now <= issued + SIGNIN_VALID:
            raise InvalidToken()
        public_id, request_id = _id_and_number(data)
        return SigninClaim(public_id=public_id, request_id=request_id or None, issued_at=issued)

    def renewal_token(self, public_id: str) -> str:
        """Sign the link of a re-permission mail: it names only the contact's public id."""
        return self._renewal.dumps(public_id)

    def read_renewal(self, token: str) -> str:
        return _public_id(_loads(self._renewal, token))


def _loads(serializer: URLSafeSerializer, token: str, **options: object) -> object:
    if not token or len(token) > 512:
        raise InvalidToken()
    try:
        data = serializer.loads(token, **options)
    except (BadData, ValueError, TypeError, UnicodeError):
        raise InvalidToken() from None
    _refuse_non_canonical(token)
    return data


def _public_id(data: object) -> str:
    """Return the payload of a link that names only a contact's public id."""
    if not isinstance(data, str):
        raise InvalidToken()
    return data


def _id_and_number(data: object) -> tuple[str, int]:
    """Return ``[public_id, n]`` from a payload; a bool is no number, whatever Python says."""
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not isinstance(data[0], str)
        or not isinstance(data[1], int)
        or isinstance(data[1], bool)
    ):
        raise InvalidToken()
    return data[0], data[1]


def _refuse_non_canonical(token: str) -> None:
    """Refuse a token that only decodes to a valid one.

    Base64 decoding ignores the spare bits of the last character, padding and stray
    characters, so several spellings of one signed token verify; only the spelling we issued
    may work, or a mutated link would still unsubscribe.
    """
    for part in token.split("."):
        if part and base64_encode(base64_decode(part)).decode("ascii") != part:
            raise InvalidToken()


class Sealer:
    """Encrypts small payloads that must pass through the broker but hold personal data.

    Queue messages end up in broker logs and dumps, so what a worker needs beyond ids (the old
    values of a rectification, say) travels encrypted and expires; keys as for ``Signer``.
    """

    def __init__(self, secret_keys: tuple[str, ...] | list[str]) -> None:
        fernets = [Fernet(_fernet_key(key)) for key in reversed(list(secret_keys))]
        self._fernet = MultiFernet(fernets)  # the newest key encrypts, every key decrypts

    def seal(self, data: object, *, now: datetime) -> str:
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return self._fernet.encrypt_at_time(payload, int(now.timestamp())).decode("ascii")

    def unseal(self, token: str, *, now: datetime, max_age_seconds: int) -> object:
        """Return the payload, or raise InvalidToken if forged or older than ``max_age_seconds``."""
        try:
            plain = self._fernet.decrypt_at_time(
                token.encode("ascii"), ttl=max_age_seconds, current_time=int(now.timestamp())
            )
            return json.loads(plain)
        except (FernetInvalidToken, ValueError, TypeError, UnicodeError):
            raise InvalidToken() from None


def _fernet_key(secret: str) -> bytes:
    digest = hashlib.sha256(SEALED.encode() + b"\0" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)
