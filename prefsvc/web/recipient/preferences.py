"""The preference centre (``/p/<token>``): topics, language, pause, details, copy and erasure.

Opened with a preference-centre link from any mail, or a fresh (24-hour) sign-in link; a copy
or an erasure needs the fresh kind, which is mailed first when the visit came without one.
"""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale

from prefsvc import clock
from prefsvc.consent import changes as consent
from prefsvc.errors import InvalidInput, RequestStateError, Suppressed
from prefsvc.extensions import csrf, db
from prefsvc.models import Contact, RightsKind, RightsRequest
from prefsvc.privacy import rectification
from prefsvc.recipient import centre, signin
from prefsvc.recipient import requests as centre_requests
from prefsvc.recipient.acknowledgements import OPTOUT
from prefsvc.settings import current_settings
from prefsvc.web.languages import explicit_language
from prefsvc.web.recipient.blueprint import bp, notices_committed, notify
from prefsvc.web.recipient.links import Visit, preferences_target
from prefsvc.web.recipient.rate_limits import per_client_on_links, per_link


@bp.get("/p/<token>")
@per_client_on_links
@per_link
def preferences_page(token: str) -> str:
    """Show topics, language, pause, details and rights; change nothing."""
    return _preferences_page(token, preferences_target(token))


def _preferences_page(token: str, visit: Visit, *, errors: dict[str, str] | None = None) -> str:
    contact = visit.contact
    today = clock.today()
    return render_template(
        "recipient/preferences.html",
        contact=contact,
        fresh=visit.fresh,
        waiting=centre_requests.waiting_request(db.session, contact, visit.request_id),
        choices=centre.topic_choices(db.session, contact, str(get_locale())),
        objected=centre.has_objected(contact),
        paused=centre.is_paused(contact, today),
        pause_months=centre.PAUSE_MONTHS,
        history=centre.history(db.session, contact, str(get_locale())),
        notices=get_flashed_messages(),
        errors=errors or {},
        form_url=url_for("recipient.preferences_page", token=token, lang=explicit_language()),
        lang_base=url_for("recipient.preferences_page", token=token),
    )


@bp.post("/p/<token>")
@per_client_on_links
@per_link
@csrf.exempt
def save_preferences(token: str) -> Response | str:
    """Apply one of the preference-centre forms (CSRF-protected), then show the page again.

    The link is checked before the CSRF token, so a bad link gets the same 404 on every method.
    """
    visit = preferences_target(token)
    csrf.protect()
    contact = visit.contact
    action = request.form.get("action", "save")
    now, today = clock.now(), clock.today()
    settings = current_settings()
    key = settings.suppression_key
    keep_language = explicit_language()
    to_notify: list[tuple[str, dict[str, Any]]] = []
    try:
        if action == "save":
            changes = centre.save(
                db.session,
                contact,
                topic_ids=_topic_ids(),
                language=request.form.get("language", contact.language.value),
                suppression_key=key,
                now=now,
                today=today,
            )
            notice = "saved"
            if changes.unsubscribed:
                to_notify.append((OPTOUT, {"topic_ids": [t.id for t in changes.unsubscribed]}))
            if changes.language is not None:
                keep_language = None  # show the next page in the newly chosen language
        elif action == "pause":
            centre.pause(
                db.session, contact, _int(request.form.get("months")), now=now, today=today
            )
            notice = "paused"
        elif action == "resume":
            centre.resume(db.session, contact, now=now, today=today)
            notice = "resumed"
        elif action == "all":
            if consent.object_to_all(
                db.session, contact, channel=centre.CHANNEL, now=now, suppression_key=key
            ):
                to_notify.append((OPTOUT, {"everything": True}))
            notice = "objected"
        elif action == "details":
            corrected = centre_requests.correct_details(
                db.session,
                contact,
                {
                    name: request.form.get(name)
                    for name in ("first_name", "last_name", "organisation")
                },
                settings=settings,
                now=now,
                today=today,
            )
            notice = "corrected" if corrected else "unchanged"
            if corrected:
                params = rectification.confirmation_params(settings, corrected, now=now)
                to_notify.append((rectification.NOTICE, params))
        elif action in ("access", "erasure", "confirm"):
            return _rights_request(token, visit, action)
        else:
            abort(400)
    except InvalidInput as exc:
        db.session.rollback()
        if action == "details":
            return _preferences_page(token, visit, errors={exc.field: "invalid"}), 400
        abort(400)
    except Suppressed:
        db.session.rollback()
        notice = "refused"
    else:
        for kind, params in to_notify:  # held with the change: both are committed, or neither
            notify(kind, contact.id, params)
        db.session.commit()
        if to_notify:
            notices_committed()
    flash(notice)
    target = url_for("recipient.preferences_page", token=token, lang=keep_language)
    return redirect(target, code=303)


def _rights_request(token: str, visit: Visit, action: str) -> Response | str:
    """Copy or erasure: with a fresh sign-in link carry it out, else mail such a link first."""
    contact = visit.contact
    settings = current_settings()
    now = clock.now()
    if action == "confirm":
        if not visit.fresh or visit.request_id is None:
            abort(400)
        try:
            request_row = centre_requests.confirm_request(
                db.session, contact, visit.request_id, now=now
            )
        except RequestStateError:
            db.session.rollback()
            abort(400)
    elif not visit.fresh:
        asked = centre_requests.ask_for(db.session, contact, action, settings=settings, now=now)
        notify(signin.KIND, contact.id, {"request_id": asked.id})
        db.session.commit()
        notices_committed()
        flash("confirm_sent")
        target = url_for("recipient.preferences_page", token=token, lang=explicit_language())
        return redirect(target, code=303)
    else:
        request_row = centre_requests.ask_for(
            db.session, contact, action, settings=settings, now=now
        )
        centre_requests.confirm_request(db.session, contact, request_row.id, now=now)
    if request_row.kind is RightsKind.ERASURE and request.form.get("understood") != "yes":
        db.session.rollback()
        abort(400)
    return _fulfil(request_row, contact)


def _fulfil(request_row: RightsRequest, contact: Contact) -> Response | str:
    result = centre_requests.fulfil(
        db.session, request_row, contact, settings=current_settings(), now=clock.now()
    )
    db.session.commit()
    if isinstance(result, dict):
        body = json.dumps(result, ensure_ascii=False, indent=2)
        return Response(
            body,
            mimetype="application/json",
            headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
        )
    return render_template("recipient/erased.html", result=result)


def _topic_ids() -> list[int]:
    return [_int(value) for value in request.form.getlist("topics")]


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise InvalidInput("form", "expected a number") from None
