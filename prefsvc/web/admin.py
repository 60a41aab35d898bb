"""The admin UI for the marketing and privacy teams: server-rendered pages under ``/admin/``.

Views are thin: they read the form, make one domain call, commit and render. Every page needs
a signed-in staff account whose role allows it (``staff.may``); every form carries the global
CSRF token; every answer is ``Cache-Control: no-store``. Campaign HTML is only ever shown in a
sandboxed frame served with its own strict CSP, so a template cannot run script as staff.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_user, logout_user

from prefsvc import clock
from prefsvc.access import audit, staff
from prefsvc.campaigns import audience, campaigns
from prefsvc.campaigns import control as campaign_control
from prefsvc.campaigns import preview as campaign_preview
from prefsvc.consent import suppression
from prefsvc.errors import (
    CampaignStateError,
    ImportFileError,
    InvalidInput,
    NotFound,
    PrefsvcError,
)
from prefsvc.extensions import db, login_manager
from prefsvc.mail import kit
from prefsvc.mail.transport import DeliveryError
from prefsvc.models import LANGUAGES, AdminUser, Campaign, CampaignStatus, StaffRole
from prefsvc.people import contacts, importing, topics
from prefsvc.privacy import register
from prefsvc.queue import broker
from prefsvc.reports import dashboard
from prefsvc.settings import current_settings

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")

MARKETING = (StaffRole.MARKETING,)
PRIVACY = (StaffRole.PRIVACY,)
EVERYONE = (StaffRole.MARKETING, StaffRole.PRIVACY)
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)
IMPORT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,40}$")
PENDING_IMPORT_HOURS = 24


# --- sign-in ----------------------------------------------------------------------------


@dataclass
class StaffUser(UserMixin):
    """The signed-in account as Flask-Login sees it.

    Its session id includes a fragment of the password hash, so changing a password ends
    every other session; a disabled account is refused at its next request.
    """

    id: int
    username: str
    role: StaffRole
    fingerprint: str

    def get_id(self) -> str:
        return f"{self.id}:{self.fingerprint}"

    def may(self, allowed: tuple[StaffRole, ...]) -> bool:
        return staff.may(self.role, allowed)


def _as_staff_user(user: AdminUser) -> StaffUser:
    return StaffUser(user.id, user.username, user.role, user.password_hash[-12:])


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    login_manager.init_app(state.app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"
    state.app.jinja_env.filters.setdefault("local_time", _local_time)


@login_manager.user_loader
def _load_user(session_id: str) -> StaffUser | None:
    user_id, _sep, fingerprint = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(AdminUser, int(user_id))
    if user is None or not user.active or user.password_hash[-12:] != fingerprint:
        return None
    return _as_staff_user(user)


def _local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a stored UTC instant in the service's time zone."""
    if value is None:
        return "–"
    return value.astimezone(current_settings().timezone).strftime(fmt)


def requires(allowed: tuple[StaffRole, ...]) -> Callable:
    """Let signed-in staff whose role is allowed (admins always) use the view; 403 otherwise."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.may(allowed):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


@bp.before_request
def _fresh_user() -> None:
    """Look the account and CSRF token up afresh (``g`` can outlive a request: tests, scripts)."""
    g.pop("_login_user", None)
    g.pop("csrf_token", None)


@bp.after_request
def _no_store(response: Response) -> Response:
    """Admin pages show personal data: keep them out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _navigation() -> dict[str, object]:
    return {
        "staff_may": lambda *roles: current_user.is_authenticated and current_user.may(roles),
        "time_zone": str(current_settings().timezone),
    }


def _record(action: str, target: str | None, **detail: Any) -> None:
    """Audit an action of the signed-in user, in the transaction of the change."""
    audit.record(
        db.session,
        actor=f"user:{current_user.username}",
        action=action,
        target=target,
        detail=detail,
        now=clock.now(),
    )


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.home"))
    error = None
    status = 200
    username = request.form.get("username", "")
    if request.method == "POST":
        try:
            user = staff.authenticate(
                db.session, username, request.form.get("password", ""), now=clock.now()
            )
        except staff.SignInThrottled as exc:
            db.session.rollback()
            minutes = max(1, int(exc.retry_after.total_seconds() // 60) + 1)
            error = _(
                "Too many failed attempts. Try again in %(minutes)s minutes.", minutes=minutes
            )
            status = 429
        except staff.SignInRefused:
            db.session.commit()  # keep the audited failure: it feeds the brake
            time.sleep(0.5)  # slow down guessing a little more on top of scrypt
            error = _("Wrong username or password.")
            status = 401
        else:
            db.session.commit()
            next_page = _safe_next(request.args.get("next"))
            session.clear()
            login_user(_as_staff_user(user))
            return redirect(next_page)
    page = render_template("admin/login.html", error=error, username=username)
    return page, status


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("admin.login"))


# --- dashboard --------------------------------------------------------------------------


@bp.get("/")
@requires(EVERYONE)
def home():
    settings = current_settings()
    figures = dashboard.figures(
        db.session, today=clock.today(), years=settings.marketing_window_years
    )
    return render_template("admin/dashboard.html", figures=figures, today=clock.today())


# --- campaigns --------------------------------------------------------------------------


def _campaign(campaign_id: int) -> Campaign:
    try:
        return campaigns.get(db.session, campaign_id)
    except NotFound:
        abort(404)


def _composer_input() -> tuple[str, dict[str, tuple[str, str, str | None]], dict[str, dict]]:
    """Read the composer form: the topic, the filled-in languages, and the raw values."""
    topic_slug = request.form.get("topic", "")
    variants: dict[str, tuple[str, str, str | None]] = {}
    raw: dict[str, dict] = {}
    for lang in LANGUAGES:
        subject = request.form.get(f"subject_{lang}", "").strip()
        html = request.form.get(f"html_{lang}", "")
        text = request.form.get(f"text_{lang}", "")
        raw[lang] = {"subject": subject, "html": html, "text": text}
        if subject or html.strip() or text.strip():
            variants[lang] = (subject, html, text if text.strip() else None)
    return topic_slug, variants, raw


def _variant_values(campaign: Campaign) -> dict[str, dict]:
    values = {lang: {"subject": "", "html": "", "text": ""} for lang in LANGUAGES}
    for variant in campaign.variants:
        values[variant.language.value] = {
            "subject": variant.subject,
            "html": variant.html,
            "text": variant.text or "",
        }
    return values


def _composer(
    *,
    campaign: Campaign | None,
    topic_slug: str,
    values: dict[str, dict],
    problems: dict[tuple[str | None, str], str] | None = None,
    status: int = 200,
):
    extra: dict[str, Any] = {}
    if campaign is not None:
        settings = current_settings()
        extra["count"] = audience.count(
            db.session, campaign, on=clock.today(), years=settings.marketing_window_years
        )
        extra["previews"] = {}
        for variant in campaign.variants:
            rendered = campaign_preview.preview(
                db.session, campaign, settings=settings, language=variant.language.value
            )
            extra["previews"][variant.language.value] = rendered
    page = render_template(
        "admin/composer.html",
        campaign=campaign,
        topics=topics.all_topics(db.session),
        topic_slug=topic_slug,
        values=values,
        problems=problems or {},
        **extra,
    )
    return page, status


@bp.get("/campaigns/")
@requires(MARKETING)
def campaign_list():
    return render_template(
        "admin/campaigns.html", campaigns=campaigns.recent(db.session, limit=100)
    )


@bp.route("/campaigns/new", methods=["GET", "POST"])
@requires(MARKETING)
def compose():
    if request.method == "GET":
        values = {lang: {"subject": "", "html": "", "text": ""} for lang in LANGUAGES}
        return _composer(campaign=None, topic_slug="", values=values)
    topic_slug, variants, raw = _composer_input()
    problems = campaigns.variant_problems(db.session, topic_slug=topic_slug, variants=variants)
    if problems:
        return _composer(
            campaign=None, topic_slug=topic_slug, values=raw, problems=problems, status=422
        )
    campaign = campaigns.create(db.session, topic_slug=topic_slug, variants=variants)
    _record("campaign.create", f"campaign:{campaign.id}", languages=sorted(variants))
    db.session.commit()
    flash(_("Draft saved. Check the preview, send a test, then send or schedule it."), "ok")
    return redirect(url_for("admin.campaign", campaign_id=campaign.id))


@bp.get("/campaigns/<int:campaign_id>")
@requires(MARKETING)
def campaign(campaign_id: int):
    item = _campaign(campaign_id)
    if item.status is CampaignStatus.DRAFT:
        return _composer(campaign=item, topic_slug=item.topic.slug, values=_variant_values(item))
    return _campaign_page(item)


@bp.post("/campaigns/<int:campaign_id>")
@requires(MARKETING)
def revise(campaign_id: int):
    item = _campaign(campaign_id)
    if item.status is not CampaignStatus.DRAFT:
        abort(409)
    topic_slug, variants, raw = _composer_input()
    problems = campaigns.variant_problems(db.session, topic_slug=topic_slug, variants=variants)
    if problems:
        return _composer(
            campaign=item, topic_slug=topic_slug, values=raw, problems=problems, status=422
        )
    campaigns.revise(db.session, item, topic_slug=topic_slug, variants=variants)
    _record("campaign.revise", f"campaign:{item.id}", languages=sorted(variants))
    db.session.commit()
    flash(_("Draft saved."), "ok")
    return redirect(url_for("admin.campaign", campaign_id=item.id))


@bp.get("/campaigns/<int:campaign_id>/preview/<lang>")
@requires(MARKETING)
def preview(campaign_id: int, lang: str):
    """The mail's HTML for a sandboxed frame: no script, no forms, framed only by us."""
    item = _campaign(campaign_id)
    if lang not in {v.language.value for v in item.variants}:
        abort(404)
    rendered = campaign_preview.preview(
        db.session, item, settings=current_settings(), language=lang
    )
    response = Response(rendered.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/campaigns/<int:campaign_id>/test-send")
@requires(MARKETING)
def test_send(campaign_id: int):
    item = _campaign(campaign_id)
    settings = current_settings()
    language = request.form.get("language") or None
    try:
        campaign_preview.test_send(
            db.session,
            item,
            to=request.form.get("to", ""),
            language=language,
            settings=settings,
            now=clock.now(),
            transport=kit.transport(settings),
        )
    except InvalidInput as exc:
        db.session.rollback()
        flash(_("Test copy not sent: the address %(reason)s.", reason=exc.reason), "error")
    except DeliveryError as exc:
        db.session.rollback()
        log.warning("test copy of campaign %s refused: %s", item.id, exc.code)
        flash(_("The mail server refused the test copy (%(code)s).", code=exc.code), "error")
    else:
        _record("campaign.test_send", f"campaign:{item.id}", language=language)
        db.session.commit()
        flash(_("Test copy sent."), "ok")
    finally:
        kit.close_thread_resources()
    return redirect(url_for("admin.campaign", campaign_id=item.id) + "#test-send")


@bp.post("/campaigns/<int:campaign_id>/send")
@requires(MARKETING)
def send(campaign_id: int):
    item = _campaign(campaign_id)
    settings = current_settings()
    try:
        size = campaigns.launch(
            db.session,
            item.id,
            now=clock.now(),
            today=clock.today(),
            years=settings.marketing_window_years,
            batch_size=settings.batch_size,
            enqueue=broker.queue().send_batch,
        )
    except CampaignStateError:
        db.session.rollback()
        flash(_("This campaign has already been sent or scheduled."), "error")
        return redirect(url_for("admin.campaign", campaign_id=item.id))
    _record("campaign.send", f"campaign:{item.id}", audience=size)
    db.session.commit()
    return redirect(url_for("admin.campaign", campaign_id=item.id))


@bp.post("/campaigns/<int:campaign_id>/schedule")
@requires(MARKETING)
def schedule(campaign_id: int):
    item = _campaign(campaign_id)
    text = request.form.get("at", "")
    try:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput("at", _("choose a date and a time")) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=current_settings().timezone)
        campaign_control.schedule(db.session, item, at=at, now=clock.now())
    except (InvalidInput, CampaignStateError) as exc:
        db.session.rollback()
        reason = exc.reason if isinstance(exc, InvalidInput) else str(exc)
        flash(_("Not scheduled: %(reason)s.", reason=reason), "error")
        return redirect(url_for("admin.campaign", campaign_id=item.id) + "#schedule")
    _record("campaign.schedule", f"campaign:{item.id}", at=at.isoformat())
    db.session.commit()
    flash(_("Scheduled for %(when)s.", when=_local_time(at)), "ok")
    return redirect(url_for("admin.campaign", campaign_id=item.id))


@bp.post("/campaigns/<int:campaign_id>/<any(pause, resume, cancel):action>")
@requires(MARKETING)
def control(campaign_id: int, action: str):
    item = _campaign(campaign_id)
    try:
        if action == "pause":
            campaign_control.pause(db.session, item)
        elif action == "resume":
            campaign_control.resume(db.session, item)
        else:
            campaign_control.cancel(db.session, item, now=clock.now())
    except CampaignStateError:
        db.session.rollback()
        flash(_("That is not possible in the campaign's current state."), "error")
        return redirect(url_for("admin.campaign", campaign_id=item.id))
    _record(f"campaign.{action}", f"campaign:{item.id}")
    db.session.commit()
    if action == "resume":
        campaigns.requeue(
            db.session,
            item.id,
            batch_size=current_settings().batch_size,
            enqueue=broker.queue().send_batch,
        )
    return redirect(url_for("admin.campaign", campaign_id=item.id))


def _figures(item: Campaign) -> dict[str, Any]:
    settings = current_settings()
    figures = campaigns.stats(
        db.session, item, today=clock.today(), years=settings.marketing_window_years
    )
    done = figures["sent"] + figures["failed"]
    audience_size = figures["audience"]
    figures["done"] = done
    figures["percent"] = round(100 * done / audience_size) if audience_size else 100
    figures["excluded_total"] = sum(figures["excluded"].values())
    return figures


def _campaign_page(item: Campaign):
    figures = _figures(item)
    points = campaigns.timeline(db.session, item)
    span = (points[0][0], points[-1][0]) if points else None
    charts = {
        kind: chart([when for when, what in points if what == kind], span)
        for kind in ("sent", "unsubscribed")
    }
    return render_template(
        "admin/campaign.html",
        campaign=item,
        figures=figures,
        charts=charts,
        live=item.status is CampaignStatus.SENDING,
    )


@bp.get("/campaigns/<int:campaign_id>/progress.json")
@requires(MARKETING)
def progress(campaign_id: int):
    """The live figures the campaign page polls while sending."""
    item = _campaign(campaign_id)
    figures = _figures(item)
    keys = ("status", "audience", "queued", "sending", "sent", "failed", "done", "percent")
    return jsonify({key: figures[key] for key in keys} | {"unsubscribes": figures["unsubscribes"]})


@dataclass(frozen=True)
class Chart:
    """A cumulative line over time, laid out for an inline SVG of ``WIDTH`` × ``HEIGHT``."""

    total: int
    points: str
    start: datetime | None
    end: datetime | None
    WIDTH = 600
    HEIGHT = 160
    PAD = 8

    @property
    def time_format(self) -> str:
        """Times of day for a short campaign; dates too once it spans more than a day."""
        if self.start and self.end and self.end - self.start > timedelta(days=1):
            return "%d/%m %H:%M"
        return "%H:%M:%S"


def chart(times: list[datetime], span: tuple[datetime, datetime] | None = None) -> Chart:
    """Lay out the running total of events as SVG points over ``span`` (shared by all charts)."""
    if not times:
        return Chart(0, "", None, None)
    times = sorted(times)
    start, end = span or (times[0], times[-1])
    seconds = (end - start).total_seconds() or 1.0
    width, height, pad = Chart.WIDTH, Chart.HEIGHT, Chart.PAD
    total = len(times)

    def x(when: datetime) -> float:
        return pad + (width - 2 * pad) * (when - start).total_seconds() / seconds

    def y(n: int) -> float:
        return height - pad - (height - 2 * pad) * n / total

    coords = [(pad, y(0))]
    for n, when in enumerate(times, start=1):
        coords += [(x(when), y(n - 1)), (x(when), y(n))]  # a step: the total jumps at each event
    coords.append((width - pad, y(total)))
    return Chart(total, " ".join(f"{a:.1f},{b:.1f}" for a, b in coords), start, end)


# --- contacts ---------------------------------------------------------------------------


@bp.get("/contacts/")
@requires(EVERYONE)
def contact_search():
    query = request.args.get("q", "").strip()
    found = contacts.search(db.session, query) if query else []
    return render_template(
        "admin/contacts.html", query=query, found=found, limit=contacts.SEARCH_LIMIT
    )


@bp.get("/contacts/<public_id>")
@requires(EVERYONE)
def contact(public_id: str):
    person = contacts.by_public_id(db.session, public_id)
    if person is None:
        abort(404)
    document = contacts.document(db.session, person, current_settings().marketing_window_years)
    return render_template("admin/contact.html", document=document, today=clock.today())


# --- import -----------------------------------------------------------------------------


def _import_dir() -> Path:
    path = current_settings().instance_path / "admin-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _forget_old_imports(folder: Path) -> None:
    cut_off = time.time() - PENDING_IMPORT_HOURS * 3600
    for old in folder.glob("*.csv"):
        if old.stat().st_mtime < cut_off:
            old.unlink(missing_ok=True)


def _run_import(data: bytes, filename: str, *, dry_run: bool) -> importing.ImportResult:
    result = importing.import_csv(
        db.session,
        data,
        filename=filename,
        now=clock.now(),
        today=clock.today(),
        suppression_key=current_settings().suppression_key,
        source="admin",
        dry_run=dry_run,
    )
    return result


@bp.route("/import", methods=["GET", "POST"])
@requires(MARKETING)
def import_upload():
    if request.method == "GET":
        return render_template("admin/import.html", error=None)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("admin/import.html", error=_("Choose a CSV file.")), 422
    data = upload.read()
    filename = Path(upload.filename).name[:200]
    try:
        result = _run_import(data, filename, dry_run=True)
    except ImportFileError as exc:
        db.session.rollback()
        return render_template("admin/import.html", error=str(exc)), 422
    db.session.rollback()
    folder = _import_dir()
    _forget_old_imports(folder)
    token = secrets.token_urlsafe(18)
    (folder / f"{token}.csv").write_bytes(data)
    session["pending_import"] = {"token": token, "filename": filename}
    return render_template("admin/import_preview.html", result=result, filename=filename)


@bp.post("/import/commit")
@requires(MARKETING)
def import_commit():
    pending = session.pop("pending_import", None) or {}
    token = pending.get("token", "")
    path = _import_dir() / f"{token}.csv"
    if not IMPORT_TOKEN.match(token) or not path.exists():
        flash(_("That import is no longer waiting; upload the file again."), "error")
        return redirect(url_for("admin.import_upload"))
    data = path.read_bytes()
    try:
        result = _run_import(data, pending["filename"], dry_run=False)
    except ImportFileError as exc:
        db.session.rollback()
        return render_template("admin/import.html", error=str(exc)), 422
    _record("contacts.import", None, **result.summary())
    db.session.commit()
    path.unlink(missing_ok=True)
    return render_template(
        "admin/import_preview.html", result=result, filename=pending["filename"], committed=True
    )


# --- suppression and rights -------------------------------------------------------------


@bp.route("/suppression", methods=["GET", "POST"])
@requires(EVERYONE)
def suppression_list():
    """Counts by reason, and a check that answers only yes or no for one address."""
    answer = None
    error = None
    if request.method == "POST":
        try:
            answer = suppression.is_suppressed(
                db.session, current_settings().suppression_key, request.form.get("email", "")
            )
        except InvalidInput as exc:
            error = exc.reason
    counts = suppression.counts_by_reason(db.session)
    db.session.rollback()
    status = 422 if error else 200
    page = render_template("admin/suppression.html", counts=counts, answer=answer, error=error)
    return page, status


@bp.get("/rights")
@requires(PRIVACY)
def rights_queue():
    requests_ = register.open_requests(db.session)
    return render_template("admin/rights.html", requests=requests_, today=clock.today())


@bp.errorhandler(PrefsvcError)
def _domain_error(error: PrefsvcError):
    """A domain error no view expected: a readable 400 page, nothing half-written kept."""
    db.session.rollback()
    log.info("admin request refused: %s", type(error).__name__)
    return render_template("error.html", code=400, title="Bad Request"), 400
