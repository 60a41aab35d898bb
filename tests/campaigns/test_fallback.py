"""A campaign's languages (CONTRACT §9): one variant per language, an explicit fallback or none.

Across the audience rule (fan-out and its Python twin), delivery and rendering: who gets which
variant, who is left out as ``no_variant_in_language``, and the footer in the reader's language.
"""

from __future__ import annotations

import re
from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from prefsvc.campaigns import audience, campaigns, delivery
from prefsvc.errors import InvalidInput
from prefsvc.mail import kit
from prefsvc.models import (
    Contact,
    ContactStatus,
    Delivery,
    DeliveryStatus,
    Language,
    Subscription,
    SubscriptionStatus,
)
from tests.factories import make_campaign, make_contact, make_topic

TODAY = date(2026, 3, 10)
YEARS = 5
NL = ("Nieuw aanbod", "<p>Nederlandse inhoud</p>", None)
FR = ("Nouvelle offre", "<p>Contenu français</p>", None)


def _readers(session, topic) -> dict[str, object]:
    return {
        lang: make_contact(session, f"{lang}@example.org", language=lang, topics=[topic])
        for lang in ("nl", "fr", "en")
    }


def _campaign(session, fallback: str | None):
    topic = make_topic(session, "nieuwe-opleidingen", "Nieuwe opleidingen")
    readers = _readers(session, topic)
    campaign = make_campaign(session, topic, variants={"nl": NL, "fr": FR}, fallback=fallback)
    session.commit()
    return campaign, readers


@pytest.mark.all_databases
def test_without_fallback_a_reader_of_a_missing_language_is_excluded_and_shown_so(session):
    campaign, _ = _campaign(session, None)

    count = audience.count(session, campaign, on=TODAY, years=YEARS)
    report = campaigns.stats(session, campaign, today=TODAY, years=YEARS)

    assert (count.audience, count.excluded) == (2, {"no_variant_in_language": 1})
    assert report["fallback"] is None
    assert report["by_language"] == {"en": {"excluded": 1}, "fr": {"fr": 1}, "nl": {"nl": 1}}


@pytest.mark.all_databases
def test_with_a_fallback_everyone_is_counted_under_the_variant_they_get(session):
    campaign, _ = _campaign(session, "nl")

    report = campaigns.stats(session, campaign, today=TODAY, years=YEARS)

    assert report["audience"] == 3 and report["excluded"] == {}
    assert report["fallback"] == "nl"
    assert report["by_language"] == {"en": {"nl": 1}, "fr": {"fr": 1}, "nl": {"nl": 1}}


@pytest.mark.all_databases
def test_by_language_counts_only_the_audience_and_those_without_a_variant(session, clock):
    campaign, readers = _campaign(session, None)
    readers["fr"].paused_until = date(2026, 6, 1)
    session.commit()

    report = campaigns.stats(session, campaign, today=TODAY, years=YEARS)

    assert report["by_language"] == {"en": {"excluded": 1}, "nl": {"nl": 1}}
    assert report["excluded"] == {"no_variant_in_language": 1, "paused": 1}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
@pytest.mark.parametrize("served", [None, frozenset({Language.NL, Language.FR})])
def test_the_python_twin_agrees_with_the_sql_rule_on_languages(session, language, served):
    topic = make_topic(session)
    contact = make_contact(session, language=language, topics=[topic])
    session.flush()
    in_sql = session.execute(
        select(audience.exclusion_reason(TODAY, YEARS, served))
        .select_from(Contact)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(Contact.id == contact.id)
    ).scalar_one()
    in_python = audience.reason_for(
        contact, SubscriptionStatus.SUBSCRIBED, on=TODAY, years=YEARS, languages=served
    )
    assert in_sql == in_python
    assert in_python == ("no_variant_in_language" if served and language == "en" else None)


def test_other_reasons_come_before_a_missing_variant():
    suppressed = SimpleNamespace(
        status=ContactStatus.UNSUBSCRIBED,
        email="x@example.org",
        window_anchor=TODAY,
        paused_until=None,
        language=Language.EN,
        bounced_at=None,
        complained_at=None,
    )
    reason = audience.reason_for(
        suppressed,
        SubscriptionStatus.SUBSCRIBED,
        on=TODAY,
        years=YEARS,
        languages=frozenset({Language.NL}),
    )
    assert reason == "suppressed"


def test_create_takes_the_first_language_as_fallback_unless_told(session):
    topic = make_topic(session)
    default = campaigns.create(session, topic_slug=topic.slug, variants={"fr": FR, "nl": NL})
    chosen = campaigns.create(
        session, topic_slug=topic.slug, variants={"fr": FR, "nl": NL}, fallback="nl"
    )
    none = campaigns.create(session, topic_slug=topic.slug, variants={"nl": NL}, fallback="none")
    assert default.fallback_language is Language.FR
    assert chosen.fallback_language is Language.NL
    assert none.fallback_language is None
    with pytest.raises(InvalidInput) as refused:
        campaigns.create(session, topic_slug=topic.slug, variants={"nl": NL}, fallback="en")
    assert refused.value.field == "fallback"


def test_a_french_reader_of_an_nl_and_fr_campaign_gets_french(session, run_campaign, outbox):
    campaign, _ = _campaign(session, "nl")

    run_campaign(campaign.id)

    by_reader = {m["To"]: m for m in outbox()}
    french = by_reader["fr@example.org"]
    assert french["Subject"] == "Nouvelle offre"
    assert "Contenu français" in french.get_body(("plain",)).get_content()
    assert "Se désabonner" in french.get_body(("plain",)).get_content()


def test_without_fallback_the_english_reader_is_not_mailed_and_recorded_so(
    session, run_campaign, outbox
):
    campaign, readers = _campaign(session, None)

    finished = run_campaign(campaign.id)

    assert sorted(m["To"] for m in outbox()) == ["fr@example.org", "nl@example.org"]
    english = session.scalars(select(Delivery).where(Delivery.contact_id == readers["en"].id)).one()
    assert (english.status, english.reason) == (DeliveryStatus.EXCLUDED, "no_variant_in_language")
    report = campaigns.stats(session, finished, today=TODAY, years=YEARS)
    assert report["by_language"] == {"en": {"excluded": 1}, "fr": {"fr": 1}, "nl": {"nl": 1}}
    assert report["excluded"] == {"no_variant_in_language": 1}


@pytest.mark.parametrize("part", ["plain", "html"])
def test_with_fallback_nl_the_english_reader_gets_dutch_with_an_english_footer(
    session, run_campaign, outbox, part
):
    campaign, _ = _campaign(session, "nl")

    finished = run_campaign(campaign.id)

    english = {m["To"]: m for m in outbox()}["en@example.org"]
    body = english.get_body((part,)).get_content()
    assert english["Subject"] == "Nieuw aanbod"
    assert "Nederlandse inhoud" in body
    assert "Unsubscribe" in body and "Manage your preferences" in body
    assert "Uitschrijven" not in body
    dutch = {m["To"]: m for m in outbox()}["nl@example.org"].get_body((part,)).get_content()
    assert "Uitschrijven" in dutch
    report = campaigns.stats(session, finished, today=TODAY, years=YEARS)
    assert report["by_language"] == {"en": {"nl": 1}, "fr": {"fr": 1}, "nl": {"nl": 1}}


@pytest.mark.parametrize("fallback, expected", [(None, "no_variant_in_language"), ("fr", None)])
def test_a_reader_who_switches_language_after_fan_out_is_judged_by_the_new_one(
    session, settings, clock, outbox, fallback, expected
):
    campaign, readers = _campaign(session, fallback)
    campaigns.start(session, campaign, now=clock(), today=TODAY, years=YEARS)
    session.commit()
    readers["nl"].language = Language.EN
    session.commit()
    ids = list(session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id)))

    delivery.deliver(session, ids, settings=settings, now=clock, transport=kit.transport(settings))

    switched = session.scalars(
        select(Delivery).where(Delivery.contact_id == readers["nl"].id)
    ).one()
    assert switched.reason == expected
    mails = {m["To"]: m for m in outbox()}
    if expected is None:  # the fallback variant, with the footer of their new language
        body = mails["nl@example.org"].get_body(("plain",)).get_content()
        assert "Contenu français" in body and "Unsubscribe" in body
    else:
        assert "nl@example.org" not in mails


def test_pages_reached_from_a_fallback_variant_are_in_the_readers_language(
    app, session, run_campaign, outbox
):
    campaign, _ = _campaign(session, "nl")
    run_campaign(campaign.id)
    english = {m["To"]: m for m in outbox()}["en@example.org"]
    unsubscribe = english["List-Unsubscribe"].strip("<>").split(">")[0]
    preferences = re.search(
        r"(https?://\S+/p/[^\s<>\"]+)", english.get_body(("plain",)).get_content()
    )
    client = app.test_client()

    for url in (unsubscribe, preferences.group(1)):
        page = client.get(url).get_data(as_text=True)
        assert '<html lang="en"' in page, url
