"""Topics: the newsletters a contact can subscribe to."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.errors import InvalidInput, NotFound
from prefsvc.models import Topic
from prefsvc.people.text import single_line

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def create(session: Session, slug: str, name: str, description: str | None = None) -> Topic:
    """Create a topic; the slug is its stable name in imports and the API."""
    if not SLUG.fullmatch(slug or ""):
        raise InvalidInput("slug", "use lower-case letters, digits and '-' (at most 64)")
    if not (name or "").strip():
        raise InvalidInput("name", "is empty")
    single_line("name", name)
    single_line("description", description)
    if session.scalar(select(Topic.id).where(Topic.slug == slug)) is not None:
        raise InvalidInput("slug", f"a topic {slug!r} exists already")
    topic = Topic(slug=slug, name=name.strip(), description=description)
    session.add(topic)
    session.flush()
    return topic


def all_topics(session: Session) -> list[Topic]:
    return list(session.scalars(select(Topic).order_by(Topic.slug)))


def by_slug(session: Session, slug: str) -> Topic:
    """Return the topic with this slug or raise NotFound (also for text that is no slug)."""
    valid = SLUG.fullmatch(slug or "") is not None
    topic = session.scalar(select(Topic).where(Topic.slug == slug)) if valid else None
    if topic is None:
        raise NotFound(f"no topic {slug!r}")
    return topic
