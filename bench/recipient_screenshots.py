"""Save 360 px screenshots of the recipient pages, for looking at them (not a test).

    .venv/bin/python bench/recipient_screenshots.py /work/wt/shots [port]

Serves a throw-away app on 127.0.0.1 with demo-like data and drives Debian's Chromium.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

from prefsvc import create_app
from prefsvc.extensions import db
from prefsvc.mail.tokens import Signer
from prefsvc.models import Contact, Language, Subscription, SubscriptionStatus, Topic
from prefsvc.settings import Settings


def main(out: Path, port: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    instance = Path(tempfile.mkdtemp(prefix="prefsvc-shots-"))
    settings = Settings(
        instance_path=instance,
        database_url=f"sqlite:///{instance / 'shots.db'}",
        broker_url=None,
        mail_url=f"maildir:{instance / 'outbox'}",
        base_url=f"http://127.0.0.1:{port}",
        secret_keys=("screenshot-key-0123456789",),
        suppression_key="screenshot-suppression-0123",
        mail_from="Portilog <nieuws@portilog.example>",
    )
    app = create_app(settings)
    signer = Signer(settings.secret_keys)
    with app.app_context():
        db.create_all()
        topics = [
            Topic(slug="haven", name="Haven & Logistiek", description="Opleidingen voor de haven."),
            Topic(slug="veiligheid", name="Veiligheid", description="VCA en brandpreventie."),
            Topic(slug="talen", name="Talen op de werkvloer"),
        ]
        db.session.add_all(topics)
        people = {}
        for lang, first in (("nl", "Ana"), ("fr", "Benoît"), ("en", "Chris")):
            contact = Contact(
                email=f"{first.lower()}@example.org".replace("î", "i"),
                first_name=first,
                last_name="Peeters",
                organisation="Haven NV",
                language=Language(lang),
                window_anchor=__import__("datetime").date(2026, 1, 1),
            )
            db.session.add(contact)
            db.session.flush()
            for topic in topics[:2]:
                db.session.add(
                    Subscription(contact=contact, topic=topic, status=SubscriptionStatus.SUBSCRIBED)
                )
            people[lang] = contact
        db.session.commit()
        from prefsvc.clock import now
        from prefsvc.recipient import requests

        erasure = requests.ask_for(
            db.session, people["nl"], "erasure", settings=settings, now=now()
        )
        db.session.commit()
        confirm = signer.signin_token(people["nl"].public_id, erasure.id, now=now())
        links = {
            lang: (
                signer.unsubscribe_token(c.public_id, topics[0].id),
                signer.preferences_token(c.public_id),
            )
            for lang, c in people.items()
        }

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 360, "height": 740}, locale="nl-BE")
            page = context.new_page()
            page.goto(f"{base}/u/{links['nl'][0]}")
            page.screenshot(path=str(out / "issue4-unsubscribe-nl.png"), full_page=True)
            page.goto(f"{base}/u/{links['fr'][0]}")
            page.get_by_role("button").first.click()
            page.screenshot(path=str(out / "issue4-confirmation-fr.png"), full_page=True)
            page.request.post(f"{base}/u/{links['en'][0]}", form={"List-Unsubscribe": "One-Click"})
            page.goto(f"{base}/p/{links['en'][1]}")
            page.locator("summary").click()
            page.screenshot(path=str(out / "issue4-preferences-en.png"), full_page=True)
            page.locator("#data-heading").scroll_into_view_if_needed()
            page.screenshot(path=str(out / "issue4-preferences-data-en.png"))
            page.goto(f"{base}/p/{confirm}")
            page.screenshot(path=str(out / "issue4-confirm-erasure-nl.png"))
            page.goto(f"{base}/p?lang=nl")
            page.screenshot(path=str(out / "issue4-signin-nl.png"), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    for shot in sorted(out.glob("issue4-*.png")):
        print(shot)


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "shots"),
        int(sys.argv[2]) if len(sys.argv) > 2 else 5004,
    )
