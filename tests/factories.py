"""Builders for test data: small functions with sensible defaults, overridable per test."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from prefsvc.models import (
    Campaign,
    CampaignVariant,
    Contact,
    Delivery,
    DeliveryStatus,
    Language,
    Subscription,
    SubscriptionStatus,
    Topic,
)

_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


def make_topic(
    session: Session,
    slug: str | None = None,
    name: str | None = None,
    *,
    names: dict[str, str] | None = None,
    descriptions: dict[str, str] | None = None,
) -> Topic:
    """A topic named ``name`` in every language, or ``names`` per language."""
    n = _next()
    topic = Topic(slug=slug or f"topic-{n}", name=name or f"Topic {n}")
    for lang, text in (names or {}).items():
        setattr(topic, f"name_{lang}", text)
    for lang, text in (descriptions or {}).items():
        setattr(topic, f"description_{lang}", text)
    session.add(topic)
    session.flush()
    return topic


def make_contact(
    session: Session,
    email: str | None = None,
    *,
    language: Language | str = Language.NL,
    anchor: date = date(2026, 1, 1),
    topics: list[Topic] = (),
    first_name: str = "Ana",
    last_name: str = "Peeters",
    **fields,
) -> Contact:
    contact = Contact(
        email=(email or f"person{_next()}@example.org").lower(),
        first_name=first_name,
        last_name=last_name,
        language=Language(language),
        window_anchor=anchor,
        basis_date=anchor,
        **fields,
    )
    session.add(contact)
    session.flush()
    for topic in topics:
        session.add(
            Subscription(
                contact_id=contact.id, topic_id=topic.id, status=SubscriptionStatus.SUBSCRIBED
            )
        )
    session.flush()
    return contact


DEFAULT_HTML = """<html><head><style>
  .title { color: #0b3d91; font-size: 22px; }
  p { font-family: Arial, sans-serif; }
</style></head><body>
<h1 class="title">Nieuwe opleidingen</h1>
<p>Beste {{ contact.first_name }},</p>
<p>Ontdek ons aanbod. <a href="{{preferences_url}}">Voorkeuren</a></p>
</body></html>"""


def make_campaign(
    session: Session,
    topic: Topic,
    *,
    subject: str = "Nieuw: {{ contact.first_name }}, onze opleidingen",
    html: str = DEFAULT_HTML,
    text: str | None = None,
    language: Language | str = Language.NL,
    variants: dict[str, tuple[str, str, str | None]] | None = None,
    fallback: Language | str | None = "default",
) -> Campaign:
    """A draft; ``fallback`` is the default language unless given (None or "none": no fallback)."""
    if fallback == "default":
        fallback = language
    campaign = Campaign(
        topic_id=topic.id,
        default_language=Language(language),
        fallback_language=Language(fallback) if fallback not in (None, "none") else None,
    )
    session.add(campaign)
    session.flush()
    for lang, (subj, body, plain) in (variants or {str(language): (subject, html, text)}).items():
        session.add(
            CampaignVariant(
                campaign_id=campaign.id,
                language=Language(lang),
                subject=subj,
                html=body,
                text=plain,
            )
        )
    session.flush()
    session.refresh(campaign)
    return campaign


def make_sent_deliveries(session: Session, topic: Topic, emails: list[str]) -> list[Delivery]:
    """One campaign on ``topic`` sent to a new contact at each address (committed)."""
    campaign = make_campaign(session, topic)
    people = [make_contact(session, email, topics=[topic]) for email in emails]
    session.flush()
    deliveries = [
        Delivery(campaign_id=campaign.id, contact_id=p.id, status=DeliveryStatus.SENT)
        for p in people
    ]
    session.add_all(deliveries)
    session.commit()
    return deliveries
