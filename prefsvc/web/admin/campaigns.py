"""Campaign pages: compose with a variant per language, preview, test-send, send, schedule, control.

Campaign HTML is only ever shown in a sandboxed frame served with its own strict CSP, so a
template cannot run script as staff.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from prefsvc import clock
from prefsvc.campaigns import audience, campaigns
from prefsvc.campaigns import control as campaign_control
from prefsvc.campaigns import preview as campaign_preview
from prefsvc.errors import CampaignStateError, InvalidInput, NotFound
from prefsvc.extensions import db
from prefsvc.mail import kit
from prefsvc.mail.limits import Limits
from prefsvc.mail.transport import DeliveryError
from prefsvc.models import LANGUAGES, Campaign, CampaignStatus
from prefsvc.people import topics
from prefsvc.queue import launcher
from prefsvc.settings import current_settings
from prefsvc.web.admin.blueprint import MARKETING, bp, local_time, record, requires
from prefsvc.web.admin.charts import chart

log = logging.getLogger(__name__)
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)


def _campaign(campaign_id: int) -> Campaign:
    try:
        return campaigns.get(db.session, campaign_id)
    except NotFound:
        abort(404)


def _composer_input() -> tuple[str, dict[str, tuple[str, str, str | None]], dict[str, dict]]:
    """Read the composer form: the topic, the filled-in languages, and the raw values.

    The fallback is read by ``_fallback_input``.
    """
    topic_slug = request.form.get("topic", "")
    variants: dict[str, tuple[str, str, str | None]] = {}
    raw: dict[str, dict] = {}
    for lang in LANGUAGES:
        subject = request.form.get(f"subject_{lang}", "").strip()
        html = request.form.get(f"html_{lang}", "")
        text = request.form.get(f"text_{lang}", "")
        preheader = request.form.get(f"preheader_{lang}", "").strip()
        raw[lang] = {"subject": subject, "html": html, "text": text, "preheader": preheader}
        if subject or html.strip() or text.strip():
            variants[lang] = (subject, html, text if text.strip() else None)
    return topic_slug, variants, raw


def _content_input() -> dict[str, Any]:
    """Read the composer's name, content format and preheaders (as ``campaigns.create`` takes)."""
    return {
        "name": request.form.get("name", "").strip(),
        "content_format": request.form.get("content_format", "html"),
        "preheaders": {
            lang: request.form.get(f"preheader_{lang}", "").strip() or None for lang in LANGUAGES
        },
    }


def _content_values(campaign: Campaign | None) -> dict[str, Any]:
    """The composer's name and format for a saved draft, or a new one's defaults (Markdown)."""
    if campaign is None:
        return {"name": "", "content_format": "markdown"}
    return {"name": campaign.name or "", "content_format": campaign.content_format.value}


def _track_clicks_input() -> bool:
    """Read the "count clicks per link" box (unticked boxes are not sent at all)."""
    return request.form.get("track_clicks") == "1"


def _fallback_input() -> str | None:
    """Read the fallback select: a language, "none", or empty for the first language."""
    return request.form.get("fallback", "").strip() or None


def _fallback_value(campaign: Campaign) -> str:
    """The fallback select's value for a saved draft."""
    language = campaign.fallback_language
    return language.value if language is not None else campaigns.NO_FALLBACK


def _variant_values(campaign: Campaign) -> dict[str, dict]:
    values = {lang: {"subject": "", "html": "", "text": "", "preheader": ""} for lang in LANGUAGES}
    for variant in campaign.variants:
        values[variant.language.value] = {
            "subject": variant.subject,
            "html": variant.html,
            "text": variant.text or "",
            "preheader": variant.preheader or "",
        }
    return values


def _composer(
    *,
    campaign: Campaign | None,
    topic_slug: str,
    values: dict[str, dict],
    fallback: str | None,
    problems: dict[tuple[str | None, str], str] | None = None,
    status: int = 200,
    content: dict[str, Any] | None = None,
):
    extra: dict[str, Any] = {"content": content or _content_values(campaign)}
    if campaign is not None:
        settings = current_settings()
        extra.update(_audience(campaign))
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
        fallback=fallback or "",
        track_clicks=_track_clicks_input()
        if request.method == "POST"
        else bool(campaign and campaign.track_clicks),
        problems=problems or {},
        **extra,
    )
    return page, status


def _checked_composer_input(campaign: Campaign | None) -> tuple[str, dict, Any, Any]:
    """Read the composer's form; with every problem found, also the page that shows them all."""
    topic_slug, variants, raw = _composer_input()
    fallback = _fallback_input()
    content = _content_input()
    problems = campaigns.variant_problems(
        db.session,
        topic_slug=topic_slug,
        variants=variants,
        fallback=fallback,
        content_format=content["content_format"],
        preheaders=content["preheaders"],
        bounds=Limits.from_settings(current_settings()),
    )
    refused = None
    if problems:
        refused = _composer(
            campaign=campaign,
            topic_slug=topic_slug,
            values=raw,
            fallback=fallback,
            problems=problems,
            status=422,
            content=content,
        )
    return topic_slug, variants, fallback, refused


def _audience(campaign: Campaign) -> dict[str, Any]:
    """Today's audience of a draft, and who of it gets which variant."""
    today, years = clock.today(), current_settings().marketing_window_years
    return {
        "count": audience.count(db.session, campaign, on=today, years=years),
        "by_language": audience.by_language(db.session, campaign, on=today, years=years),
    }


@bp.get("/campaigns/")
@requires(MARKETING)
def campaign_list():
    archived = request.args.get("archived") == "1"
    return render_template(
        "admin/campaigns.html",
        campaigns=campaigns.recent(db.session, limit=100, archived=archived),
        archived=archived,
    )


@bp.route("/campaigns/new", methods=["GET", "POST"])
@requires(MARKETING)
def compose():
    if request.method == "GET":
        values = {
            lang: {"subject": "", "html": "", "text": "", "preheader": ""} for lang in LANGUAGES
        }
        return _composer(campaign=None, topic_slug="", values=values, fallback=None)
    topic_slug, variants, fallback, refused = _checked_composer_input(None)
    if refused is not None:
        return refused
    campaign = campaigns.create(
        db.session,
        topic_slug=topic_slug,
        variants=variants,
        fallback=fallback,
        bounds=Limits.from_settings(current_settings()),
        track_clicks=_track_clicks_input(),
        **_content_input(),
    )
    record("campaign.create", f"campaign:{campaign.id}", languages=sorted(variants))
    db.session.commit()
    flash(_("Draft saved. Check the preview, send a test, then send or schedule it."), "ok")
    return redirect(url_for("admin.campaign", campaign_id=campaign.id))


@bp.get("/campaigns/<int:campaign_id>")
@requires(MARKETING)
def campaign(campaign_id: int):
    item = _campaign(campaign_id)
    if item.status is CampaignStatus.DRAFT:
        return _composer(
            campaign=item,
            topic_slug=item.topic.slug,
            values=_variant_values(item),
            fallback=_fallback_value(item),
        )
    return _campaign_page(item)


@bp.post("/campaigns/<int:campaign_id>")
@requires(MARKETING)
def revise(campaign_id: int):
    item = _campaign(campaign_id)
    if item.status is not CampaignStatus.DRAFT:
        abort(409)
    topic_slug, variants, fallback, refused = _checked_composer_input(item)
    if refused is not None:
        return refused
    campaigns.revise(
        db.session,
        item,
        topic_slug=topic_slug,
        variants=variants,
        fallback=fallback,
        **_content_input(),
        bounds=Limits.from_settings(current_settings()),
        track_clicks=_track_clicks_input(),
    )
    record("campaign.revise", f"campaign:{item.id}", languages=sorted(variants))
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
        record("campaign.test_send", f"campaign:{item.id}", language=language)
        db.session.commit()
        flash(_("Test copy sent."), "ok")
    finally:
        kit.close_thread_resources()
    return redirect(url_for("admin.campaign", campaign_id=item.id) + "#test-send")


@bp.get("/campaigns/<int:campaign_id>/send")
@requires(MARKETING)
def confirm_send(campaign_id: int):
    """Ask before sending: repeat the audience, its languages and who is left out."""
    item = _campaign(campaign_id)
    if item.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        flash(_("This campaign has already been sent or scheduled."), "error")
        return redirect(url_for("admin.campaign", campaign_id=item.id))
    return render_template("admin/confirm_send.html", campaign=item, **_audience(item))


@bp.post("/campaigns/<int:campaign_id>/send")
@requires(MARKETING)
def send(campaign_id: int):
    """Send after the confirmation page (``confirm_send``), whose form posts here."""
    item = _campaign(campaign_id)
    try:
        size = launcher.launch(item.id)
    except CampaignStateError:
        db.session.rollback()
        flash(_("This campaign has already been sent or scheduled."), "error")
        return redirect(url_for("admin.campaign", campaign_id=item.id))
    record("campaign.send", f"campaign:{item.id}", audience=size)
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
    record("campaign.schedule", f"campaign:{item.id}", at=at.isoformat())
    db.session.commit()
    flash(_("Scheduled for %(when)s.", when=local_time(at)), "ok")
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
    record(f"campaign.{action}", f"campaign:{item.id}")
    db.session.commit()
    if action == "resume":
        launcher.requeue(item.id)
    return redirect(url_for("admin.campaign", campaign_id=item.id))


@bp.post("/campaigns/<int:campaign_id>/duplicate")
@requires(MARKETING)
def duplicate(campaign_id: int):
    """Copy any campaign into a new draft and open it in the composer."""
    copy = campaigns.duplicate(db.session, _campaign(campaign_id))
    record("campaign.duplicate", f"campaign:{copy.id}", source=campaign_id)
    db.session.commit()
    flash(_("Copied into a new draft. Change what you need, then send it."), "ok")
    return redirect(url_for("admin.campaign", campaign_id=copy.id))


@bp.post("/campaigns/<int:campaign_id>/delete")
@requires(MARKETING)
def delete(campaign_id: int):
    """Delete a draft (the button asks first); anything scheduled or sent is kept."""
    item = _campaign(campaign_id)
    try:
        campaigns.delete_draft(db.session, item)
    except CampaignStateError:
        db.session.rollback()
        flash(_("Only a draft can be deleted; archive a sent campaign instead."), "error")
        return redirect(url_for("admin.campaign", campaign_id=campaign_id))
    record("campaign.delete", f"campaign:{campaign_id}")
    db.session.commit()
    flash(_("Draft %(id)s deleted.", id=campaign_id), "ok")
    return redirect(url_for("admin.campaign_list"))


@bp.post("/campaigns/<int:campaign_id>/<any(archive, unarchive):action>")
@requires(MARKETING)
def archive(campaign_id: int, action: str):
    """Put a sent or cancelled campaign away from the default list, or bring it back."""
    item = _campaign(campaign_id)
    try:
        if action == "archive":
            campaigns.archive(db.session, item, now=clock.now())
        else:
            campaigns.unarchive(db.session, item)
    except CampaignStateError:
        db.session.rollback()
        flash(_("Only a sent or cancelled campaign can be archived."), "error")
        return redirect(url_for("admin.campaign", campaign_id=campaign_id))
    record(f"campaign.{action}", f"campaign:{campaign_id}")
    db.session.commit()
    if action == "archive":
        flash(_("Campaign %(id)s archived.", id=campaign_id), "ok")
    else:
        flash(_("Campaign %(id)s is back in the list.", id=campaign_id), "ok")
    return redirect(url_for("admin.campaign", campaign_id=campaign_id))


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


def _content_previews(item: Campaign) -> dict[str, Any]:
    """Each variant as a sample reader gets it; None where it no longer renders (shown so)."""
    settings = current_settings()
    previews: dict[str, Any] = {}
    for variant in item.variants:
        lang = variant.language.value
        try:
            previews[lang] = campaign_preview.preview(
                db.session, item, settings=settings, language=lang
            )
        except InvalidInput:
            previews[lang] = None
    return previews


def _campaign_page(item: Campaign):
    figures = _figures(item)
    points = campaigns.timeline(db.session, item)
    span = (points[0][0], points[-1][0]) if points else None
    charts = {
        kind: chart([when for when, what in points if what == kind], span)
        for kind in ("sent", "unsubscribed")
    }
    previews = _content_previews(item)
    return render_template(
        "admin/campaign.html",
        campaign=item,
        figures=figures,
        charts=charts,
        timezone_name=str(current_settings().timezone),
        live=item.status is CampaignStatus.SENDING,
        previews=previews,
    )


@bp.get("/campaigns/<int:campaign_id>/progress.json")
@requires(MARKETING)
def progress(campaign_id: int):
    """The live figures the campaign page polls while sending."""
    item = _campaign(campaign_id)
    figures = _figures(item)
    keys = ("status", "audience", "queued", "sending", "sent", "failed", "done", "percent")
    return jsonify({key: figures[key] for key in keys} | {"unsubscribes": figures["unsubscribes"]})
