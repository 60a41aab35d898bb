"""Topics: the newsletters a contact can subscribe to, named and described per language.

A name given without a language is the name in every language (``topics create --name``);
one given per language overrides it there. Readers see the text of their own language,
else the Dutch one, else any (``Topic.name_in``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.errors import InvalidInput, NotFound
from prefsvc.models import LANGUAGES, Topic
from prefsvc.people.text import single_line

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
NAME_LENGTH = 200

Texts = Mapping[str, str | None]


def create(
    session: Session,
    slug: str,
    name: str | None = None,
    description: str | None = None,
    *,
    names: Texts | None = None,
    descriptions: Texts | None = None,
) -> Topic:
    """Create a topic; the slug is its stable name in imports and the API."""
    if not SLUG.fullmatch(slug or ""):
        raise InvalidInput("slug", "use lower-case letters, digits and '-' (at most 64)")
    if session.scalar(select(Topic.id).where(Topic.slug == slug)) is not None:
        raise InvalidInput("slug", f"a topic {slug!r} exists already")
    topic = Topic(slug=slug)
    _write(topic, name, description, names, descriptions, partial=False)
    session.add(topic)
    session.flush()
    return topic


def update(
    session: Session,
    topic: Topic,
    *,
    name: str | None = None,
    description: str | None = None,
    names: Texts | None = None,
    descriptions: Texts | None = None,
) -> Topic:
    """Change the texts given (None leaves one as it is, "" clears a language's text)."""
    _write(topic, name, description, names, descriptions, partial=True)
    session.flush()
    return topic


def _write(
    topic: Topic,
    name: str | None,
    description: str | None,
    names: Texts | None,
    descriptions: Texts | None,
    *,
    partial: bool,
) -> None:
    """Check every text first, then write them: a refused change leaves the topic as it was."""
    new_names = _merged("name", name, names)
    new_descriptions = _merged("description", description, descriptions)
    if name is not None and not name.strip():
        raise InvalidInput("name", "is empty")
    for lang, text in new_names.items():
        single_line(_field("name", lang, names), text)
        if text is not None and len(text) > NAME_LENGTH:
            raise InvalidInput(f"name_{lang}", f"is longer than {NAME_LENGTH} characters")
    for lang, text in new_descriptions.items():
        single_line(_field("description", lang, descriptions), text)
    current = topic.names if partial else dict.fromkeys(LANGUAGES)
    if not any((current | new_names).values()):
        raise InvalidInput("name", "is empty: give a name in at least one language")
    for lang, text in new_names.items():
        setattr(topic, f"name_{lang}", text)
    for lang, text in new_descriptions.items():
        setattr(topic, f"description_{lang}", text)


def _field(field: str, lang: str, per_language: Texts | None) -> str:
    """Name the field an error is about: ``name_fr`` when set per language, else ``name``."""
    return f"{field}_{lang}" if (per_language or {}).get(lang) is not None else field


def _merged(field: str, every: str | None, per_language: Texts | None) -> dict[str, str | None]:
    """Return the texts to write per language: ``every`` everywhere, then the per-language ones.

    A language missing from the result is left alone; "" (or only spaces) clears it.
    """
    unknown = sorted(set(per_language or {}) - set(LANGUAGES))
    if unknown:
        raise InvalidInput(f"{field}s", f"unknown language {unknown[0]!r}; use nl, fr or en")
    texts: dict[str, str | None] = {}
    if every is not None:
        texts = dict.fromkeys(LANGUAGES, every.strip() or None)
    for lang, text in (per_language or {}).items():
        if text is not None:
            texts[lang] = text.strip() or None
    return texts


def all_topics(session: Session) -> list[Topic]:
    return list(session.scalars(select(Topic).order_by(Topic.slug)))


def by_slug(session: Session, slug: str) -> Topic:
    """Return the topic with this slug or raise NotFound (also for text that is no slug)."""
    valid = SLUG.fullmatch(slug or "") is not None
    topic = session.scalar(select(Topic).where(Topic.slug == slug)) if valid else None
    if topic is None:
        raise NotFound(f"no topic {slug!r}")
    return topic


def by_name(topics: list[Topic], language: str) -> list[Topic]:
    """Sort topics by their name in ``language`` (as a reader of that language sees them)."""
    return sorted(topics, key=lambda t: (t.name_in(language).casefold(), t.id))


def as_dict(topic: Topic, language: str = "nl") -> dict[str, object]:
    """The topic as the CLI and the API show it: the name in ``language`` and every text."""
    return {
        "slug": topic.slug,
        "name": topic.name_in(language),
        "description": topic.description_in(language),
        "names": topic.names,
        "descriptions": topic.descriptions,
    }
