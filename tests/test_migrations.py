"""The Alembic history and the models describe the same schema, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from prefsvc import create_app
from prefsvc.extensions import db

pytestmark = pytest.mark.all_databases


@pytest.fixture
def empty_app(settings, backend, postgres_url_or_none):
    app = create_app(settings)
    with app.app_context():
        if backend == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        yield app
        if backend == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.engine.dispose()


@pytest.fixture
def postgres_url_or_none(backend, request):
    return request.getfixturevalue("postgres_url") if backend == "postgresql" else None


def test_migrations_create_exactly_the_models_schema(empty_app):
    upgrade()
    engine = create_engine(empty_app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    engine.dispose()
    assert diff == []


def test_migrations_leave_the_expected_tables(empty_app):
    upgrade()
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "contacts",
        "topics",
        "subscriptions",
        "consent_events",
        "campaigns",
        "campaign_variants",
        "deliveries",
        "suppressions",
        "alembic_version",
    } <= tables


def test_0007_gives_an_existing_topic_its_name_and_description_in_every_language(empty_app):
    upgrade(revision="0006")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO topics (slug, name, description, created_at)"
                " VALUES ('nieuws', 'Nieuws', 'Elke maand', CURRENT_TIMESTAMP)"
            )
        )
        topic_id = connection.execute(text("SELECT id FROM topics")).scalar_one()
        connection.execute(
            text(
                "INSERT INTO campaigns (topic_id, default_language, status, created_at)"
                " VALUES (:t, 'nl', 'draft', CURRENT_TIMESTAMP)"
            ),
            {"t": topic_id},
        )

    upgrade()

    with db.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM topics")).mappings().one()
        campaigns = connection.execute(text("SELECT topic_id FROM campaigns")).scalars().all()
    assert {k: row[k] for k in row if k.startswith(("name", "description"))} == {
        "name_nl": "Nieuws",
        "name_fr": "Nieuws",
        "name_en": "Nieuws",
        "description_nl": "Elke maand",
        "description_fr": "Elke maand",
        "description_en": "Elke maand",
    }
    assert (row["id"], campaigns) == (topic_id, [topic_id])  # nothing recreated or lost


def test_campaigns_from_before_the_fallback_keep_their_default_language_as_fallback(empty_app):
    upgrade(revision="0006")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO topics (id, slug, name, created_at) "
                "VALUES (1, 'nieuws', 'Nieuws', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO campaigns (id, topic_id, default_language, status, created_at) "
                "VALUES (1, 1, 'fr', 'sent', '2026-01-01 00:00:00')"
            )
        )
    upgrade()
    with db.engine.connect() as connection:
        fallback = connection.execute(text("SELECT fallback_language FROM campaigns")).scalar()
    assert fallback == "fr"


def test_0017_lets_the_ledger_record_bounces_and_keeps_its_rows_chain_and_guards(empty_app):
    from datetime import UTC, datetime

    from sqlalchemy.exc import DatabaseError

    from prefsvc.consent import changes as consent
    from prefsvc.consent import ledger
    from prefsvc.models import EventKind
    from tests.factories import make_contact

    now = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    upgrade(revision="0016")
    ana = make_contact(db.session, "ana@example.org")
    consent.record(db.session, ana, EventKind.RECTIFIED, channel="test", now=now)
    db.session.commit()

    upgrade()
    consent.record(db.session, ana, EventKind.BOUNCED, channel="bounce", now=now)
    db.session.commit()

    assert ledger.verify(db.session).ok
    assert ledger.verify(db.session).checked == 2
    with pytest.raises(DatabaseError), db.engine.begin() as connection:
        connection.execute(text("UPDATE consent_events SET channel = 'forged'"))
    db.session.remove()
