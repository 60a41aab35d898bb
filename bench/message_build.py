"""Benchmark: per-recipient cost of rendering, building and DKIM-signing a ~30 KB newsletter.

Prints µs per message for each step next to the generic way of doing it (``EmailMessage`` +
``as_bytes()``, dkimpy's own RSA), so a regression in the hot path shows as a number.

    .venv/bin/python bench/message_build.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.newsletter import newsletter_html  # noqa: E402
from prefsvc.inbound import verp  # noqa: E402
from prefsvc.mail.messages import DkimSigner, MessageBuilder  # noqa: E402
from prefsvc.mail.rendering import SAMPLE, compile_variant, render  # noqa: E402

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
UNSUB = "https://news.example.org/u/eyJjIjoiYWJjIiwidCI6M30.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
PREFS = "https://news.example.org/p/eyJjIjoiYWJjIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
LIST_ID = "Opleidingen <opleidingen.news.example.org>"
FROM = "Opleidingen <news@example.org>"


def per_call_us(function: Callable[[], object], repeat: int) -> float:
    function()  # warm-up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    repeat = parser.parse_args().repeat

    html = newsletter_html()
    variant = compile_variant(
        subject="Nieuw voor {{ contact.first_name }}",
        html=html,
        text=None,
        language="nl",
        topic_name="Opleidingen",
    )

    def do_render():
        return render(variant, contact=SAMPLE, unsubscribe_url=UNSUB, preferences_url=PREFS)

    rendered = do_render()
    builder = MessageBuilder(from_addr=FROM, msgid_domain="example.org")

    def ours(with_builder: MessageBuilder = builder) -> bytes:
        return with_builder.campaign_message(
            to="ana@example.org",
            rendered=rendered,
            unsubscribe_url=UNSUB,
            list_id=LIST_ID,
            now=NOW,
        )[1]

    codec = verp.codec(("bench-secret-key-0123456789",))

    def verp_tokens(delivery_id: int = 123_456) -> tuple[str, str]:
        return (
            codec.address(verp.BOUNCES, verp.DELIVERY, delivery_id, "bounces.example.org"),
            codec.address(verp.UNSUBSCRIBE, verp.DELIVERY, delivery_id, "bounces.example.org"),
        )

    def ours_verp(with_builder: MessageBuilder = builder) -> bytes:
        _sender, mailto = verp_tokens()
        return with_builder.campaign_message(
            to="ana@example.org",
            rendered=rendered,
            unsubscribe_url=UNSUB,
            list_id=LIST_ID,
            now=NOW,
            unsubscribe_mailto=mailto,
            feedback_id="12:opleidingen:campaign:example.org",
        )[1]

    def generic():
        message = EmailMessage()
        message["From"] = FROM
        message["To"] = "ana@example.org"
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(NOW)
        message["Message-ID"] = "<0123456789abcdef0123456789abcdef@example.org>"
        message["List-Id"] = LIST_ID
        message["List-Unsubscribe"] = f"<{UNSUB}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message.as_bytes(policy=policy.SMTP)

    unsigned = ours()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_signer = DkimSigner(domain="example.org", selector="s1", private_key_pem=pem(rsa_key))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_signer = DkimSigner(domain="example.org", selector="s2", private_key_pem=pem(ed_key))
    rsa_builder = MessageBuilder(from_addr=FROM, msgid_domain="example.org", dkim=rsa_signer)
    ed_builder = MessageBuilder(from_addr=FROM, msgid_domain="example.org", dkim=ed_signer)
    ed_raw = base64.b64encode(
        ed_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    headers = [
        h.encode()
        for h in (
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        )
    ]

    def dkimpy_rsa():
        return dkim.sign(unsigned, b"s1", b"example.org", rsa_pem, include_headers=headers)

    def dkimpy_ed25519():  # needs PyNaCl
        return dkim.sign(
            unsigned,
            b"s2",
            b"example.org",
            ed_raw,
            include_headers=headers,
            signature_algorithm=b"ed25519-sha256",
        )

    print(
        f"newsletter: {len(html):,} chars of HTML; message {len(unsigned):,} bytes; "
        f"best of 3 x {repeat}"
    )
    rows = [
        ("render (html + text, compiled variant)", do_render),
        ("MessageBuilder.campaign_message", ours),
        ("EmailMessage + as_bytes() (reference)", generic),
        ("DKIM RSA-2048 sign of a built message, ours", lambda: rsa_signer.sign(unsigned)),
        ("campaign_message with RSA-2048 (as sent)", lambda: ours(rsa_builder)),
        ("VERP tokens (bounces+ and unsubscribe+)", verp_tokens),
        ("campaign_message, RSA-2048, BOUNCE_DOMAIN", lambda: ours_verp(rsa_builder)),
        ("DKIM RSA-2048 sign, dkimpy (reference)", dkimpy_rsa),
        ("DKIM Ed25519 sign of a built message, ours", lambda: ed_signer.sign(unsigned)),
        ("campaign_message with Ed25519 (as sent)", lambda: ours(ed_builder)),
        ("DKIM Ed25519 sign, dkimpy (reference)", dkimpy_ed25519),
    ]
    for label, function in rows:
        runs = repeat if "dkimpy" not in label else max(20, repeat // 10)
        print(f"{label:<42} {per_call_us(function, runs):>10.1f} µs/message")


if __name__ == "__main__":
    main()
