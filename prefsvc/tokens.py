"""Signed link tokens: one salt per purpose, newest key signs, older keys still verify.

Payloads stay tiny (the contact's random public id, and a topic id) so that tokens are short
and signing is cheap; no address or database id of a person ever appears in a link.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, MultiFernet
from cryptography.fernet import InvalidToken as FernetInvalidToken
from itsdangerous import BadData, URLSafeSerializer

from prefsvc.errors import InvalidToken

UNSUBSCRIBE = "prefsvc.unsubscribe.v1"
PREFERENCES = "prefsvc.preferences.v1"
RENEWAL = "prefsvc.renewal.v1"
SEALED = "prefsvc.sealed.v1"


@dataclass(frozen=True)
class UnsubscribeClaim:
    public_id: str
    topic_id: int


class Signer:
    """Signs and verifies link tokens with the configured keys (oldest first)."""

    def __init__(self, secret_keys: tuple[str, ...] | list[str]) -> None:
        keys = list(secret_keys)
        self._unsubscribe = URLSafeSerializer(keys, salt=UNSUBSCRIBE)
        self._preferences = URLSafeSerializer(keys, salt=PREFERENCES)
        self._renewal = URLSafeSerializer(keys, salt=RENEWAL)

    def unsubscribe_token(self, public_id: str, topic_id: int) -> str:
        return self._unsubscribe.dumps([public_id, topic_id])

    def read_unsubscribe(self, token: str) -> UnsubscribeClaim:
        data = _loads(self._unsubscribe, token)
        if (
            not isinstance(data, list)
            or len(data) != 2
            or not isinstance(data[0], str)
            or not isinstance(data[1], int)
            or isinstance(data[1], bool)
        ):
            raise InvalidToken()
        return UnsubscribeClaim(public_id=data[0], topic_id=data[1])

    def preferences_token(self, public_id: str) -> str:
        return self._preferences.dumps(public_id)

    def read_preferences(self, token: str) -> str:
        data = _loads(self._preferences, token)
        if not isinstance(data, str):
            raise InvalidToken()
        return data

    def renewal_token(self, public_id: str) -> str:
        """Sign the link of a re-permission mail: it names only the contact's public id."""
        return self._renewal.dumps(public_id)

    def read_renewal(self, token: str) -> str:
        data = _loads(self._renewal, token)
        if not isinstance(data, str):
            raise InvalidToken()
        return data


def _loads(serializer: URLSafeSerializer, token: str) -> object:
    if not token or len(token) > 512:
        raise InvalidToken()
    try:
        return serializer.loads(token)
    except (BadData, ValueError, TypeError, UnicodeError):
        raise InvalidToken() from None


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
