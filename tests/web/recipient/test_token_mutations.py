"""No mutation of a valid link works: every one gets the same 404 as garbage, over HTTP."""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from prefsvc.mail.tokens import Signer
from prefsvc.models import ConsentEvent
from tests.factories import make_contact, make_topic

ALPHABET = string.ascii_letters + string.digits + "-_.=~+/% \n"
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete", "truncate", "swapcase"]),
        st.integers(min_value=0, max_value=10_000),
        st.sampled_from(ALPHABET),
    ),
    min_size=1,
    max_size=3,
)


@pytest.fixture
def settings(settings):
    """Lift the rate limits: this test sends hundreds of requests from one client."""
    return settings.with_(
        rate_limit_token_client="100000 per minute", rate_limit_token="1000 per minute"
    )


def mutate(token: str, edits: list[tuple[str, int, str]]) -> str:
    for kind, position, char in edits:
        at = position % (len(token) + 1)
        if kind == "replace" and token:
            at %= len(token)
            token = token[:at] + char + token[at + 1 :]
        elif kind == "insert":
            token = token[:at] + char + token[at:]
        elif kind == "delete" and token:
            at %= len(token)
            token = token[:at] + token[at + 1 :]
        elif kind == "truncate":
            token = token[:at]
        elif kind == "swapcase":
            token = token[:at] + token[at:].swapcase()
    return token


@pytest.fixture
def tokens(app, session, settings, clock):
    topic = make_topic(session)
    contact = make_contact(session, topics=[topic])
    session.commit()
    signer = Signer(settings.secret_keys)
    return {
        "u": signer.unsubscribe_token(contact.public_id, topic.id),
        "p": signer.preferences_token(contact.public_id),
        "p-signin": signer.signin_token(contact.public_id, None, now=clock()),
    }


@pytest.mark.parametrize("purpose", ["u", "p", "p-signin"])
@hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(edits=EDITS)
def test_no_mutation_of_a_valid_token_is_accepted(app, session, tokens, purpose, edits):
    client = app.test_client(use_cookies=False)
    route = purpose[0]
    token = tokens[purpose]
    mutated = mutate(token, edits)
    if mutated == token or "/" in mutated:
        return  # a slash makes another path (Werkzeug tidies "//"), not another token
    reference = client.get(f"/{route}/reference-garbage")
    path = f"/{route}/{quote(mutated, safe='')}"  # sent as written, newlines and all
    for method in ("GET", "POST"):
        response = client.open(path, method=method, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 404, (method, mutated)
        assert response.get_data() == reference.get_data()
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
