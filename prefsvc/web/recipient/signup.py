"""Public sign-up pages (``/s``): the form, its plain POST endpoint, and the confirmation link.

Thin views over ``prefsvc.recipient.signup``. The form may be embedded on the organisation's
other sites: in an iframe (``frame-ancestors`` names ``SIGNUP_ALLOWED_ORIGINS``) or as their
own form or script POSTing here, form-encoded or JSON, with CORS headers for those origins
only. ``GET /s/form`` hands such a site a fresh form token, the topics and the consent text.
The answer to a sign-up is the same whatever the address; a filled-in honeypot gets that
answer too, and nothing is recorded.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Response, abort, jsonify, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from prefsvc import clock
from prefsvc.errors import InvalidInput, InvalidToken, Suppressed
from prefsvc.extensions import csrf, db
from prefsvc.models import Topic
from prefsvc.queue import broker
from prefsvc.recipient import signup
from prefsvc.settings import current_settings
from prefsvc.web.languages import explicit_language
from prefsvc.web.recipient.blueprint import bp
from prefsvc.web.recipient.links import signer, speak
from prefsvc.web.recipient.rate_limits import (
    per_address_on_signup,
    per_client_on_links,
    per_client_on_signup,
    per_link,
)
from prefsvc.web.request_logs import RedactedInRequestLogs

HONEYPOT = "website"
PREFIX = "/s"
# The site-wide policy (``prefsvc.web.SECURITY_HEADERS``) with the allowed sites as framers.
FRAMED_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'self' {origins}; base-uri 'none'"
)


class RedactConfirmationLinks(RedactedInRequestLogs):
    """A confirmation link in a log would let a reader subscribe someone: keep it out."""

    PATTERN = re.compile(r"/s/confirm/[^/\s?\"']+")
    REPLACEMENT = "/s/confirm/[token]"


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    RedactConfirmationLinks.install()


def _field_messages() -> dict[str, str]:
    """What to tell a person about each field the domain refused, in the page's language."""
    return {
        "email": _("This is not a valid email address."),
        "first_name": _("Please shorten your first name."),
        "language": _("Choose one of the languages offered."),
        "topics": _("Choose at least one newsletter."),
        "consent": _("Tick the box to agree, or we cannot send you anything."),
        "form_token": _(
            "This form was sent back too quickly, or it was open for too long."
            " Check your details and send it again."
        ),
    }


def _topics(slug: str | None) -> list[Topic]:
    query = select(Topic).order_by(Topic.id)
    if slug is not None:
        query = query.where(Topic.slug == slug)
    topics = list(db.session.scalars(query))
    if slug is not None and not topics:
        abort(404)
    return topics


def _form_page(
    slug: str | None,
    *,
    state: str = "form",
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> str:
    language = str(get_locale())
    settings = current_settings()
    here = url_for("recipient.signup_page", slug=slug) if slug else url_for(".signup_page")
    return render_template(
        "recipient/signup.html",
        state=state,
        topics=[(t.slug, t.name_in(language), t.description_in(language)) for t in _topics(slug)],
        values=values or {"language": language, "topics": [slug] if slug else []},
        errors=errors or {},
        form_token=signup.form_token(settings.secret_keys, now=clock.now()),
        privacy_url=settings.privacy_url,
        confirm_hours=settings.signup_confirm_hours,
        form_url=here + (f"?lang={explicit_language()}" if explicit_language() else ""),
        lang_base=here,
        honeypot=HONEYPOT,
    )


@bp.get("/s", defaults={"slug": None})
@bp.get("/s/<slug>")
@per_client_on_links
def signup_page(slug: str | None) -> str:
    """Show the sign-up form (for one topic under ``/s/<slug>``); change nothing."""
    return _form_page(slug)


@bp.get("/s/form")
@per_client_on_links
def signup_form() -> Response:
    """Hand another site what it needs to build its own form: a fresh token, topics, consent."""
    language = str(get_locale())
    settings = current_settings()
    return jsonify(
        form_token=signup.form_token(settings.secret_keys, now=clock.now()),
        consent_version=signup.CONSENT_VERSION,
        consent_text=_consent_text(),
        privacy_url=settings.privacy_url,
        honeypot=HONEYPOT,
        topics=[
            {"slug": t.slug, "name": t.name_in(language), "description": t.description_in(language)}
            for t in _topics(None)
        ],
    )


def _consent_text() -> str:
    return _(
        "I agree to receive these newsletters by email. I can unsubscribe at any time, with the"
        " link in every newsletter."
    )


def _submitted() -> dict[str, Any]:
    """Read the fields of a sign-up, form-encoded or JSON, as the domain function takes them."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    form = request.form
    return {
        "email": form.get("email"),
        "first_name": form.get("first_name"),
        "language": form.get("language"),
        "topics": form.getlist("topics"),
        "consent": form.get("consent"),
        "form_token": form.get("form_token"),
        HONEYPOT: form.get(HONEYPOT),
    }


def _answer(slug: str | None, *, wants_json: bool) -> tuple[Response | str, int]:
    """The one answer to every sign-up that was accepted, mailed or not."""
    if wants_json:
        return jsonify(
            status="pending",
            detail=_(
                "If this address can receive our newsletters, we have sent it an email."
                " Open the link in it to confirm."
            ),
        ), 202
    return _form_page(slug, state="sent"), 200


def _refuse(
    slug: str | None, values: dict[str, Any], error: InvalidInput, *, wants_json: bool
) -> tuple[Response | str, int]:
    message = _field_messages().get(error.field, _("Check your details and send them again."))
    if wants_json:
        problem = jsonify(
            type="urn:prefsvc:invalid-input",
            title=_("Check your details"),
            status=400,
            detail=message,
            errors={error.field: message},
        )
        problem.mimetype = "application/problem+json"
        return problem, 400
    kept = {key: values.get(key) for key in ("email", "first_name", "language", "topics")}
    if not isinstance(kept["topics"], list):
        kept["topics"] = []
    return _form_page(slug, values=kept, errors={error.field: message}), 400


@bp.post("/s", defaults={"slug": None})
@bp.post("/s/<slug>")
@csrf.exempt
@per_client_on_signup
@per_address_on_signup
def submit_signup(slug: str | None) -> tuple[Response | str, int]:
    """Record a sign-up and hold its confirmation mail; the same answer for any address.

    No CSRF token: the signed form token stands in for it, and other sites may POST here.
    """
    wants_json = request.is_json
    if slug is not None:
        _topics(slug)
    values = _submitted()
    if values.get(HONEYPOT):
        return _answer(slug, wants_json=wants_json)
    settings = current_settings()
    now = clock.now()
    try:
        version = signup.check_form_token(
            settings.secret_keys, values.get("form_token") or "", now=now
        )
        form = signup.parse(
            db.session,
            email=values.get("email"),
            first_name=values.get("first_name"),
            language=values.get("language"),
            topics=values.get("topics"),
            consent=values.get("consent"),
            consent_version=version,
        )
    except InvalidInput as error:
        db.session.rollback()
        return _refuse(slug, values, error, wants_json=wants_json)
    try:
        held = signup.request(
            db.session,
            form,
            now=now,
            valid=timedelta(hours=settings.signup_confirm_hours),
            suppression_key=settings.suppression_key,
        )
        db.session.commit()
    except IntegrityError:  # the same address sent twice at once: the other one stands
        db.session.rollback()
        held = None
    if held is not None:
        broker.queue().notices_held()
    return _answer(slug, wants_json=wants_json)


def _pending(token: str) -> signup.SignupRequest:
    try:
        found = signup.pending(db.session, current_settings().secret_keys, token, now=clock.now())
    except InvalidToken:
        abort(404)
    return found


def _confirm_page(token: str, found: signup.SignupRequest | None, state: str) -> str:
    language = str(get_locale())
    names = []
    if found is not None:
        names = [
            t.name_in(language)
            for t in db.session.scalars(
                select(Topic).where(Topic.id.in_(found.topic_ids)).order_by(Topic.id)
            )
        ]
    return render_template(
        "recipient/signup_confirm.html",
        state=state,
        topics=names,
        token=token,
        preferences_url=None,
        form_url=url_for(".confirm_signup", token=token, lang=explicit_language()),
        lang_base=url_for(".confirm_page", token=token),
    )


@bp.route("/s/confirm/<token>", methods=["GET", "HEAD"])
@per_client_on_links
@per_link
def confirm_page(token: str) -> str:
    """Show what the link would subscribe and a button; change nothing (scanners GET links)."""
    found = _pending(token)
    speak(found.language)
    return _confirm_page(token, found, "ask")


@bp.post("/s/confirm/<token>")
@csrf.exempt
@per_client_on_links
@per_link
def confirm_signup(token: str) -> tuple[str, int] | str:
    """Subscribe the person of the request: the double opt-in's second step."""
    found = _pending(token)
    speak(found.language)
    settings = current_settings()
    try:
        contact = signup.confirm(
            db.session,
            found,
            now=clock.now(),
            today=clock.today(),
            suppression_key=settings.suppression_key,
        )
        db.session.commit()
    except Suppressed:
        db.session.commit()
        return _confirm_page(token, None, "refused"), 409
    except IntegrityError:  # confirmed twice at once: the other POST subscribed
        db.session.rollback()
        abort(404)
    page = render_template(
        "recipient/signup_confirm.html",
        state="confirmed",
        topics=[],
        token=token,
        preferences_url=url_for(
            "recipient.preferences_page", token=signer().preferences_token(contact.public_id)
        ),
        form_url="",
        lang_base=url_for(".signup_page"),
    )
    return page


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    return origin if origin in current_settings().signup_allowed_origins else None


@bp.after_request
def _cross_origin(response: Response) -> Response:
    """Let the allowed sites POST the form and embed its page; nobody else.

    CORS headers go on the sign-up endpoints only, and only for an ``Origin`` named in
    ``SIGNUP_ALLOWED_ORIGINS``; the form pages may be framed by those sites and ours.
    """
    if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
        return response
    origins = current_settings().signup_allowed_origins
    response.vary.add("Origin")
    origin = _allowed_origin()
    if origin is not None and not request.path.startswith(PREFIX + "/confirm/"):
        response.headers["Access-Control-Allow-Origin"] = origin
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
    if origins and not request.path.startswith(PREFIX + "/confirm/"):
        policy = FRAMED_POLICY.format(origins=" ".join(origins))
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.after_request
def _json_too_many(response: Response) -> Response:
    """A site POSTing JSON gets its 429 as a JSON problem, not the page a person sees.

    Registered after ``_cross_origin``, so it runs before it: the problem gets the CORS headers.
    """
    if (
        response.status_code == 429
        and request.endpoint == "recipient.submit_signup"
        and request.is_json
    ):
        problem = jsonify(
            type="about:blank",
            title="Too Many Requests",
            status=429,
            detail=_("Too many attempts. Please try again later."),
        )
        problem.status_code = 429
        problem.mimetype = "application/problem+json"
        for name in ("Retry-After", "Cache-Control"):
            if name in response.headers:
                problem.headers[name] = response.headers[name]
        return problem
    return response
