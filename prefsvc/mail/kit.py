"""The mail kit of a process: what every thread reuses to build and send messages.

Compiled variants (premailer runs once per variant and process, never per recipient), message
builders with their DKIM signer, token signers and rate limiters are shared by the threads of a
process; each thread keeps its own transport (one SMTP connection, kept open across batches).
Campaign delivery, previews, service notices and the web's warm-up all take them from here.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import lru_cache
from urllib.parse import urlsplit

from prefsvc.inbound import verp
from prefsvc.mail import clicks, layout, rate_limits
from prefsvc.mail.limits import Limits
from prefsvc.mail.messages import DkimSigner, MessageBuilder
from prefsvc.mail.rendering import DEFAULT_LIMITS, CompiledVariant, Footer, compile_footer
from prefsvc.mail.tokens import Signer
from prefsvc.mail.transport import Transport, open_transport
from prefsvc.models import CampaignVariant, Language, Topic
from prefsvc.settings import Settings

log = logging.getLogger(__name__)

_VARIANT_CACHE_SIZE = 64


@dataclass
class _Shared:
    """What every thread of a worker process reuses: compiled variants, builders, signers."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    variants: OrderedDict[tuple, CompiledVariant] = field(default_factory=OrderedDict)
    builders: dict[Settings, MessageBuilder] = field(default_factory=dict)
    signers: dict[tuple[str, ...], Signer] = field(default_factory=dict)
    limiters: dict[Settings, rate_limits.Limiter] = field(default_factory=dict)


_shared = _Shared()
_thread = threading.local()


def identity(settings: Settings) -> layout.Identity:
    """Return who is writing, as the house layout shows it."""
    return layout.Identity.from_settings(settings)


def compiled(
    variant: CampaignVariant,
    topic_name: str,
    bounds: Limits = DEFAULT_LIMITS,
    tracking: clicks.Tracking | None = None,
    *,
    identity: layout.Identity,
) -> CompiledVariant:
    """Return the variant compiled once per process (premailer runs here, not per recipient).

    Markdown goes into the house layout (``mail.layout``) naming ``identity`` as the sender.
    Every later render of it, per recipient, keeps to ``bounds`` (``TEMPLATE_*`` settings);
    with ``tracking`` its links go through the campaign's counting redirects.
    """
    content_format = variant.campaign.content_format.value
    digest = hashlib.sha256(
        "\0".join(
            (
                variant.subject,
                variant.html,
                variant.text or "",
                topic_name,
                content_format,
                variant.preheader or "",
                repr(identity),
            )
        ).encode()
    ).hexdigest()
    redirects = tuple(tracking.redirects.items()) if tracking is not None else None
    key = (variant.id, digest, bounds, redirects)
    with _shared.lock:
        found = _shared.variants.get(key)
        if found is not None:
            _shared.variants.move_to_end(key)
            return found
    result = layout.compile_variant(
        content_format=content_format,
        subject=variant.subject,
        content=variant.html,
        text=variant.text,
        preheader=variant.preheader,
        language=variant.language.value,
        topic_name=topic_name,
        identity=identity,
        bounds=bounds,
        rewrite_links=tracking.rewrite if tracking is not None else None,
    )
    with _shared.lock:
        _shared.variants[key] = result
        while len(_shared.variants) > _VARIANT_CACHE_SIZE:
            _shared.variants.popitem(last=False)
    return result


@lru_cache(maxsize=256)
def footer(language: str, topic_name: str) -> Footer:
    """Return our footer in ``language`` naming the topic, rendered once per process.

    A campaign's footer follows the reader's language, not the variant's: delivery takes one
    per contact language, so nothing is compiled per recipient.
    """
    return compile_footer(language, topic_name)


def builder(settings: Settings) -> MessageBuilder:
    with _shared.lock:
        found = _shared.builders.get(settings)
    if found is None:
        found = MessageBuilder(
            from_addr=settings.mail_from,
            msgid_domain=mail_domain(settings),
            dkim=DkimSigner.from_settings(settings),
        )
        with _shared.lock:
            _shared.builders[settings] = found
    return found


def signer(settings: Settings) -> Signer:
    with _shared.lock:
        found = _shared.signers.get(settings.secret_keys)
        if found is None:
            found = _shared.signers[settings.secret_keys] = Signer(settings.secret_keys)
        return found


def limiter(settings: Settings) -> rate_limits.Limiter:
    """Return this process's rate limiter, shared by its threads."""
    with _shared.lock:
        found = _shared.limiters.get(settings)
        if found is None:
            found = _shared.limiters[settings] = rate_limits.for_worker(settings)
        return found


def transport(settings: Settings) -> Transport:
    """Return this thread's transport, opened once and kept open across batches."""
    transports: dict[str, Transport] = _thread.__dict__.setdefault("transports", {})
    found = transports.get(settings.mail_url)
    if found is None:
        found = transports[settings.mail_url] = open_transport(settings.mail_url)
    return found


def close_thread_resources() -> None:
    """Close this thread's SMTP connections (called when a worker thread shuts down)."""
    for t in _thread.__dict__.pop("transports", {}).values():
        try:
            t.close()
        except Exception:  # noqa: BLE001 - closing a dead connection may fail; nothing to do
            log.debug("closing transport failed", exc_info=True)


def mail_domain(settings: Settings) -> str:
    return settings.mail_from.rpartition("@")[2].rstrip(">").strip() or "localhost"


def list_id(settings: Settings, topic: Topic, language: str = Language.NL) -> str:
    """Return the ``List-Id`` (RFC 2919): the topic's name in ``language`` and its fixed id.

    Campaign mail passes the reader's language, as its footer does; the id part never changes.
    """
    host = (urlsplit(settings.base_url).hostname or "localhost").encode("idna").decode("ascii")
    name = topic.name_in(language).replace('"', "'").replace("<", "").replace(">", "")
    return f"{name} <{topic.slug}.{host}>"


def links(settings: Settings, public_id: str, topic_id: int) -> tuple[str, str]:
    """Return a contact's one-click unsubscribe URL and preference-centre URL."""
    s = signer(settings)
    base = settings.base_url
    return (
        f"{base}/u/{s.unsubscribe_token(public_id, topic_id)}",
        f"{base}/p/{s.preferences_token(public_id)}",
    )


def envelope_sender(settings: Settings) -> str:
    """Return the envelope sender (Return-Path): the address of ``MAIL_FROM``."""
    return parseaddr(settings.mail_from)[1]


# --- VERP (issue 17): with BOUNCE_DOMAIN, what comes back names what was sent --------------


def delivery_envelope(settings: Settings, delivery_id: int) -> tuple[str, str | None]:
    """Return a campaign message's envelope sender and its ``unsubscribe+`` mailbox (or None).

    Without ``BOUNCE_DOMAIN`` the sender is ``MAIL_FROM``'s address and there is no mailbox.
    """
    domain = settings.bounce_domain
    if domain is None:
        return envelope_sender(settings), None
    codec = verp.codec(settings.secret_keys)
    return (
        codec.address(verp.BOUNCES, verp.DELIVERY, delivery_id, domain),
        codec.address(verp.UNSUBSCRIBE, verp.DELIVERY, delivery_id, domain),
    )


def notice_envelope(settings: Settings, contact_id: int) -> str:
    """Return a service notice's envelope sender: ``bounces+TOKEN@`` naming its contact.

    A notice's outbox row is gone once it is queued, so the token names the person it went
    to (kind ``n``); a bounce on a sign-in link counts against that address as any other.
    """
    if settings.bounce_domain is None:
        return envelope_sender(settings)
    return verp.bounce_address(
        settings.secret_keys, verp.NOTICE, contact_id, settings.bounce_domain
    )


def feedback_id(settings: Settings, campaign: str, topic: str, kind: str) -> str | None:
    """Return the ``Feedback-ID`` value (campaign:topic:kind:sender), or None without VERP."""
    if settings.bounce_domain is None:
        return None
    return f"{campaign}:{topic}:{kind}:{settings.dkim_domain or mail_domain(settings)}"
