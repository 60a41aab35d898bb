"""Campaigns: compose with language variants, preview, test-send, send, schedule, control."""

from __future__ import annotations

from prefsvc import clock
from prefsvc.campaigns import campaigns
from prefsvc.campaigns import control as campaign_control
from prefsvc.campaigns import preview as campaign_preview
from prefsvc.errors import InvalidInput
from prefsvc.extensions import db
from prefsvc.mail import kit
from prefsvc.mail.limits import Limits
from prefsvc.people import contacts
from prefsvc.queue import launcher
from prefsvc.settings import current_settings
from prefsvc.web.api import auth, blueprint
from prefsvc.web.api import schemas as s

bp = blueprint("campaigns", "Mailings to a topic's subscribers.", "/campaigns")
blueprints = [bp]
CAMPAIGN = "/<int(min=1, max=2147483647):campaign_id>"


def _report(campaign) -> dict:
    return campaigns.stats(
        db.session,
        campaign,
        today=clock.today(),
        years=current_settings().marketing_window_years,
    )


@bp.route("", methods=["GET"])
@auth.requires(bp, "campaigns")
@bp.arguments(s.CampaignQuery, location="query")
@bp.response(200, s.CampaignPageOut)
def list_campaigns(query):
    """List campaigns, newest first, with their figures."""
    shelf = {"false": False, "true": True, "all": None}[query.pop("archived", "false")]
    rows, total = campaigns.search(db.session, archived=shelf, **query)
    return {
        "items": [_report(c) for c in rows],
        "total": total,
        "page": query["page"],
        "per_page": query["per_page"],
    }


@bp.route("", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.arguments(s.CampaignIn)
@bp.response(201, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
def create_campaign(body):
    """Create a draft campaign with one variant per language (Jinja2, checked now)."""
    campaign = campaigns.create(
        db.session,
        topic_slug=body["topic"],
        variants={
            v["language"]: (v["subject"], v["html"], v.get("text")) for v in body["variants"]
        },
        default_language=body.get("default_language"),
        fallback=(body["fallback"] or campaigns.NO_FALLBACK) if "fallback" in body else None,
        content_format=body["content_format"],
        preheaders={v["language"]: v.get("preheader") for v in body["variants"]},
        name=body.get("name"),
        bounds=Limits.from_settings(current_settings()),
        track_clicks=body.get("track_clicks", False),
    )
    auth.record("campaign.create", f"campaign:{campaign.id}", topic=body["topic"])
    db.session.commit()
    return _report(campaign)


@bp.route(CAMPAIGN, methods=["GET"])
@auth.requires(bp, "campaigns")
@bp.response(200, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
def get_campaign(campaign_id: int):
    """Show a campaign's status and figures: audience, sent, failed, excluded, unsubscribes."""
    return _report(campaigns.get(db.session, campaign_id))


@bp.route(CAMPAIGN, methods=["DELETE"])
@auth.requires(bp, "campaigns")
@bp.response(204)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
def delete_campaign(campaign_id: int):
    """Delete a draft; a campaign that was scheduled or sent is kept (409): archive it."""
    campaign = campaigns.get(db.session, campaign_id)
    campaigns.delete_draft(db.session, campaign)
    auth.record("campaign.delete", f"campaign:{campaign_id}")
    db.session.commit()
    return ""


@bp.route(f"{CAMPAIGN}/duplicate", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.response(201, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
def duplicate(campaign_id: int):
    """Copy a campaign into a new draft: same topic, languages, fallback and content."""
    copy = campaigns.duplicate(db.session, campaigns.get(db.session, campaign_id))
    auth.record("campaign.duplicate", f"campaign:{copy.id}", source=campaign_id)
    db.session.commit()
    return _report(copy)


@bp.route(f"{CAMPAIGN}/archive", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.arguments(s.ArchiveIn)
@bp.response(200, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
def archive(body, campaign_id: int):
    """Archive a sent or cancelled campaign (hidden from the default list), or undo that."""
    campaign = campaigns.get(db.session, campaign_id)
    if body["archived"]:
        campaigns.archive(db.session, campaign, now=clock.now())
    else:
        campaigns.unarchive(db.session, campaign)
    auth.record(
        "campaign.archive" if body["archived"] else "campaign.unarchive", f"campaign:{campaign_id}"
    )
    db.session.commit()
    return _report(campaign)


@bp.route(f"{CAMPAIGN}/preview", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.arguments(s.PreviewIn)
@bp.response(200, s.PreviewOut)
@bp.alt_response(404, response="NOT_FOUND")
def preview(body, campaign_id: int):
    """Render the campaign as one contact (by public id) or a sample person would get it."""
    campaign = campaigns.get(db.session, campaign_id)
    to = None
    if body.get("contact"):
        to = contacts.get_public(db.session, body["contact"]).email
    rendered = campaign_preview.preview(
        db.session, campaign, settings=current_settings(), language=body.get("language"), to=to
    )
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


@bp.route(f"{CAMPAIGN}/test-send", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.arguments(s.TestSendIn)
@bp.response(202, s.TestSendOut)
@bp.alt_response(404, response="NOT_FOUND")
def test_send(body, campaign_id: int):
    """Send one preview copy to an address, subject prefixed [TEST]; not counted."""
    settings = current_settings()
    campaign = campaigns.get(db.session, campaign_id)
    try:
        to = contacts.normalise_email(body["to"])
    except InvalidInput as exc:
        raise InvalidInput("to", exc.reason) from None
    try:
        message_id = campaign_preview.test_send(
            db.session,
            campaign,
            to=to,
            language=body.get("language"),
            settings=settings,
            now=clock.now(),
            transport=kit.transport(settings),
        )
    finally:
        kit.close_thread_resources()
    auth.record("campaign.test_send", f"campaign:{campaign.id}", language=body.get("language"))
    db.session.commit()
    return {"message_id": message_id}


@bp.route(f"{CAMPAIGN}/send", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.response(202, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
def send(campaign_id: int):
    """Fan the campaign out and queue it now (a draft or scheduled campaign)."""
    campaign = campaigns.get(db.session, campaign_id)
    auth.record("campaign.send", f"campaign:{campaign.id}")
    launcher.launch(campaign_id)  # commits the fan-out and the audit entry together
    return _report(campaigns.get(db.session, campaign_id))


@bp.route(f"{CAMPAIGN}/schedule", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.arguments(s.ScheduleIn)
@bp.response(200, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
def schedule(body, campaign_id: int):
    """Schedule a draft for a time (in TIMEZONE unless it has an offset); the scheduler sends it."""
    at = body["at"]
    if at.tzinfo is None:
        at = at.replace(tzinfo=current_settings().timezone)
    campaign = campaigns.get(db.session, campaign_id)
    campaign_control.schedule(db.session, campaign, at=at, now=clock.now())
    auth.record("campaign.schedule", f"campaign:{campaign.id}", at=at.isoformat())
    db.session.commit()
    return _report(campaign)


@bp.route(f"{CAMPAIGN}/pause", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.response(200, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
def pause(campaign_id: int):
    """Pause a sending campaign: deliveries already with a worker finish, the rest wait."""
    campaign = campaigns.get(db.session, campaign_id)
    campaign_control.pause(db.session, campaign)
    auth.record("campaign.pause", f"campaign:{campaign.id}")
    db.session.commit()
    return _report(campaign)


@bp.route(f"{CAMPAIGN}/resume", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.response(200, s.CampaignOut)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
def resume(campaign_id: int):
    """Resume a paused campaign and queue its remaining deliveries."""
    campaign = campaigns.get(db.session, campaign_id)
    campaign_control.resume(db.session, campaign)
    auth.record("campaign.resume", f"campaign:{campaign.id}")
    db.session.commit()
    launcher.requeue(campaign_id)
    return _report(campaign)


@bp.route(f"{CAMPAIGN}/cancel", methods=["POST"])
@auth.requires(bp, "campaigns")
@bp.response(200, s.CancelOut)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
def cancel(campaign_id: int):
    """Cancel a campaign for good; what is still queued is not sent."""
    campaign = campaigns.get(db.session, campaign_id)
    dropped = campaign_control.cancel(db.session, campaign, now=clock.now())
    auth.record("campaign.cancel", f"campaign:{campaign.id}", dropped=dropped)
    db.session.commit()
    return {**_report(campaign), "dropped": dropped}
