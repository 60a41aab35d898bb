"""Screenshot every admin page at 1280 and 360 px and report which ones scroll sideways.

    .venv/bin/python bench/admin_screenshots.py [OUT_DIR] [--port 5006] [--locale nl-BE]

Loads the demo's data (the ``prefsvc demo`` steps: migrations, 10,000 contacts, the trilingual
newsletter sent through the in-process queue, a bounce and a complaint, the webhook receiver)
into a throw-away instance, adds a draft, a privacy request and a suppressed address, serves
the app on 127.0.0.1 and signs in with Debian's Chromium. For each page and width it prints the
HTTP status and whether the page is wider than the window
(``document.scrollingElement.scrollWidth > innerWidth``), naming the widest elements when it
is; screenshots (full page) go to OUT_DIR (default /tmp/prefsvc-screens). Not a test: the
suite's check is tests/e2e/test_admin_phone.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from prefsvc import clock, create_app, demo
from prefsvc.extensions import db
from prefsvc.settings import Settings

WIDTHS = {"1280": {"width": 1280, "height": 900}, "360": {"width": 360, "height": 740}}
# What sticks out: the outermost elements whose right edge passes the window's.
CULPRITS = """() => {
  const w = window.innerWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > w + 0.5 && r.width > 0) {
      let p = el.parentElement, inside = false;
      while (p && p !== document.body) {
        if (p.getBoundingClientRect().right > w + 0.5) { inside = true; break; }
        const o = getComputedStyle(p).overflowX;
        if (o === 'auto' || o === 'scroll' || o === 'hidden') { break; }
        p = p.parentElement;
      }
      if (!inside) {
        const cls = typeof el.className === 'string' && el.className.trim()
          ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
        out.push(el.tagName.toLowerCase() + cls + ' right=' + Math.round(r.right));
      }
    }
  }
  return out.slice(0, 4);
}"""


def prepare(settings: Settings, receiver_port: int) -> dict[str, object]:
    """Load the demo's data and a few more things every admin page can show; return ids."""
    from flask import current_app
    from flask_migrate import upgrade
    from sqlalchemy import select

    from prefsvc.campaigns import campaigns
    from prefsvc.consent import changes as consent
    from prefsvc.consent import suppression
    from prefsvc.inbound import demo_reports
    from prefsvc.models import Campaign, Contact, InboundMessage, SuppressionReason, Topic
    from prefsvc.privacy import register
    from prefsvc.queue import broker
    from prefsvc.queue.launcher import launch
    from prefsvc.webhooks import demo_receiver

    session = db.session
    upgrade(directory=current_app.extensions["migrate"].directory)
    sent = demo.load(
        session, now=clock.now(), today=clock.today(), suppression_key=settings.suppression_key
    )
    session.commit()
    launch(sent.id)
    broker.queue().join(timeout_ms=300_000)
    demo_reports.feed(session, settings, sent.id, now=clock.now(), today=clock.today())
    demo.ensure_admin(session, now=clock.now())
    endpoint = demo_receiver.register(
        session, f"http://127.0.0.1:{receiver_port}/", now=clock.now()
    )
    demo_receiver.start(endpoint.secret, "127.0.0.1", receiver_port)
    # one change after the endpoint exists, so its delivery log has a line
    leaver = session.scalar(select(Contact).where(Contact.language == "nl").order_by(Contact.id))
    topic = session.scalar(select(Topic).where(Topic.slug == "promoties"))
    consent.unsubscribe(
        session, leaver, topic, channel="admin", now=clock.now(), today=clock.today()
    )
    draft = campaigns.duplicate(session, session.get(Campaign, sent.id))
    reader = session.scalar(select(Contact).where(Contact.language == "fr").order_by(Contact.id))
    register.open_request(
        session, "access", now=clock.now(), settings=settings, contact=reader, note="par courrier"
    )
    suppression.add(
        session,
        settings.suppression_key,
        "a.very.long.address.that.does.not.fit@subdomain.example-organisation.org",
        SuppressionReason.COMPLAINT,
    )
    session.commit()
    broker.queue().join(timeout_ms=60_000)
    report = session.scalar(select(InboundMessage).where(InboundMessage.contact_id.is_not(None)))
    assert report is not None, "the demo feeds a bounce and a complaint"
    return {
        "sent": sent.id,
        "draft": draft.id,
        "contact": session.get(Contact, report.contact_id).public_id,
        "report": report.id,
        "webhook": endpoint.id,
    }


def pages(ids: dict[str, object]) -> list[tuple[str, str]]:
    """Every admin page a marketer or privacy officer opens, with demo-like data on it."""
    c, s, d = ids["contact"], ids["sent"], ids["draft"]
    return [
        ("dashboard", "/admin/"),
        ("campaigns", "/admin/campaigns/"),
        ("campaigns-archive", "/admin/campaigns/?archived=1"),
        ("campaign-draft", f"/admin/campaigns/{d}"),
        ("campaign-sent", f"/admin/campaigns/{s}"),
        ("campaign-by-language", f"/admin/campaigns/{s}#h-figures"),
        ("campaign-preview-fr", f"/admin/campaigns/{s}/preview/fr"),
        ("composer", "/admin/campaigns/new"),
        ("confirm-send", f"/admin/campaigns/{d}/send"),
        ("contacts", "/admin/contacts/"),
        (
            "contacts-filtered",
            "/admin/contacts/?topic=promoties&language=fr&status=subscribed&sort=name",
        ),
        ("contacts-window", "/admin/contacts/?window_days=90&sort=window"),
        ("contacts-bounced", "/admin/contacts/?bounced=1"),
        ("contact", f"/admin/contacts/{c}"),
        ("contact-report", f"/admin/contacts/{c}/reports/{ids['report']}"),
        ("topics", "/admin/topics/"),
        ("topic", "/admin/topics/nieuwe-opleidingen"),
        ("suppression", "/admin/suppression"),
        ("rights", "/admin/rights"),
        ("webhooks", "/admin/webhooks"),
        ("webhook-log", f"/admin/webhooks/{ids['webhook']}"),
        ("import", "/admin/import"),
        ("outbox", "/outbox/"),
        ("api-docs", "/api/v1/docs"),
    ]


def visit(base: str, ids: dict[str, object], out: Path, locale: str) -> int:
    """Visit every page at both widths; print one line each and return how many overflow."""
    from playwright.sync_api import sync_playwright

    overflowing = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport=WIDTHS["1280"], locale=locale)
        page = context.new_page()
        page.goto(f"{base}/admin/login")
        page.locator("#username").fill("demo")
        page.locator("#password").fill("demo")
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{base}/admin/")
        outbox = page.locator("main a[href^='/outbox/']").first
        listing = pages(ids)
        page.goto(f"{base}/outbox/")
        if outbox.count():
            listing.append(("outbox-mail", outbox.get_attribute("href")))
        print(f"{'page':<22} {'width':>5} {'status':>6}  overflow")
        for name, path in listing:
            for label, viewport in WIDTHS.items():
                page.set_viewport_size(viewport)
                response = page.goto(f"{base}{path.split('#')[0]}")
                page.wait_for_load_state("load")
                wide = page.evaluate(
                    "document.scrollingElement.scrollWidth > window.innerWidth"
                    " ? document.scrollingElement.scrollWidth : 0"
                )
                shot = str(out / f"{name}-{label}.png")
                if "#" in path:  # one section of a page: its card alone
                    page.locator(f"section:has(#{path.split('#')[1]})").screenshot(path=shot)
                else:
                    page.screenshot(path=shot, full_page=True)
                status = response.status if response else "-"
                note = f"yes ({wide} px) {', '.join(page.evaluate(CULPRITS))}" if wide else "no"
                overflowing += bool(wide)
                print(f"{name:<22} {label:>5} {status:>6}  {note}", flush=True)
        browser.close()
    total = len(listing) * len(WIDTHS)
    print(f"\n{total} page views ({len(listing)} pages x {len(WIDTHS)} widths), ", end="")
    print(f"{overflowing} scroll sideways; screenshots in {out}")
    return overflowing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="/tmp/prefsvc-screens", type=Path)
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--locale", default="nl-BE", help="the browser's language, e.g. fr-BE")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    instance = Path(tempfile.mkdtemp(prefix="prefsvc-admin-shots-"))
    base = f"http://127.0.0.1:{args.port}"
    settings = Settings.from_env(env={}, instance_path=instance).with_(base_url=base)
    app = create_app(settings)
    started = time.perf_counter()
    with app.app_context():
        ids = prepare(settings, args.port + 1)
    print(f"demo data ready in {time.perf_counter() - started:.1f} s ({instance})")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per page, not per request
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        overflowing = visit(base, ids, args.out, args.locale)
    finally:
        server.shutdown()
    return 1 if overflowing else 0


if __name__ == "__main__":
    sys.exit(main())
