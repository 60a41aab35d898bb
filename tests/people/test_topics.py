"""Topics: a stable slug each, one topic per slug, found by slug."""

from __future__ import annotations

import pytest

from prefsvc.errors import InvalidInput, NotFound
from prefsvc.people import topics


def test_create_keeps_the_slug_and_a_trimmed_name(session):
    topic = topics.create(session, "haven-logistiek", "  Haven & Logistiek ", "Elke maand.")
    assert (topic.slug, topic.name, topic.description) == (
        "haven-logistiek",
        "Haven & Logistiek",
        "Elke maand.",
    )
    assert topics.by_slug(session, "haven-logistiek").id == topic.id


def test_a_second_topic_with_the_same_slug_is_refused(session):
    topics.create(session, "haven", "Haven")
    with pytest.raises(InvalidInput, match="exists already") as refused:
        topics.create(session, "haven", "Another name")
    assert refused.value.field == "slug"
    assert [t.name for t in topics.all_topics(session)] == ["Haven"]


@pytest.mark.parametrize("slug", ["", "Haven", "-haven", "haven logistiek", "h" * 65, "café"])
def test_a_slug_that_is_not_lower_case_letters_digits_and_dashes_is_refused(session, slug):
    with pytest.raises(InvalidInput) as refused:
        topics.create(session, slug, "Haven")
    assert refused.value.field == "slug"
    assert topics.all_topics(session) == []


def test_a_topic_needs_a_name(session):
    with pytest.raises(InvalidInput) as refused:
        topics.create(session, "haven", "   ")
    assert refused.value.field == "name"


def test_all_topics_come_in_slug_order(session):
    for slug in ("vca", "haven", "kraan"):
        topics.create(session, slug, slug.title())
    assert [t.slug for t in topics.all_topics(session)] == ["haven", "kraan", "vca"]


@pytest.mark.parametrize("slug", ["nope", "NOT A SLUG", ""])
def test_by_slug_raises_not_found_for_an_unknown_or_malformed_slug(session, slug):
    topics.create(session, "haven", "Haven")
    with pytest.raises(NotFound):
        topics.by_slug(session, slug)
