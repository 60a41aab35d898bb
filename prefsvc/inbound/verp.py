"""VERP addresses: ``bounces+TOKEN@domain`` and ``unsubscribe+TOKEN@domain``.

The envelope sender of each message, and the ``mailto:`` in its ``List-Unsubscribe``, carry a
token that names what was sent: a delivery (kind ``d``, a campaign message) or a service notice
(kind ``n``, an outbox row). What comes back to that address is tied to it without guessing
from the text of a report.

The token must name the row without showing it (no address, no database id: a sequential id in
every Return-Path would tell any relay how much we send and to whom next), survive MTAs that
fold local parts to lower case, and fit a 64-octet local part. So:

* the 8-byte id, its kind and 6 zero bytes fill one 16-byte block, encrypted with AES-128 (a
  single block is exactly what a block cipher is for; ECB over one block leaks nothing but
  equality, and equal tokens for the same delivery are what we want for idempotence);
* a 72-bit HMAC-SHA256 tag over the ciphertext follows (forging takes ~2^72 mails; the zero
  bytes inside add 48 more bits a forger must hit);
* both keys come from one itsdangerous key derivation per secret and purpose (HMAC with the
  purpose's own salt), split in halves as Fernet splits its key, so a bounce token is no
  unsubscribe token and vice versa;
* 16 + 9 = 25 bytes are exactly 40 base32 characters: no padding and no spare bits, so there
  is one spelling per token apart from case, which we fold on purpose. ``unsubscribe+`` plus 40
  is 52 octets.

Keys are handled as for link tokens in ``prefsvc.mail.tokens``: ``SECRET_KEYS`` oldest first,
the newest signs, every key verifies, so rotating keys keeps old bounces readable. Nothing of
``tokens.Signer`` itself fits (its base64 tokens are case-sensitive and carry the payload in
clear), hence the separate scheme. A forged, truncated or foreign token reads as ``None``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from functools import lru_cache
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from itsdangerous import Signer

BOUNCES = "bounces"
UNSUBSCRIBE = "unsubscribe"
PURPOSES = (BOUNCES, UNSUBSCRIBE)
DELIVERY = "d"
NOTICE = "n"
KINDS = (DELIVERY, NOTICE)
SALTS = {purpose: f"prefsvc.verp.{purpose}.v1" for purpose in PURPOSES}
TOKEN_LENGTH = 40
_VERSION = 1
_TAG_BYTES = 9
_PAD = bytes(6)
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
_BASE32 = frozenset(_ALPHABET)
_DIGITS = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")


class Token(NamedTuple):
    """What a VERP address names: its purpose, the kind of row and that row's id."""

    purpose: str
    kind: str
    ident: int


class _Keys(NamedTuple):
    cipher: Cipher
    mac: bytes


class VerpCodec:
    """Makes and reads VERP tokens with the configured keys (oldest first, newest signs).

    Key derivation happens once here; each token then costs one AES block and one HMAC.
    """

    def __init__(self, secret_keys: tuple[str, ...] | list[str]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self._keys: dict[str, list[_Keys]] = {}
        self._local = threading.local()
        for purpose, salt in SALTS.items():
            signer = Signer(
                list(secret_keys),
                salt=salt,
                key_derivation="hmac",
                digest_method=hashlib.sha256,
            )
            derived = [signer.derive_key(key) for key in reversed(signer.secret_keys)]
            self._keys[purpose] = [
                _Keys(Cipher(algorithms.AES(key[:16]), modes.ECB()), key[16:]) for key in derived
            ]

    def token(self, purpose: str, kind: str, ident: int) -> str:
        """Return the 40-character lower-case token naming row ``ident`` of ``kind``."""
        if purpose not in self._keys or kind not in KINDS:
            raise ValueError(f"unknown purpose or kind: {purpose!r}, {kind!r}")
        if isinstance(ident, bool) or not isinstance(ident, int) or not 0 <= ident < 2**64:
            raise ValueError("ident must be an unsigned 64-bit integer")
        keys = self._keys[purpose][0]
        block = bytes((_VERSION, ord(kind))) + ident.to_bytes(8, "big") + _PAD
        encryptor = keys.cipher.encryptor()
        sealed = encryptor.update(block) + encryptor.finalize()
        tag = hmac.digest(keys.mac, sealed, "sha256")[:_TAG_BYTES]
        return base64.b32encode(sealed + tag).decode("ascii").lower()

    def address(self, purpose: str, kind: str, ident: int, domain: str) -> str:
        return f"{purpose}+{self.token(purpose, kind, ident)}@{domain}"

    def read(self, purpose: str, token: str) -> Token | None:
        """Return what ``token`` names for ``purpose``, or ``None`` if it is not one of ours."""
        token = token.lower()
        if purpose not in self._keys or len(token) != TOKEN_LENGTH or not _BASE32 >= set(token):
            return None
        # 40 base32 digits are exactly 200 bits; int() reads them at C speed (b32decode is
        # pure Python in 3.11 and was a fifth of reading a bounce).
        raw = int(token.translate(_DIGITS), 32).to_bytes(25, "big")
        sealed, tag = raw[:16], raw[16:]
        for index, keys in enumerate(self._keys[purpose]):
            if not hmac.compare_digest(hmac.digest(keys.mac, sealed, "sha256")[:_TAG_BYTES], tag):
                continue
            block = self._decryptor(purpose, index).update(sealed)
            kind = chr(block[1])
            if block[0] != _VERSION or kind not in KINDS or block[10:] != _PAD:
                return None
            return Token(purpose, kind, int.from_bytes(block[2:10], "big"))
        return None

    def _decryptor(self, purpose: str, index: int):
        """Return this thread's decryption context for a key (one per thread, made once).

        ECB keeps no state between blocks, so one context decrypts any number of single
        blocks; making one per token cost as much as the HMAC and the AES together.
        """
        contexts = self._local.__dict__.setdefault("contexts", {})
        context = contexts.get((purpose, index))
        if context is None:
            context = contexts[(purpose, index)] = self._keys[purpose][index].cipher.decryptor()
        return context

    def parse(self, address: str) -> Token | None:
        """Return what a recipient address ``purpose+TOKEN@domain`` names, else ``None``.

        The domain is the MTA's business (it only hands us mail for ours); angle brackets and
        case are tolerated because MTAs differ in both.
        """
        if not isinstance(address, str) or len(address) > 320:
            return None
        local, at, _domain = address.strip().strip("<>").rpartition("@")
        if not at:
            return None
        purpose, plus, token = local.lower().partition("+")
        if not plus:
            return None
        return self.read(purpose, token)


@lru_cache(maxsize=8)
def _codec(secret_keys: tuple[str, ...]) -> VerpCodec:
    return VerpCodec(secret_keys)


def codec(secret_keys: tuple[str, ...] | list[str]) -> VerpCodec:
    """Return the codec for these keys, derived once per process and key set."""
    return _codec(tuple(secret_keys))


def bounce_address(
    secret_keys: tuple[str, ...] | list[str], kind: str, ident: int, domain: str
) -> str:
    """Return the envelope sender ``bounces+TOKEN@domain`` for row ``ident`` of ``kind``."""
    return codec(secret_keys).address(BOUNCES, kind, ident, domain)


def unsubscribe_address(
    secret_keys: tuple[str, ...] | list[str], kind: str, ident: int, domain: str
) -> str:
    """Return the ``List-Unsubscribe`` mailbox ``unsubscribe+TOKEN@domain`` for that row."""
    return codec(secret_keys).address(UNSUBSCRIBE, kind, ident, domain)


def parse_recipient(secret_keys: tuple[str, ...] | list[str], address: str) -> Token | None:
    """Return ``(purpose, kind, ident)`` named by an envelope recipient, or ``None``."""
    return codec(secret_keys).parse(address)
