"""Topic pages: the newsletters, with a name and a description per language to edit."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from prefsvc.errors import InvalidInput, NotFound
from prefsvc.extensions import db
from prefsvc.models import LANGUAGES, Topic
from prefsvc.people import topics
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import MARKETING, bp, record, requires


def _texts_from_form() -> dict[str, dict[str, str]]:
    """Read the per-language fields; every one is sent, so an emptied field clears its text."""
    return {
        "names": {lang: request.form.get(f"name_{lang}", "") for lang in LANGUAGES},
        "descriptions": {lang: request.form.get(f"description_{lang}", "") for lang in LANGUAGES},
    }


def _values(topic: Topic | None) -> dict[str, str]:
    values = {"slug": topic.slug if topic else ""}
    for lang in LANGUAGES:
        values[f"name_{lang}"] = (topic.names[lang] if topic else None) or ""
        values[f"description_{lang}"] = (topic.descriptions[lang] if topic else None) or ""
    return values


def _page(topic: Topic | None, values: dict[str, str], error: InvalidInput | None = None):
    status = 422 if error else 200
    if topic is None:
        page = render_template(
            "admin/topics.html", topics=topics.all_topics(db.session), values=values, error=error
        )
    else:
        page = render_template(
            "admin/topic.html",
            topic=topic,
            values=values,
            error=error,
            signup_url=f"{current_settings().base_url}/s/{topic.slug}",
        )
    return page, status


@bp.get("/topics/")
@requires(MARKETING)
def topic_list():
    return _page(None, _values(None))


@bp.post("/topics/")
@requires(MARKETING)
def topic_create():
    slug = request.form.get("slug", "").strip()
    try:
        topic = topics.create(db.session, slug, **_texts_from_form())
    except InvalidInput as exc:
        db.session.rollback()
        return _page(None, dict(request.form), exc)
    record("topic.create", f"topic:{topic.slug}")
    db.session.commit()
    flash(_("Topic created."), "ok")
    return redirect(url_for("admin.topic_list"))


def _topic(slug: str) -> Topic:
    try:
        return topics.by_slug(db.session, slug)
    except NotFound:
        abort(404)


@bp.get("/topics/<slug>")
@requires(MARKETING)
def topic_edit(slug: str):
    topic = _topic(slug)
    return _page(topic, _values(topic))


@bp.post("/topics/<slug>")
@requires(MARKETING)
def topic_update(slug: str):
    topic = _topic(slug)
    try:
        topics.update(db.session, topic, **_texts_from_form())
    except InvalidInput as exc:
        db.session.rollback()
        return _page(_topic(slug), dict(request.form) | {"slug": slug}, exc)
    record("topic.update", f"topic:{topic.slug}")
    db.session.commit()
    flash(_("Topic saved."), "ok")
    return redirect(url_for("admin.topic_list"))
