"""Recipient pages: one-click unsubscribe (RFC 8058), undo, and the preference centre.

The signed token in the URL is the capability: the ``/u`` actions need no cookie, session or
CSRF token, so mail providers can POST them. GET and HEAD never change anything, because mail
scanners and link previews fetch every link. Every bad token gets the same 404, whatever the
reason, and token pages are never cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import get_locale, refresh
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from werkzeug.exceptions import HTTPException, TooManyRequests

from prefsvc import clock
from prefsvc.consent import changes as consent
from prefsvc.errors import InvalidInput, InvalidToken, RequestStateError, Suppressed
from prefsvc.extensions import csrf, db, limiter
from prefsvc.mail import kit
from prefsvc.mail.tokens import Signer
from prefsvc.models import Contact, Language, RightsKind, RightsRequest, Topic
from prefsvc.privacy import rectification
from prefsvc.queue import broker
from prefsvc.recipient import centre, links, requests, signin
from prefsvc.recipient.acknowledgements import OPTOUT
from prefsvc.settings import current_settings
from prefsvc.web import explicit_language
from prefsvc.web.request_logs import RedactedInRequestLogs

bp = Blueprint("recipient", __name__)
LANGUAGE_NAMES = (("nl", "Nederlands"), ("fr", "Français"), ("en", "English"))
log = logging.getLogger(__name__)
LINKS = ("/u/", "/p/")


# --- rate limits: per client and per link (or address), values from the settings ---------


def _client_key() -> str:
    return f"{current_settings().queue_prefix}client:{get_remote_address()}"


def _token_key() -> str:
    """Key on a digest of the link, never on the link itself (storage may be Redis)."""
    token = (request.view_args or {}).get("token", "")
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"{current_settings().queue_prefix}token:{digest}"


def _address_key() -> str:
    settings = current_settings()
    address = signin.address_key(request.form.get("email", ""), settings.suppression_key)
    return f"{settings.queue_prefix}address:{address}"


per_client_on_links = limiter.shared_limit(
    lambda: current_settings().rate_limit_token_client, scope="links", key_func=_client_key
)
per_link = limiter.limit(lambda: current_settings().rate_limit_token, key_func=_token_key)
per_client_on_signin = limiter.limit(
    lambda: current_settings().rate_limit_signin_client,
    key_func=_client_key,
    methods=["POST"],
)
per_address_on_signin = limiter.limit(
    lambda: current_settings().rate_limit_signin_address,
    key_func=_address_key,
    methods=["POST"],
)


class OneClickFloodGuard:
    """The per-client limit of one-click POSTs, counted in fixed windows in this process.

    Mailbox providers POST one-click unsubscribes for all their users from a few addresses,
    by the hundred a second while a campaign goes out, so a provider has a limit of its own
    and is never turned away after a large campaign. The limit only guards against floods
    (a repeated one-click changes and mails nothing), so it is counted in memory: a round
    trip to Redis through Flask-Limiter cost more than the unsubscribe itself, and ``limits``'
    own memory storage starts a timer thread every 10 ms under load. Each web process counts
    apart: N processes let a client through N times the limit.
    """

    KEY = "prefsvc.one_click_flood_guard"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._text = ""
        self._windows: list[tuple[RateLimitItem, int, Counter[str]]] = []

    @classmethod
    def of(cls, app: Any) -> OneClickFloodGuard:
        guard = app.extensions.get(cls.KEY)
        if guard is None:
            guard = app.extensions.setdefault(cls.KEY, cls())
        return guard

    def admit(self, text: str, client: str) -> bool:
        """Count one POST from ``client``; False once any of the limits in ``text`` is spent."""
        now = self._clock()
        admitted = True
        with self._lock:
            if text != self._text:
                self._text, self._windows = text, [(lim, -1, Counter()) for lim in parse_many(text)]
            for i, (limit, index, counts) in enumerate(self._windows):
                if index != (current := int(now // limit.get_expiry())):
                    counts = Counter()
                    self._windows[i] = (limit, current, counts)
                counts[client] += 1
                admitted = admitted and counts[client] <= limit.amount
        return admitted


class RedactTokens(RedactedInRequestLogs):
    """Replace link tokens in logged request paths: a token in a log is a working link."""

    PATTERN = re.compile(r"(?<=[\s\"'])/([up])/[^/\s?\"']+")
    REPLACEMENT = r"/\1/[token]"


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    RedactTokens.install()


@bp.app_context_processor
def _page_language() -> dict[str, object]:
    """Give every page (errors and outbox too) its language and the language links."""
    return {"page_lang": str(get_locale() or "nl"), "languages": LANGUAGE_NAMES}


@bp.before_app_request
def _fresh_language() -> None:
    """Start every request's language choice clean.

    ``g`` belongs to the app context, which outlives one request when a caller keeps it
    pushed (tests, scripts); a previous request's contact must not choose this page's language.
    """
    g.pop("locale", None)
    g.pop("_flask_babel", None)


@bp.after_app_request
def _no_store(response: Response) -> Response:
    """Token pages hold personal data and capabilities: keep them out of every cache.

    By path, not by blueprint, so that a link no route matches (a mangled token holding a
    slash) gets the same headers as any other bad link.
    """
    if request.blueprint == bp.name or request.path == "/p" or request.path.startswith(LINKS):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_errorhandler(429)
def _too_many(error: HTTPException) -> tuple[Response | str, int]:
    """Say "too many attempts" in the person's language when the link names them."""
    token = (request.view_args or {}).get("token")
    if token and request.blueprint == bp.name:
        try:
            _speak_to(_any_link(token).contact)
        except InvalidToken:
            pass
    from prefsvc.web import _http_error

    return _http_error(error)


def _signer() -> Signer:
    """The process's signer for the current keys, shared with the sending workers."""

    return kit.signer(current_settings())


def _notify(kind: str, contact_id: int, params: dict[str, Any]) -> None:
    """Queue a notice after the change is committed; a broker failure must not undo it."""
    try:
        broker.queue().send_notice(kind, contact_id, params)
    except Exception:  # noqa: BLE001 - the change stands; the missing mail is logged
        log.exception("could not queue notice %s for contact %s", kind, contact_id)


def _speak_to(contact: Contact) -> None:
    _speak(contact.language)


def _speak(language: Language) -> None:
    """Answer in the language asked for on this page view, else the contact's own."""
    g.locale = explicit_language() or language.value
    refresh()


def _unsubscribe_link(token: str) -> links.UnsubscribeLink:
    try:
        link = links.read_unsubscribe_link(db.session, _signer(), token)
    except InvalidToken:
        abort(404)
    _speak(link.language)
    return link


@dataclass(frozen=True)
class Visit:
    """Who opened the preference centre, and whether with a fresh (24-hour) sign-in link."""

    contact: Contact
    fresh: bool = False
    request_id: int | None = None


def _open_preferences(token: str) -> Visit:
    """Open a preference-centre token, or a sign-in token under 24 hours old."""
    try:
        return Visit(links.open_preferences_link(db.session, _signer(), token))
    except InvalidToken:
        contact, claim = links.open_signin_link(db.session, _signer(), token, now=clock.now())
        return Visit(contact, fresh=True, request_id=claim.request_id)


def _any_link(token: str) -> Visit:
    """Open any recipient token (preferences, sign-in or unsubscribe), or raise InvalidToken."""
    try:
        return _open_preferences(token)
    except InvalidToken:
        contact, _topic = links.open_unsubscribe_link(db.session, _signer(), token)
        return Visit(contact)


def _preferences_target(token: str) -> Visit:
    try:
        visit = _open_preferences(token)
    except InvalidToken:
        abort(404)
    _speak_to(visit.contact)
    return visit


# Stand-ins for the two tokens on an unsubscribe page: letters only, so that URL quoting and
# HTML escaping leave them as they are (a topic whose name holds one is rendered directly).
_LINK_STAND_IN = "PrefsvcUnsubscribeTokenStandIn"
_PREFERENCES_STAND_IN = "PrefsvcPreferencesTokenStandIn"
_PAGES_KEY = "prefsvc.unsubscribe_pages"
_PAGES_KEPT = 512
_URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


def _unsubscribe_page(token: str, link: links.UnsubscribeLink, state: str) -> str:
    """Render the ``/u`` page, from a copy made once per topic, state and language.

    Mail scanners GET every link and mailbox providers POST one-click unsubscribes by the
    hundred a second while a campaign goes out; the page differs between people only in
    its two tokens, so those are put into a page rendered with stand-ins.
    """
    if link.objected and state != "all":
        state = "objected"
    preferences_token = _signer().preferences_token(link.public_id)
    if (
        not (_URL_SAFE.fullmatch(token) and _URL_SAFE.fullmatch(preferences_token))
        or _LINK_STAND_IN in link.topic_name
        or _PREFERENCES_STAND_IN in link.topic_name
    ):
        return _render_unsubscribe_page(state, link.topic_name, token, preferences_token)
    key = (state, link.topic_name, explicit_language(), str(get_locale()), request.script_root)
    pages = current_app.extensions.setdefault(_PAGES_KEY, {})
    page = pages.get(key)
    if page is None:
        if len(pages) >= _PAGES_KEPT:
            pages.clear()
        page = pages[key] = _render_unsubscribe_page(
            state, link.topic_name, _LINK_STAND_IN, _PREFERENCES_STAND_IN
        )
    return page.replace(_LINK_STAND_IN, token).replace(_PREFERENCES_STAND_IN, preferences_token)


def _render_unsubscribe_page(
    state: str, topic_name: str, token: str, preferences_token: str
) -> str:
    return render_template(
        "recipient/unsubscribe.html",
        state=state,
        topic_name=topic_name,
        token=token,
        lang=explicit_language(),
        lang_base=url_for("recipient.unsubscribe_page", token=token),
        preferences_url=url_for(
            "recipient.preferences_page", token=preferences_token, lang=explicit_language()
        ),
    )


@bp.get("/u/<token>")
@per_client_on_links
@per_link
def unsubscribe_page(token: str) -> str:
    """Show what the link would do, and a button that does it; change nothing."""
    link = _unsubscribe_link(token)
    return _unsubscribe_page(token, link, "offer" if link.subscribed else "unsubscribed")


@bp.post("/u/<token>")
@csrf.exempt
def one_click(token: str) -> str:
    """Leave the link's topic (RFC 8058 one-click): any body, no cookie, 200, never a redirect.

    Limited per client only, not per link: posting a link again changes and mails nothing.
    """
    guard = OneClickFloodGuard.of(current_app)
    if not guard.admit(current_settings().rate_limit_one_click_client, get_remote_address()):
        raise TooManyRequests()
    try:
        link, left = links.leave_by_link(
            db.session, _signer(), token, channel="one-click", now=clock.now(), today=clock.today()
        )
    except InvalidToken:
        abort(404)
    if db.session().in_transaction():  # on PostgreSQL the statement committed by itself
        db.session.commit()
    _speak(link.language)
    if left:  # the acknowledgement was committed to the outbox with the unsubscribe
        broker.queue().notices_held()
    return _unsubscribe_page(token, link, "unsubscribed")


@bp.post("/u/<token>/undo")
@per_client_on_links
@per_link
@csrf.exempt
def undo(token: str) -> str:
    """Put the person back on the topic they just left, unless they left everything."""
    link = _unsubscribe_link(token)
    try:
        links.undo_unsubscribe(
            db.session,
            db.session.get_one(Contact, link.contact_id),
            db.session.get_one(Topic, link.topic_id),
            suppression_key=current_settings().suppression_key,
            now=clock.now(),
            today=clock.today(),
        )
    except Suppressed:
        db.session.rollback()
        return _unsubscribe_page(token, link, "objected")
    db.session.commit()
    return _unsubscribe_page(token, link, "resubscribed")


@bp.post("/u/<token>/all")
@per_client_on_links
@per_link
@csrf.exempt
def unsubscribe_all(token: str) -> str:
    """Object to all direct marketing: every topic off and the address suppressed, for good."""
    link = _unsubscribe_link(token)
    objected = consent.object_to_all(
        db.session,
        db.session.get_one(Contact, link.contact_id),
        channel="one-click",
        now=clock.now(),
        suppression_key=current_settings().suppression_key,
    )
    db.session.commit()
    if objected:
        _notify(OPTOUT, link.contact_id, {"everything": True})
    return _unsubscribe_page(token, link, "all")


@bp.get("/p/<token>")
@per_client_on_links
@per_link
def preferences_page(token: str) -> str:
    """Show topics, language, pause, details and rights; change nothing."""
    return _preferences_page(token, _preferences_target(token))


def _preferences_page(token: str, visit: Visit, *, errors: dict[str, str] | None = None) -> str:
    contact = visit.contact
    today = clock.today()
    return render_template(
        "recipient/preferences.html",
        contact=contact,
        fresh=visit.fresh,
        waiting=requests.waiting_request(db.session, contact, visit.request_id),
        choices=centre.topic_choices(db.session, contact),
        objected=centre.has_objected(contact),
        paused=centre.is_paused(contact, today),
        pause_months=centre.PAUSE_MONTHS,
        history=centre.history(db.session, contact),
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
    visit = _preferences_target(token)
    csrf.protect()
    contact = visit.contact
    action = request.form.get("action", "save")
    now, today = clock.now(), clock.today()
    settings = current_settings()
    key = settings.suppression_key
    keep_language = explicit_language()
    notify: list[tuple[str, dict[str, Any]]] = []
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
                notify.append((OPTOUT, {"topic_ids": [t.id for t in changes.unsubscribed]}))
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
                notify.append((OPTOUT, {"everything": True}))
            notice = "objected"
        elif action == "details":
            corrected = requests.correct_details(
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
                notify.append((rectification.NOTICE, params))
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
        db.session.commit()
    for kind, params in notify:
        _notify(kind, contact.id, params)
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
            request_row = requests.confirm_request(db.session, contact, visit.request_id, now=now)
        except RequestStateError:
            db.session.rollback()
            abort(400)
    elif not visit.fresh:
        asked = requests.ask_for(db.session, contact, action, settings=settings, now=now)
        db.session.commit()
        _notify(signin.KIND, contact.id, {"request_id": asked.id})
        flash("confirm_sent")
        target = url_for("recipient.preferences_page", token=token, lang=explicit_language())
        return redirect(target, code=303)
    else:
        request_row = requests.ask_for(db.session, contact, action, settings=settings, now=now)
        requests.confirm_request(db.session, contact, request_row.id, now=now)
    if request_row.kind is RightsKind.ERASURE and request.form.get("understood") != "yes":
        db.session.rollback()
        abort(400)
    return _fulfil(request_row, contact)


def _fulfil(request_row: RightsRequest, contact: Contact) -> Response | str:
    result = requests.fulfil(
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


# --- sign-in: a fresh link by mail, for anyone who has no old newsletter at hand ----------


@bp.get("/p")
@per_client_on_links
def signin_page() -> str:
    """Ask for an address; change nothing."""
    return render_template("recipient/signin.html", state="ask", lang_base=url_for(".signin_page"))


@bp.post("/p")
@per_client_on_signin
@per_address_on_signin
def request_signin() -> tuple[str, int] | str:
    """Queue a sign-in link; answer the same way for any address, known or not."""
    address = request.form.get("email", "")
    try:
        contact_id = signin.recipient_id(db.session, address)
    except InvalidInput:
        page = render_template(
            "recipient/signin.html",
            state="invalid",
            email=address,
            lang_base=url_for(".signin_page"),
        )
        return page, 400
    db.session.rollback()
    _notify(signin.KIND, contact_id, {})
    return render_template("recipient/signin.html", state="sent", lang_base=url_for(".signin_page"))


def _topic_ids() -> list[int]:
    return [_int(value) for value in request.form.getlist("topics")]


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise InvalidInput("form", "expected a number") from None
