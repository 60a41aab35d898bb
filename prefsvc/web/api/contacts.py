"""Topics, contacts and their subscriptions: the marketing team's address book."""

from __future__ import annotations

from typing import Any

from prefsvc import clock
from prefsvc.consent import changes as consent
from prefsvc.extensions import db
from prefsvc.models import Contact, SubscriptionStatus, Topic
from prefsvc.people import contacts, topics
from prefsvc.privacy import rectification
from prefsvc.settings import current_settings
from prefsvc.web.api import auth, blueprint
from prefsvc.web.api import schemas as s

topics_bp = blueprint("topics", "Newsletters a contact can subscribe to.", "/topics")
contacts_bp = blueprint("contacts", "People we may mail, named by their public id.", "/contacts")
blueprints = [topics_bp, contacts_bp]


def topic_json(topic: Topic) -> dict[str, Any]:
    return topics.as_dict(topic)


def contact_json(contact: Contact) -> dict[str, Any]:
    """The contact as the API shows it: profile, legal hold and subscriptions."""
    years = current_settings().marketing_window_years
    return {
        **contacts.profile(contact, window_years=years),
        "legal_hold": (
            {"reason": contact.legal_hold_reason, "until": contact.legal_hold_until}
            if contact.legal_hold_reason
            else None
        ),
        "subscriptions": [
            {"topic": sub.topic.slug, "status": sub.status.value}
            for sub in sorted(contact.subscriptions, key=lambda sub: sub.topic.slug)
        ],
    }


# --- topics -----------------------------------------------------------------------------


@topics_bp.route("", methods=["GET"])
@auth.requires(topics_bp, "topics:read")
@topics_bp.response(200, s.TopicOut(many=True))
def list_topics():
    """List every topic."""
    return [topic_json(t) for t in topics.all_topics(db.session)]


@topics_bp.route("", methods=["POST"])
@auth.requires(topics_bp, "topics:write")
@topics_bp.arguments(s.TopicIn)
@topics_bp.response(201, s.TopicOut)
def create_topic(body):
    """Create a topic; its slug is its stable name in imports and the API."""
    topic = topics.create(db.session, **body)
    auth.record("topic.create", f"topic:{topic.slug}")
    db.session.commit()
    return topic_json(topic)


@topics_bp.route("/<slug>", methods=["PATCH"])
@auth.requires(topics_bp, "topics:write")
@topics_bp.arguments(s.TopicPatch)
@topics_bp.response(200, s.TopicOut)
@topics_bp.alt_response(404, response="NOT_FOUND")
def update_topic(body, slug: str):
    """Change a topic's names or descriptions, in every language or per language."""
    topic = topics.update(db.session, topics.by_slug(db.session, slug), **body)
    auth.record("topic.update", f"topic:{topic.slug}")
    db.session.commit()
    return topic_json(topic)


# --- contacts ---------------------------------------------------------------------------


@contacts_bp.route("", methods=["GET"])
@auth.requires(contacts_bp, "contacts:read")
@contacts_bp.arguments(s.ContactQuery, location="query")
@contacts_bp.response(200, s.ContactPageOut)
def list_contacts(query):
    """List contacts a page at a time, with the admin list's filters and sorts.

    Filter by words of the address or name, topic, language, status, a window ending within
    some days, bounced addresses; sort by name, email, date added or window.
    """
    page = contacts.listing(
        db.session,
        today=clock.today(),
        years=current_settings().marketing_window_years,
        **query,
    )
    return {
        "items": [contact_json(c) for c in page.items],
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
    }


@contacts_bp.route("", methods=["POST"])
@auth.requires(contacts_bp, "contacts:write")
@contacts_bp.arguments(s.ContactIn)
@contacts_bp.response(200, s.ContactOut, description="An existing contact, updated")
@contacts_bp.alt_response(201, schema=s.ContactOut, description="A new contact", success=True)
@contacts_bp.alt_response(409, response="CONFLICT")
def upsert_contact(body):
    """Create or update a contact by address, with the CSV import's rules.

    Absent fields never erase stored values; listed topics are added, but a topic the
    person left is never resubscribed; an address that objected or was erased is refused
    (409).
    """
    settings = current_settings()
    contact, outcome = contacts.upsert(
        db.session,
        **body,
        now=clock.now(),
        today=clock.today(),
        suppression_key=settings.suppression_key,
        source="api",
        imported_by=auth.actor(),
    )
    if outcome != "unchanged":
        auth.record(f"contact.{outcome}", f"contact:{contact.public_id}")
    db.session.commit()
    return contact_json(contact), 201 if outcome == "created" else 200


@contacts_bp.route("/<public_id>", methods=["GET"])
@auth.requires(contacts_bp, "contacts:read")
@contacts_bp.response(200, s.ContactOut)
@contacts_bp.alt_response(404, response="NOT_FOUND")
def get_contact(public_id: str):
    """Show a contact."""
    return contact_json(contacts.get_public(db.session, public_id))


@contacts_bp.route("/<public_id>", methods=["PATCH"])
@auth.requires(contacts_bp, "contacts:write")
@contacts_bp.arguments(s.ContactPatch)
@contacts_bp.response(200, s.ContactOut)
@contacts_bp.alt_response(404, response="NOT_FOUND")
def update_contact(body, public_id: str):
    """Correct a contact's name, organisation or language (recorded as a rectification)."""
    contact = contacts.get_public(db.session, public_id)
    changed = rectification.rectify(db.session, contact, body, now=clock.now(), channel="api")
    auth.record("contact.update", f"contact:{contact.public_id}", fields=sorted(changed))
    db.session.commit()
    return contact_json(contact)


# --- subscriptions ----------------------------------------------------------------------


@contacts_bp.route("/<public_id>/subscriptions", methods=["GET"])
@auth.requires(contacts_bp, "contacts:read")
@contacts_bp.response(200, s.SubscriptionOut(many=True))
@contacts_bp.alt_response(404, response="NOT_FOUND")
def list_subscriptions(public_id: str):
    """List a contact's subscriptions, including the topics they left."""
    return contact_json(contacts.get_public(db.session, public_id))["subscriptions"]


@contacts_bp.route("/<public_id>/subscriptions/<slug>", methods=["PUT"])
@auth.requires(contacts_bp, "contacts:write")
@contacts_bp.response(200, s.SubscriptionChange)
@contacts_bp.alt_response(404, response="NOT_FOUND")
@contacts_bp.alt_response(409, response="CONFLICT")
def subscribe(public_id: str, slug: str):
    """Subscribe a contact to a topic on the source system's word.

    Refused (409) when the person left that topic, objected or was erased: only they can
    subscribe again, through the preference centre.
    """
    contact = contacts.get_public(db.session, public_id)
    topic = topics.by_slug(db.session, slug)
    changed = consent.enrol(
        db.session,
        contact,
        topic,
        channel="api",
        now=clock.now(),
        suppression_key=current_settings().suppression_key,
    )
    if changed:
        auth.record("subscription.add", f"contact:{contact.public_id}", topic=topic.slug)
    db.session.commit()
    return {"topic": topic.slug, "status": SubscriptionStatus.SUBSCRIBED.value, "changed": changed}


@contacts_bp.route("/<public_id>/subscriptions/<slug>", methods=["DELETE"])
@auth.requires(contacts_bp, "contacts:write")
@contacts_bp.response(200, s.SubscriptionChange)
@contacts_bp.alt_response(404, response="NOT_FOUND")
def unsubscribe(public_id: str, slug: str):
    """Unsubscribe a contact from a topic (for instance at their request by phone)."""
    contact = contacts.get_public(db.session, public_id)
    topic = topics.by_slug(db.session, slug)
    changed = consent.unsubscribe(
        db.session, contact, topic, channel="api", now=clock.now(), today=clock.today()
    )
    if changed:
        auth.record("subscription.remove", f"contact:{contact.public_id}", topic=topic.slug)
    db.session.commit()
    status = SubscriptionStatus.UNSUBSCRIBED.value
    return {"topic": topic.slug, "status": status, "changed": changed}
