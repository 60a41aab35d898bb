"""Demo data: about fifty contacts in nl/fr/en, two topics and a newsletter in three languages.

Loaded through the same import and campaign functions as real data, so the demo shows the
real behaviour (including who is excluded and why).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session

from prefsvc.access import staff
from prefsvc.campaigns import campaigns
from prefsvc.consent import changes as consent
from prefsvc.consent.window import add_years
from prefsvc.models import AdminUser, Campaign, Contact, StaffRole, Topic
from prefsvc.people import importing, topics
from prefsvc.people.importing import vocabulary
from prefsvc.resources import resource_dir

# slug, then the name and description per language
TOPICS = (
    (
        "nieuwe-opleidingen",
        {
            "nl": "Nieuwe opleidingen",
            "fr": "Nouvelles formations",
            "en": "New trainings",
        },
        {
            "nl": "Nieuwe opleidingen in de haven van Antwerpen, elke maand.",
            "fr": "Les nouvelles formations dans le port d'Anvers, chaque mois.",
            "en": "New trainings in the port of Antwerp, every month.",
        },
    ),
    (
        "promoties",
        {"nl": "Promoties", "fr": "Promotions", "en": "Special offers"},
        {
            "nl": "Kortingen en vroegboekvoordelen.",
            "fr": "Réductions et offres pour les inscriptions anticipées.",
            "en": "Discounts and early-bird offers.",
        },
    ),
)
FIRST = {
    "nl": [
        "Ana",
        "Bram",
        "Charlotte",
        "Dries",
        "Elke",
        "Femke",
        "Geert",
        "Hanne",
        "Jens",
        "Lotte",
        "Maarten",
        "Nele",
        "Pieter",
        "Sofie",
        "Tom",
        "Wout",
        "Lien",
    ],
    "fr": [
        "Amélie",
        "Benoît",
        "Céline",
        "Damien",
        "Élodie",
        "François",
        "Gaëlle",
        "Hélène",
        "Joël",
        "Léa",
        "Marc",
        "Noémie",
        "Océane",
        "Pascal",
        "Sébastien",
        "Zoé",
    ],
    "en": [
        "Alice",
        "Ben",
        "Chloe",
        "David",
        "Emma",
        "Frank",
        "Grace",
        "Harry",
        "Isla",
        "Jack",
        "Kate",
        "Liam",
        "Mia",
        "Noah",
        "Olivia",
        "Sam",
        "Ruby",
    ],
}
LAST = ["Peeters", "Janssens", "Maes", "Jacobs", "Dubois", "Lambert", "Martin", "Smith", "Claes"]
ORGS = ["Haven Logistiek NV", "Terminal Services", "Chemie Antwerpen", "Port Training Partners"]
ROLES = ["trainee", "customer", "teacher"]
CONTENT = {
    "nl": (
        "Nieuwe opleidingen in de haven",
        "Nieuw: opleidingen voor het voorjaar",
        "Beste",
        "Dit voorjaar starten deze opleidingen:",
        "Bekijk het aanbod",
        [
            ("Veilig werken met heftrucks", "Twee dagen, Antwerpen-Noord."),
            ("VCA Basis", "Eén dag, met examen."),
        ],
    ),
    "fr": (
        "Nouvelles formations au port",
        "Nouveau : les formations du printemps",
        "Bonjour",
        "Ces formations commencent ce printemps :",
        "Voir l'offre",
        [
            ("Travailler en sécurité avec un chariot élévateur", "Deux jours, Anvers-Nord."),
            ("VCA Base", "Un jour, examen compris."),
        ],
    ),
    "en": (
        "New trainings in the port",
        "New: spring trainings",
        "Dear",
        "These trainings start this spring:",
        "See what's on",
        [
            ("Safe forklift operation", "Two days, Antwerp North."),
            ("VCA Basic", "One day, exam included."),
        ],
    ),
}


def already_loaded(session: Session) -> bool:
    return session.scalar(select(Topic.id).where(Topic.slug == TOPICS[0][0])) is not None


def contacts_csv(today: date) -> bytes:
    """Build the demo contacts as the CSV a training manager would send."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(vocabulary.FIELDS)
    n = 0
    for language, names in FIRST.items():
        for i, first in enumerate(names):
            n += 1
            last = LAST[n % len(LAST)]
            years_ago = 6 if n % 12 == 0 else (n % 5)  # every 12th: window ended
            basis_date = add_years(today, -years_ago).replace(day=1)
            topic_list = "nieuwe-opleidingen|promoties" if i % 2 else "nieuwe-opleidingen"
            ascii_first = first.encode("ascii", "ignore").decode().lower() or "contact"
            writer.writerow(
                [
                    f"{ascii_first}.{last.lower()}{n}@example.org",
                    first,
                    last,
                    language,
                    ORGS[n % len(ORGS)],
                    ROLES[n % len(ROLES)],
                    topic_list,
                    ("training", "customer", "consent")[n % 3],
                    basis_date.isoformat(),
                ]
            )
    return out.getvalue().encode("utf-8")


PREHEADERS = {
    "nl": "Heftrucks en VCA: twee opleidingen die dit voorjaar starten.",
    "fr": "Chariots élévateurs et VCA : deux formations qui commencent ce printemps.",
    "en": "Forklifts and VCA: two trainings starting this spring.",
}


def newsletter_variants() -> dict[str, tuple[str, str, None]]:
    """Fill the demo newsletter's per-language copy (Markdown); ``{{ … }}`` stays for each
    recipient."""
    source = (resource_dir("templates") / "demo" / "newsletter.md").read_text(encoding="utf-8")
    copy_env = Environment(
        variable_start_string="[[ ",
        variable_end_string=" ]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        autoescape=False,
        keep_trailing_newline=True,
    )
    template = copy_env.from_string(source)
    variants = {}
    for language, (heading, subject, greeting, intro, cta, courses) in CONTENT.items():
        markdown = template.render(
            heading=heading, greeting=greeting, intro=intro, cta=cta, courses=courses
        )
        variants[language] = (subject, markdown, None)
    return variants


def load(session: Session, *, now: datetime, today: date, suppression_key: str) -> Campaign:
    """Create the topics, import the contacts, unsubscribe two of them; return a draft campaign."""
    for slug, names, descriptions in TOPICS:
        topics.create(session, slug, names=names, descriptions=descriptions)
    importing.import_csv(
        session,
        contacts_csv(today),
        filename="demo-contacts.csv",
        now=now,
        today=today,
        suppression_key=suppression_key,
        source="demo",
    )
    topic = topics.by_slug(session, TOPICS[0][0])
    for contact in session.scalars(select(Contact).order_by(Contact.id).limit(2)):
        consent.unsubscribe(session, contact, topic, channel="demo", now=now, today=today)
    add_crowd(session, now=now, today=today)
    return campaigns.create(
        session,
        topic_slug=TOPICS[0][0],
        variants=newsletter_variants(),
        content_format="markdown",
        preheaders=PREHEADERS,
        name="Voorjaar / printemps / spring",
    )


DEMO_ADMIN = ("demo", "demo")


def ensure_admin(session: Session, *, now: datetime) -> tuple[str, str]:
    """Create the demo's admin account (a local demo only) unless it exists; return its login."""
    username, password = DEMO_ADMIN
    if session.scalar(select(AdminUser.id).where(AdminUser.username == username)) is None:
        staff.create(session, username, password, StaffRole.ADMIN, now=now)
    return DEMO_ADMIN


CROWD = 10_000


def add_crowd(session: Session, *, now: datetime, today: date, count: int = CROWD) -> int:
    """Add ``count`` generated contacts, so the contact list can be tried at a real size.

    One bulk INSERT per table (about a second for 10,000 on SQLite), not the import: these
    people exist to be searched, filtered and paged. They follow only ``promoties`` (the demo
    campaign goes to ``nieuwe-opleidingen``), a few left it or bounced, their windows are
    spread over the last five years and none has ended, and the ledger has no history for them.
    """
    from datetime import timedelta

    from sqlalchemy import insert

    from prefsvc.models import Language, Subscription, SubscriptionStatus

    offers = topics.by_slug(session, TOPICS[1][0])
    languages = ["nl"] * 6 + ["fr"] * 3 + ["en"]
    rows = []
    for n in range(count):
        language = languages[n % len(languages)]
        first = FIRST[language][n % len(FIRST[language])]
        last = LAST[(n // 7) % len(LAST)]
        ascii_first = first.encode("ascii", "ignore").decode().lower() or "contact"
        anchor = today - timedelta(days=(n * 37) % (5 * 365))
        rows.append(
            {
                "email": f"{ascii_first}.{last.lower()}.{n}@crowd.example.org",
                "first_name": first,
                "last_name": last,
                "organisation": ORGS[n % len(ORGS)],
                "language": Language(language),
                "role": ROLES[n % len(ROLES)],
                "basis": ("training", "customer", "consent")[n % 3],
                "basis_date": anchor,
                "window_anchor": anchor,
                "bounced_at": now if n % 97 == 5 else None,
                "bounce_code": "5.1.1" if n % 97 == 5 else None,
                "created_at": now - timedelta(minutes=count - n),
            }
        )
    ids = session.scalars(insert(Contact).returning(Contact.id, sort_by_parameter_order=True), rows)
    session.execute(
        insert(Subscription),
        [
            {
                "contact_id": contact_id,
                "topic_id": offers.id,
                "status": (
                    SubscriptionStatus.UNSUBSCRIBED if n % 7 == 3 else SubscriptionStatus.SUBSCRIBED
                ),
            }
            for n, contact_id in enumerate(ids.all())
            if n % 11 != 4
        ],
    )
    return count
