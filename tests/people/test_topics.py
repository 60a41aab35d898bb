"""Topics: a name and a description per language, and what a reader of each language sees."""

from __future__ import annotations

import pytest

from prefsvc.errors import InvalidInput, NotFound
from prefsvc.models import Topic
from prefsvc.people import topics

NAMES = {"nl": "Nieuwe opleidingen", "fr": "Nouvelles formations", "en": "New trainings"}


def test_a_name_without_language_names_the_topic_in_every_language(session):
    topic = topics.create(session, "nieuws", "Nieuws", "Elke maand")

    assert topic.names == {"nl": "Nieuws", "fr": "Nieuws", "en": "Nieuws"}
    assert topic.descriptions == {"nl": "Elke maand", "fr": "Elke maand", "en": "Elke maand"}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_a_reader_sees_the_name_and_description_of_their_language(session, language):
    topic = topics.create(
        session, "nieuws", names=NAMES, descriptions={lang: f"about {lang}" for lang in NAMES}
    )

    assert topic.name_in(language) == NAMES[language]
    assert topic.description_in(language) == f"about {language}"


@pytest.mark.parametrize(
    ("given", "language", "shown"),
    [
        ({"nl": "Nieuws", "fr": "Actualités"}, "en", "Nieuws"),  # missing: the Dutch one
        ({"fr": "Actualités", "en": "News"}, "nl", "Actualités"),  # no Dutch: any other
        ({"en": "News"}, "fr", "News"),
    ],
)
def test_a_missing_language_falls_back_to_dutch_then_any(session, given, language, shown):
    topic = topics.create(session, "nieuws", names=given)

    assert topic.name_in(language) == shown
    assert topic.description_in(language) is None


def test_per_language_names_override_the_name_for_every_language(session):
    topic = topics.create(session, "nieuws", "Nieuws", names={"fr": "Actualités"})

    assert topic.names == {"nl": "Nieuws", "fr": "Actualités", "en": "Nieuws"}


@pytest.mark.parametrize(
    ("name", "names", "field"),
    [
        (None, None, "name"),
        ("  ", None, "name"),
        (None, {"nl": " ", "fr": ""}, "name"),
        (None, {"de": "Nachrichten"}, "names"),
        ("x" * 201, None, "name_nl"),
    ],
)
def test_a_topic_needs_a_name_in_some_language(session, name, names, field):
    with pytest.raises(InvalidInput) as refused:
        topics.create(session, "nieuws", name, names=names)
    assert refused.value.field == field


def test_update_changes_only_what_is_given_and_empty_text_clears(session):
    topic = topics.create(session, "nieuws", "Nieuws", "Elke maand")

    topics.update(
        session, topic, names={"fr": "Actualités"}, descriptions={"en": "", "fr": "Chaque mois"}
    )

    assert topic.names == {"nl": "Nieuws", "fr": "Actualités", "en": "Nieuws"}
    assert topic.descriptions == {"nl": "Elke maand", "fr": "Chaque mois", "en": None}


def test_update_refuses_to_clear_every_name_and_changes_nothing(session):
    topic = topics.create(session, "nieuws", names={"nl": "Nieuws"})

    with pytest.raises(InvalidInput):
        topics.update(session, topic, names={"nl": ""}, descriptions={"nl": "changed"})
    assert (topic.name_nl, topic.description_nl) == ("Nieuws", None)


def test_readers_see_topics_sorted_by_their_own_names(session):
    first = topics.create(session, "a", names={"nl": "Zee", "fr": "Actualités"})
    second = topics.create(session, "b", names={"nl": "Haven", "fr": "Port"})

    assert topics.by_name([first, second], "nl") == [second, first]
    assert topics.by_name([first, second], "fr") == [first, second]


def test_as_dict_keeps_name_and_description_and_adds_every_language(session):
    topic = topics.create(session, "nieuws", names=NAMES, descriptions={"fr": "Chaque mois"})

    assert topics.as_dict(topic) == {
        "slug": "nieuws",
        "name": "Nieuwe opleidingen",
        "description": "Chaque mois",
        "names": NAMES,
        "descriptions": {"nl": None, "fr": "Chaque mois", "en": None},
    }
    assert isinstance(topic, Topic) and topic.name == "Nieuwe opleidingen"


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
