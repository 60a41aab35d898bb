"""Preview a campaign and send test copies, exactly as a recipient would get it.

Shared by the API, the admin composer and the CLI; nothing here is counted or recorded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from prefsvc.errors import InvalidInput
from prefsvc.mail import kit
from prefsvc.mail.limits import Limits
from prefsvc.mail.rendering import CompiledVariant, Footer, RecipientContext, Rendered, render
from prefsvc.mail.transport import Transport
from prefsvc.models import Campaign, Language
from prefsvc.people import contacts
from prefsvc.settings import Settings


def preview(
    session: Session,
    campaign: Campaign,
    *,
    settings: Settings,
    language: str | None = None,
    to: str | None = None,
) -> Rendered:
    """Render the campaign exactly as a recipient gets it (CSS inlined, footer, links).

    Shared by test sends, the API and the admin composer; nothing is sent or recorded.
    """
    address = contacts.normalise_email(to) if to else None
    variant, person, unsubscribe_url, preferences_url = _sample_recipient(
        session, campaign, settings, language, address
    )
    return _render_for(variant, person, unsubscribe_url, preferences_url, _footer(campaign, person))


def test_send(
    session: Session,
    campaign: Campaign,
    *,
    to: str,
    language: str | None,
    settings: Settings,
    now: datetime,
    transport: Transport,
) -> str:
    """Send one preview copy to ``to``, subject prefixed ``[TEST]``; nothing is counted."""
    address = contacts.normalise_email(to)
    variant, person, unsubscribe_url, preferences_url = _sample_recipient(
        session, campaign, settings, language, address
    )
    rendered = _render_for(
        variant, person, unsubscribe_url, preferences_url, _footer(campaign, person)
    )
    rendered = Rendered(
        subject=f"[TEST] {rendered.subject}", html=rendered.html, text=rendered.text
    )
    message_id, message = kit.builder(settings).campaign_message(
        to=address,
        rendered=rendered,
        unsubscribe_url=unsubscribe_url,
        list_id=kit.list_id(settings, campaign.topic, person.language),
        now=now,
    )
    transport.send(sender=kit.envelope_sender(settings), recipients=[address], message=message)
    return message_id


def _sample_recipient(
    session: Session, campaign: Campaign, settings: Settings, language: str | None, to: str | None
) -> tuple[CompiledVariant, RecipientContext, str, str]:
    """Pick the variant, person and links of a preview: the contact ``to`` if known, else a sample.

    A known contact's footer is in their own language, whatever the variant, as when sending.
    A sample person's links lead to the "link not valid" page.
    """
    contact = contacts.find(session, to) if to else None
    lang = language or (contact.language.value if contact else campaign.default_language.value)
    chosen = campaign.variant_for(Language(lang))
    variant = kit.compiled(
        chosen,
        campaign.topic.name_in(chosen.language),
        Limits.from_settings(settings),
        identity=kit.identity(settings),
    )
    if contact is not None and contact.email:
        person = RecipientContext(
            email=contact.email,
            first_name=contact.first_name,
            last_name=contact.last_name,
            organisation=contact.organisation,
            language=contact.language.value,
        )
        unsubscribe_url, preferences_url = kit.links(settings, contact.public_id, campaign.topic_id)
        return variant, person, unsubscribe_url, preferences_url
    person = RecipientContext(
        email=to or "test@example.org",
        first_name="Test",
        last_name="Test",
        organisation=None,
        language=lang,
    )
    base = settings.base_url
    return variant, person, f"{base}/u/test-preview", f"{base}/p/test-preview"


def _footer(campaign: Campaign, person: RecipientContext) -> Footer:
    """The footer in the person's language, whatever the variant (as delivery does)."""
    return kit.footer(person.language, campaign.topic.name_in(person.language))


def _render_for(
    variant: CompiledVariant,
    person: RecipientContext,
    unsubscribe: str,
    preferences: str,
    footer: Footer,
) -> Rendered:
    """Render for one person; a template that breaks on their data is bad input, not a crash."""
    try:
        return render(
            variant,
            contact=person,
            unsubscribe_url=unsubscribe,
            preferences_url=preferences,
            footer=footer,
        )
    except Exception as exc:  # noqa: BLE001 - any error of a template on this person's data
        raise InvalidInput(
            "template", f"cannot be rendered for this person ({type(exc).__name__}: {exc})"
        ) from None
