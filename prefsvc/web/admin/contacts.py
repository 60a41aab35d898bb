"""Contact pages: the directory (filter, sort, page, export) and one contact's record and actions.

Every change goes through the domain function the API uses for it and is audited in the same
transaction. Who may do what:

* everyone signed in reads the list and the contact page (``contacts:read``);
* marketing edits details and subscriptions, records an objection and clears a bounce state
  (``contacts:write``);
* the privacy role erases (``contacts:erase``);
* the CSV export of the list is for marketing only: it is the list they work with, in bulk.
  The privacy role answers one person's access request with the access export instead, so a
  bulk copy of the address book never leaves through that role. Erased and anonymised
  contacts are never exported, only the list's columns are, and every export is audited
  with its filters (never the search text) and row count.
"""

from __future__ import annotations

from datetime import datetime

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _

from prefsvc import clock
from prefsvc.consent import changes as consent
from prefsvc.consent import window
from prefsvc.errors import InvalidInput, NotFound, Suppressed
from prefsvc.extensions import db
from prefsvc.inbound import policy
from prefsvc.models import LANGUAGES, Contact, ContactStatus, Role
from prefsvc.people import contacts, correspondence, directory, topics
from prefsvc.privacy import erasure, rectification
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import EVERYONE, MARKETING, PRIVACY, bp, record, requires

CHANNEL = "admin"
DETAILS = (*rectification.RECTIFIABLE, "role")


def _bad_request(message: str, status: int = 400):
    return render_template("admin/contact_error.html", message=message), status


def _filter_error(error: InvalidInput) -> str:
    names = {
        "q": _("The search text is too long."),
        "page": _("That page number does not exist."),
        "per_page": _("Choose 25, 50, 100 or 200 contacts a page."),
        "window_days": _("Give the number of days as a whole number from 0 to 3660."),
    }
    return names.get(error.field, _("One of the filters has a value that is not known."))


@bp.get("/contacts/")
@requires(EVERYONE)
def contact_search():
    settings = current_settings()
    try:
        filters = directory.parse(request.args)
        page, per_page = directory.page_numbers(request.args)
    except InvalidInput as exc:
        return _bad_request(_filter_error(exc))
    found = directory.find(
        db.session,
        filters,
        today=clock.today(),
        years=settings.marketing_window_years,
        page=page,
        per_page=per_page,
    )
    if page > found.pages:
        return _bad_request(_filter_error(InvalidInput("page", "past the last page")), 404)
    return render_template(
        "admin/contacts.html",
        filters=filters,
        found=found,
        topic_choices=topics.all_topics(db.session),
        args={k: v for k, v in request.args.items() if v and k != "page"},
        statuses=directory.STATUSES,
        sorts=directory.SORTS,
        per_page_choices=directory.PER_PAGE,
        window_ends=lambda c: window.expires_on(c.window_anchor, settings.marketing_window_years),
        languages=LANGUAGES,
    )


@bp.get("/contacts/export.csv")
@requires(MARKETING)
def contact_export():
    settings = current_settings()
    try:
        filters = directory.parse(request.args)
    except InvalidInput as exc:
        return _bad_request(_filter_error(exc))
    today, years = clock.today(), settings.marketing_window_years
    rows = directory.export_count(db.session, filters, today=today, years=years)
    record("contacts.export", None, rows=rows, **filters.describe())
    db.session.commit()
    body = directory.csv_text(directory.export_rows(db.session, filters, today=today, years=years))
    stamp = clock.now().astimezone(settings.timezone).strftime("%Y-%m-%d-%H%M")
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="contacts-{stamp}.csv"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _contact(public_id: str) -> Contact:
    try:
        return contacts.get_public(db.session, public_id)
    except NotFound:
        abort(404)


def _page(person: Contact, *, error: str | None = None, status: int = 200, values=None):
    settings = current_settings()
    document = contacts.document(db.session, person, settings.marketing_window_years)
    for event in document["consent_history"]:
        event["at"] = datetime.fromisoformat(event["occurred_at"])
    subscribed = {s["topic"] for s in document["subscriptions"]}
    page = render_template(
        "admin/contact.html",
        person=person,
        document=document,
        today=clock.today(),
        mails=correspondence.mails_sent(db.session, person),
        reports=correspondence.returned(db.session, person),
        open_topics=[t for t in topics.all_topics(db.session) if t.slug not in subscribed],
        editable=person.status is ContactStatus.ACTIVE and person.email is not None,
        erasable=person.status not in (ContactStatus.ERASED, ContactStatus.ANONYMISED),
        bounced=person.bounced_at is not None or bool(person.bounce_score),
        values=values or _details(person),
        details_open=values is not None,
        languages=LANGUAGES,
        roles=[r.value for r in Role],
        error=error,
    )
    return page, status


def _details(person: Contact) -> dict[str, str]:
    values = {name: getattr(person, name) for name in DETAILS}
    return {k: (v.value if hasattr(v, "value") else v) or "" for k, v in values.items()}


@bp.get("/contacts/<public_id>")
@requires(EVERYONE)
def contact(public_id: str):
    return _page(_contact(public_id))


def _done(person: Contact, message: str):
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("admin.contact", public_id=person.public_id), code=303)


def _refused(person: Contact, message: str, status: int, values=None):
    db.session.rollback()
    return _page(person, error=message, status=status, values=values)


@bp.post("/contacts/<public_id>/details")
@requires(MARKETING)
def contact_details(public_id: str):
    person = _contact(public_id)
    form = {name: request.form.get(name, "") for name in DETAILS}
    role = form.pop("role").strip()
    if role and role not in {r.value for r in Role}:
        return _refused(person, _("Choose a role from the list."), 422, {**form, "role": role})
    now = clock.now()
    try:
        changed = set(rectification.rectify(db.session, person, form, now=now, channel=CHANNEL))
        if role and (person.role is None or person.role.value != role):
            settings = current_settings()
            contacts.upsert(
                db.session,
                email=person.email or "",
                role=role,
                now=now,
                today=clock.today(),
                suppression_key=settings.suppression_key,
                source=CHANNEL,
            )
            changed.add("role")
    except InvalidInput as exc:
        message = {
            "language": _("Choose a language from the list."),
            "contact": _("This contact was erased: there is nothing left to edit."),
        }.get(exc.field, _("Names and the organisation are one line of at most 200 characters."))
        return _refused(person, message, 422, {**form, "role": role})
    except Suppressed:
        return _refused(
            person, _("This contact objected or was erased: only they can change that."), 409
        )
    if not changed:
        flash(_("Nothing changed."), "ok")
        return redirect(url_for("admin.contact", public_id=person.public_id), code=303)
    record("contact.update", f"contact:{person.public_id}", fields=sorted(changed))
    return _done(person, _("Details saved."))


@bp.post("/contacts/<public_id>/subscriptions")
@requires(MARKETING)
def contact_subscription(public_id: str):
    person = _contact(public_id)
    action = request.form.get("action", "")
    try:
        topic = topics.by_slug(db.session, request.form.get("topic", ""))
    except NotFound:
        return _refused(person, _("Choose a topic from the list."), 422)
    now, today = clock.now(), clock.today()
    if action == "add":
        try:
            changed = consent.enrol(
                db.session,
                person,
                topic,
                channel=CHANNEL,
                now=now,
                suppression_key=current_settings().suppression_key,
            )
        except Suppressed:
            message = _(
                "Not subscribed: this person left that topic, objected or was erased. "
                "Only they can subscribe again, through their preference centre."
            )
            return _refused(person, message, 409)
        if changed:
            record("subscription.add", f"contact:{person.public_id}", topic=topic.slug)
        return _done(person, _("Subscribed to %(topic)s.", topic=topic.name))
    if action == "remove":
        if consent.unsubscribe(db.session, person, topic, channel=CHANNEL, now=now, today=today):
            record("subscription.remove", f"contact:{person.public_id}", topic=topic.slug)
        return _done(person, _("Unsubscribed from %(topic)s.", topic=topic.name))
    return _refused(person, _("That action is not known."), 422)


@bp.post("/contacts/<public_id>/objection")
@requires(MARKETING)
def contact_objection(public_id: str):
    person = _contact(public_id)
    if request.form.get("confirm") != "yes":
        return _refused(person, _("Tick the box to confirm the person asked for this."), 422)
    changed = consent.object_to_all(
        db.session,
        person,
        channel=CHANNEL,
        now=clock.now(),
        suppression_key=current_settings().suppression_key,
    )
    if changed:
        record("contact.objection", f"contact:{person.public_id}")
    return _done(person, _("Unsubscribed from everything: this address is never mailed again."))


@bp.post("/contacts/<public_id>/erase")
@requires(PRIVACY)
def contact_erase(public_id: str):
    person = _contact(public_id)
    if request.form.get("confirm") != "yes":
        return _refused(person, _("Tick the box to confirm the erasure."), 422)
    result = erasure.erase(db.session, person, settings=current_settings(), now=clock.now())
    record("contact.erase", f"contact:{result.public_id}", kept=result.kept)
    if result.kept:
        return _done(person, _("Erased, except what the legal hold keeps."))
    return _done(person, _("Erased: the personal data is gone and the address suppressed."))


@bp.post("/contacts/<public_id>/bounce/clear")
@requires(MARKETING)
def contact_clear_bounce(public_id: str):
    person = _contact(public_id)
    if policy.clear_bounce(db.session, person):
        record("contact.bounce_cleared", f"contact:{person.public_id}")
        return _done(person, _("Bounce state cleared: the address may be mailed again."))
    return _done(person, _("There was no bounce state to clear."))


@bp.get("/contacts/<public_id>/reports/<int(max=2147483647):report_id>")
@requires(EVERYONE)
def contact_report(public_id: str, report_id: int):
    person = _contact(public_id)
    try:
        raw = correspondence.raw_report(db.session, person, report_id)
    except NotFound:
        abort(404)
    return render_template("admin/contact_report.html", person=person, raw=raw)
