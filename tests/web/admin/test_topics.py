"""The admin topics page: list, create and edit names and descriptions per language."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from prefsvc.models import AuditEvent
from prefsvc.people import topics
from tests.web.admin.conftest import post

FORM = {
    "name_nl": "Nieuwe opleidingen",
    "name_fr": "Nouvelles formations",
    "name_en": "New trainings",
    "description_nl": "Elke maand",
    "description_fr": "Chaque mois",
    "description_en": "",
}


def _audited(session) -> list[tuple[str, str]]:
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.action, e.target) for e in events if e.action.startswith("topic.")]


def test_topics_page_is_in_the_marketing_nav_and_lists_every_language(as_role, topic):
    client = as_role("marketing")
    home = client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/topics/"' in home

    page = client.get("/admin/topics/").get_data(as_text=True)

    assert re.search(r'<td lang="fr"[^>]*><span>Nieuwe opleidingen</span></td>', page)
    assert 'href="/admin/topics/nieuwe-opleidingen"' in page


def test_privacy_staff_may_not_edit_topics(as_role, topic):
    client = as_role("privacy")
    assert client.get("/admin/topics/").status_code == 403
    assert 'href="/admin/topics/"' not in client.get("/admin/").get_data(as_text=True)


def test_a_topic_is_created_with_names_per_language_and_audited(as_role, session):
    client = as_role("marketing")

    response = post(
        client, "/admin/topics/", {"slug": "opleidingen", **FORM}, form_page="/admin/topics/"
    )

    assert response.status_code == 302
    session.expire_all()
    created = topics.by_slug(session, "opleidingen")
    assert created.names == {
        "nl": "Nieuwe opleidingen",
        "fr": "Nouvelles formations",
        "en": "New trainings",
    }
    assert created.descriptions == {"nl": "Elke maand", "fr": "Chaque mois", "en": None}
    assert _audited(session) == [("topic.create", "topic:opleidingen")]


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_editing_one_language_keeps_the_others(as_role, session, topic, language):
    client = as_role("marketing")
    url = f"/admin/topics/{topic.slug}"
    form = {
        f"{field}_{lang}": getattr(topic, f"{field}_{lang}") or ""
        for field in ("name", "description")
        for lang in ("nl", "fr", "en")
    }
    form[f"name_{language}"] = "Changed"

    response = post(client, url, form, form_page=url)

    assert response.status_code == 302
    session.expire_all()
    edited = topics.by_slug(session, topic.slug)
    assert edited.name_in(language) == "Changed"
    assert {lang for lang, name in edited.names.items() if name == "Nieuwe opleidingen"} == (
        {"nl", "fr", "en"} - {language}
    )
    assert _audited(session) == [("topic.update", f"topic:{topic.slug}")]


def test_a_form_without_any_name_is_refused_with_the_reason(as_role, session, topic):
    client = as_role("marketing")
    url = f"/admin/topics/{topic.slug}"

    response = post(client, url, {"name_nl": "", "name_fr": "", "name_en": ""}, form_page=url)

    assert response.status_code == 422
    assert "give a name in at least one language" in response.get_data(as_text=True)
    session.expire_all()
    assert topics.by_slug(session, topic.slug).name == "Nieuwe opleidingen"
    assert _audited(session) == []


def test_a_post_without_csrf_token_changes_nothing(as_role, session, topic):
    client = as_role("marketing")
    response = client.post(f"/admin/topics/{topic.slug}", data={"name_nl": "X"})
    assert response.status_code == 400
    session.expire_all()
    assert topics.by_slug(session, topic.slug).name == "Nieuwe opleidingen"


def test_a_topic_page_gives_its_public_sign_up_link_and_embed_snippet(as_role, topic):
    page = as_role("marketing").get(f"/admin/topics/{topic.slug}").get_data(as_text=True)
    link = f"https://news.example.org/s/{topic.slug}"
    assert f'<a href="{link}">{link}</a>' in page
    assert f'&lt;iframe src="{link}"' in page
