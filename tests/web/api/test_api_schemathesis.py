"""Property-based run of every API operation against the OpenAPI spec (schemathesis).

Each operation gets a bounded number of generated requests, valid and invalid, sent with an
admin key to the WSGI app on SQLite; every answer must be no server error and match the
documented schema of its status code.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from prefsvc import create_app
from prefsvc.access import apikeys
from prefsvc.settings import Settings
from tests.factories import make_campaign, make_contact, make_topic

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def admin_key(app, session, clock):
    _, key = apikeys.create(session, "schemathesis", "admin", now=clock())
    topic = make_topic(session, "nieuws", "Nieuws")
    make_contact(session, "ana@example.org", topics=[topic])
    make_campaign(session, topic)
    session.commit()
    return key


def _spec() -> dict:
    """Return the spec the app serves; it depends on the code only, not on the data."""
    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        app = create_app(
            Settings(
                instance_path=instance,
                database_url=f"sqlite:///{instance / 'spec.db'}",
                broker_url=None,
                mail_url=f"maildir:{instance / 'outbox'}",
                base_url="https://news.example.org",
                secret_keys=("spec-key-0123456789",),
                suppression_key="spec-suppression-key-0123",
                mail_from="News <news@example.org>",
                testing=True,
            )
        )
        return app.test_client().get("/api/v1/openapi.json").get_json()


schema = schemathesis.openapi.from_dict(_spec())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_answers_within_its_schema(case, app, admin_key):
    case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {admin_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
