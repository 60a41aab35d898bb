"""JSON API: bearer keys and roles, problems, topics, contacts and subscriptions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from prefsvc.access import apikeys
from prefsvc.consent import suppression
from prefsvc.models import AuditEvent, ConsentEvent, EventKind, SuppressionReason
from tests.factories import make_contact, make_topic

PROBLEM = "application/problem+json"


# --- authentication and roles -----------------------------------------------------------


def test_a_request_without_a_key_is_401_with_a_bearer_challenge(client):
    response = client.get("/api/v1/topics")
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["status"] == 401


@pytest.mark.parametrize("header", ["Bearer psk_wrong", "Basic YWRtaW46YWRtaW4=", "Bearer ", ""])
def test_a_wrong_key_or_scheme_is_401(client, header):
    response = client.get("/api/v1/topics", headers={"Authorization": header})
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_a_revoked_key_is_401(client, session, clock):
    row, key = apikeys.create(session, "old script", "marketing", now=clock())
    session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/topics", headers=headers).status_code == 200

    apikeys.revoke(session, row.id, now=clock())
    session.commit()

    response = client.get("/api/v1/topics", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_key_records_when_it_was_last_used(client, session, clock):
    row, key = apikeys.create(session, "crm", "marketing", now=clock())
    session.commit()
    clock.advance(hours=1)
    client.get("/api/v1/topics", headers={"Authorization": f"Bearer {key}"})
    session.expire_all()
    assert session.get(type(row), row.id).last_used_at == clock()


ROUTES = [
    # (method, path, roles allowed)
    ("GET", "/api/v1/topics", {"marketing", "admin"}),
    ("POST", "/api/v1/topics", {"marketing", "admin"}),
    ("PATCH", "/api/v1/topics/nieuws", {"marketing", "admin"}),
    ("GET", "/api/v1/contacts", {"marketing", "privacy", "admin"}),
    ("POST", "/api/v1/contacts", {"marketing", "admin"}),
    ("GET", "/api/v1/contacts/PID", {"marketing", "privacy", "admin"}),
    ("PATCH", "/api/v1/contacts/PID", {"marketing", "admin"}),
    ("DELETE", "/api/v1/contacts/PID", {"privacy", "admin"}),
    ("GET", "/api/v1/contacts/PID/export", {"privacy", "admin"}),
    ("PUT", "/api/v1/contacts/PID/legal-hold", {"privacy", "admin"}),
    ("DELETE", "/api/v1/contacts/PID/legal-hold", {"privacy", "admin"}),
    ("GET", "/api/v1/contacts/PID/subscriptions", {"marketing", "privacy", "admin"}),
    ("PUT", "/api/v1/contacts/PID/subscriptions/nieuws", {"marketing", "admin"}),
    ("DELETE", "/api/v1/contacts/PID/subscriptions/nieuws", {"marketing", "admin"}),
    ("GET", "/api/v1/campaigns", {"marketing", "admin"}),
    ("POST", "/api/v1/campaigns", {"marketing", "admin"}),
    ("GET", "/api/v1/campaigns/1", {"marketing", "admin"}),
    ("POST", "/api/v1/campaigns/1/send", {"marketing", "admin"}),
    ("POST", "/api/v1/imports", {"marketing", "admin"}),
    ("POST", "/api/v1/imports/preview", {"marketing", "admin"}),
    ("GET", "/api/v1/imports/1", {"marketing", "admin"}),
    ("GET", "/api/v1/imports/1/errors.csv", {"marketing", "admin"}),
    ("POST", "/api/v1/suppression/check", {"marketing", "privacy", "admin"}),
    ("GET", "/api/v1/rights-requests", {"privacy", "admin"}),
    ("POST", "/api/v1/rights-requests", {"privacy", "admin"}),
    ("GET", "/api/v1/rights-requests/overdue", {"privacy", "admin"}),
    ("GET", "/api/v1/audit", {"admin"}),
]


@pytest.mark.parametrize("role", ["marketing", "privacy", "admin"])
def test_each_role_reaches_only_its_routes(client, session, bearer, role):
    topic = make_topic(session, "nieuws")
    contact = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    headers = bearer(role)
    for method, path, allowed in ROUTES:
        path = path.replace("PID", contact.public_id)
        response = client.open(path, method=method, headers=headers, json={})
        if role in allowed:
            assert response.status_code != 403, (method, path)
        else:
            assert response.status_code == 403, (method, path)
            assert response.mimetype == PROBLEM


def test_every_route_refuses_exactly_the_roles_its_docs_leave_out(client, session, bearer):
    topic = make_topic(session, "nieuws")
    contact = make_contact(session, "ana@example.org", topics=[topic])
    session.commit()
    spec = client.get("/api/v1/openapi.json").get_json()
    headers = {role: bearer(role) for role in ("marketing", "privacy", "admin")}
    values = {
        "public_id": contact.public_id,
        "slug": "nieuws",
        "campaign_id": 1,
        "request_id": 1,
        "endpoint_id": 1,
        "job_id": 1,
    }
    checked = 0
    for path, item in spec["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method not in item:
                continue
            roles = item[method]["description"].rsplit("Roles: ", 1)[1].rstrip(".").split(", ")
            url = path.format(**values)
            for role, role_headers in headers.items():
                response = client.open(url, method=method.upper(), headers=role_headers)
                assert (response.status_code == 403) is (role not in roles), (method, path, role)
            checked += 1
    assert checked >= 30


def test_the_role_is_checked_before_the_body(client, bearer):
    response = client.post("/api/v1/topics", headers=bearer("privacy"), data="not json")
    assert response.status_code == 403


# --- problems ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "{not json", "content_type": "application/json"},
        {"data": "slug=a", "content_type": "application/x-www-form-urlencoded"},
        {"data": "slug: a", "content_type": "text/plain"},
        {"json": ["a list"]},
        {"json": {"slug": 12, "name": None}},
        {"json": {"slug": "a\x00b", "name": "x"}},
        {"json": {"slug": "ok", "name": "x", "unknown": 1}},
        {"json": {"slug": "x" * 10_000, "name": "x"}},
    ],
)
def test_a_malformed_body_is_a_4xx_problem_never_a_500(client, bearer, kwargs):
    response = client.post("/api/v1/topics", headers=bearer("marketing"), **kwargs)
    assert 400 <= response.status_code < 500
    assert response.mimetype == PROBLEM
    assert response.get_json()["status"] == response.status_code


def test_a_body_that_is_not_json_is_415_and_invalid_json_400(client, bearer):
    headers = bearer("marketing")
    wrong_type = client.post("/api/v1/topics", headers=headers, data="a", content_type="text/csv")
    assert wrong_type.status_code == 415
    assert "Content-Type" in wrong_type.get_json()["errors"]
    broken = client.post(
        "/api/v1/topics", headers=headers, data="{", content_type="application/json"
    )
    assert broken.status_code == 400
    assert "JSON" in broken.get_json()["detail"]


def test_a_bad_field_is_named_in_the_problem(client, bearer):
    response = client.post(
        "/api/v1/contacts", headers=bearer("marketing"), json={"email": "ana", "language": "de"}
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["title"] and body["type"]
    assert "language" in body["errors"]


def test_a_domain_validation_error_names_the_field(client, bearer):
    response = client.post(
        "/api/v1/contacts", headers=bearer("marketing"), json={"email": "not-an-address"}
    )
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["email"]


def test_a_bad_value_is_the_same_problem_whichever_layer_refuses_it(client, bearer):
    """A client handles one kind of 422: the schema's refusal and the domain's look alike."""
    by_schema = client.post(
        "/api/v1/contacts", headers=bearer("marketing"), json={"email": "a@example.org", "x": 1}
    ).get_json()
    by_domain = client.post(
        "/api/v1/contacts", headers=bearer("marketing"), json={"email": "not-an-address"}
    ).get_json()
    for body in (by_schema, by_domain):
        assert (body["status"], body["title"], body["type"]) == (
            422,
            "Unprocessable Content",
            "urn:prefsvc:invalid-input",
        )
    assert client.get("/api/v1/nowhere").get_json()["title"] == "Not Found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/campaigns/99999999999999999999999",
        "/api/v1/campaigns/0",
        "/api/v1/campaigns/abc",
        "/api/v1/contacts/no-such-id",
        "/api/v1/contacts/%00",
        "/api/v1/rights-requests/4294967296",
    ],
)
def test_unknown_ids_are_a_404_problem(client, bearer, path):
    response = client.get(path, headers=bearer("admin"))
    assert response.status_code == 404
    assert response.mimetype == PROBLEM


@pytest.mark.parametrize("page", ["0", "-1", "99999999999999999999", "x", "1e3"])
def test_an_out_of_range_page_is_422(client, bearer, page):
    response = client.get(f"/api/v1/contacts?page={page}", headers=bearer("marketing"))
    assert response.status_code == 422
    assert "page" in response.get_json()["errors"]


def test_a_bad_enum_in_a_filter_is_422(client, bearer):
    response = client.get("/api/v1/contacts?language=de", headers=bearer("marketing"))
    assert response.status_code == 422
    assert "language" in response.get_json()["errors"]


# --- topics -----------------------------------------------------------------------------


def test_topics_are_created_and_listed(client, bearer):
    headers = bearer("marketing")
    created = client.post(
        "/api/v1/topics", headers=headers, json={"slug": "nieuws", "name": "Nieuws"}
    )
    assert created.status_code == 201
    every = {"nl": "Nieuws", "fr": "Nieuws", "en": "Nieuws"}
    assert created.get_json() == {
        "slug": "nieuws",
        "name": "Nieuws",
        "description": None,
        "names": every,
        "descriptions": {"nl": None, "fr": None, "en": None},
    }
    assert client.get("/api/v1/topics", headers=headers).get_json() == [created.get_json()]


NAMES = {"nl": "Nieuwe opleidingen", "fr": "Nouvelles formations", "en": "New trainings"}


def test_a_topic_is_created_with_a_name_per_language(client, bearer):
    created = client.post(
        "/api/v1/topics",
        headers=bearer("marketing"),
        json={"slug": "nieuws", "names": NAMES, "descriptions": {"fr": "Chaque mois"}},
    )

    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["name"], body["names"]) == ("Nieuwe opleidingen", NAMES)
    assert body["descriptions"] == {"nl": None, "fr": "Chaque mois", "en": None}


@pytest.mark.parametrize(
    "body", [{"slug": "nieuws"}, {"slug": "nieuws", "names": {"nl": ""}}, {"slug": "x", "name": ""}]
)
def test_a_topic_without_any_name_is_422(client, bearer, body):
    response = client.post("/api/v1/topics", headers=bearer("marketing"), json=body)
    assert response.status_code == 422
    assert "name" in response.get_json()["errors"]


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_patch_changes_one_language_and_is_audited(client, session, bearer, language):
    make_topic(session, "nieuws", names=NAMES)
    session.commit()
    headers = bearer("marketing")

    response = client.patch(
        "/api/v1/topics/nieuws",
        headers=headers,
        json={"names": {language: "Changed"}, "descriptions": {language: "About"}},
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["names"] == NAMES | {language: "Changed"}
    assert body["descriptions"][language] == "About"
    audit = client.get("/api/v1/audit?action=topic.update", headers=bearer("admin")).get_json()
    assert [e["target"] for e in audit["items"]] == ["topic:nieuws"]


def test_patch_of_an_unknown_topic_is_404_and_clearing_every_name_422(client, session, bearer):
    make_topic(session, "nieuws", names={"nl": "Nieuws", "fr": "", "en": ""})
    session.commit()
    headers = bearer("marketing")

    missing = client.patch("/api/v1/topics/ghost", headers=headers, json={"name": "x"})
    cleared = client.patch("/api/v1/topics/nieuws", headers=headers, json={"names": {"nl": ""}})

    assert missing.status_code == 404
    assert cleared.status_code == 422


def test_a_duplicate_topic_is_422_on_the_slug(client, session, bearer):
    make_topic(session, "nieuws")
    session.commit()
    response = client.post(
        "/api/v1/topics", headers=bearer("marketing"), json={"slug": "nieuws", "name": "N"}
    )
    assert response.status_code == 422
    assert "slug" in response.get_json()["errors"]


# --- contacts ---------------------------------------------------------------------------


def test_upsert_creates_then_updates_a_contact_by_address(client, session, bearer, clock):
    make_topic(session, "nieuws")
    session.commit()
    headers = bearer("marketing")
    body = {
        "email": "Ana@Example.org",
        "first_name": "Ana",
        "language": "fr",
        "basis": "training",
        "basis_date": "2025-06-01",
        "topics": ["nieuws"],
    }
    created = client.post("/api/v1/contacts", headers=headers, json=body)
    assert created.status_code == 201
    contact = created.get_json()
    assert contact["email"] == "ana@example.org"
    assert contact["language"] == "fr"
    assert contact["window_expires_on"] == "2030-06-01"
    assert contact["subscriptions"] == [{"topic": "nieuws", "status": "subscribed"}]

    updated = client.post(
        "/api/v1/contacts", headers=headers, json={"email": "ana@example.org", "last_name": "Claes"}
    )
    assert updated.status_code == 200
    again = updated.get_json()
    assert again["public_id"] == contact["public_id"]
    assert (again["first_name"], again["last_name"]) == ("Ana", "Claes")
    imported = session.scalars(
        select(ConsentEvent).where(ConsentEvent.kind == EventKind.IMPORTED)
    ).all()
    assert [(e.channel, e.detail["source"]) for e in imported] == [("import", "api")] * 2
    assert imported[0].detail["by"].startswith("apikey:")


def test_upsert_refuses_a_suppressed_address_with_409(client, session, bearer, settings):
    suppression.add(
        session, settings.suppression_key, "gone@example.org", SuppressionReason.ERASURE
    )
    session.commit()
    response = client.post(
        "/api/v1/contacts", headers=bearer("marketing"), json={"email": "GONE@example.org"}
    )
    assert response.status_code == 409
    assert response.mimetype == PROBLEM


def test_upsert_never_resubscribes_a_topic_the_person_left(client, session, bearer, clock):
    from prefsvc.consent import changes as consent

    topic = make_topic(session, "nieuws")
    ana = make_contact(session, "ana@example.org", topics=[topic])
    consent.unsubscribe(session, ana, topic, channel="one-click", now=clock(), today=clock().date())
    session.commit()
    response = client.post(
        "/api/v1/contacts",
        headers=bearer("marketing"),
        json={"email": "ana@example.org", "topics": ["nieuws"]},
    )
    assert response.status_code == 200
    assert response.get_json()["subscriptions"] == [{"topic": "nieuws", "status": "unsubscribed"}]


def test_contacts_are_found_by_public_id_not_by_address(client, session, bearer):
    ana = make_contact(session, "ana@example.org")
    session.commit()
    headers = bearer("privacy")
    assert client.get(f"/api/v1/contacts/{ana.public_id}", headers=headers).status_code == 200
    assert client.get("/api/v1/contacts/ana@example.org", headers=headers).status_code == 404
    assert client.get(f"/api/v1/contacts/{ana.id}", headers=headers).status_code == 404


def test_patch_corrects_a_name_and_records_which_fields_changed(client, session, bearer):
    ana = make_contact(session, "ana@example.org", first_name="Anna")
    session.commit()
    response = client.patch(
        f"/api/v1/contacts/{ana.public_id}",
        headers=bearer("marketing"),
        json={"first_name": "Ana", "language": "en"},
    )
    assert response.status_code == 200
    assert (response.get_json()["first_name"], response.get_json()["language"]) == ("Ana", "en")
    event = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == ana.id)).one()
    assert event.kind is EventKind.RECTIFIED
    assert event.detail == {"fields": ["first_name", "language"]}


def test_patch_with_nothing_to_change_is_422(client, session, bearer):
    ana = make_contact(session)
    session.commit()
    response = client.patch(
        f"/api/v1/contacts/{ana.public_id}", headers=bearer("marketing"), json={}
    )
    assert response.status_code == 422


@pytest.mark.all_databases
def test_contacts_list_filters_and_pages(client, session, bearer):
    news = make_topic(session, "nieuws")
    promo = make_topic(session, "promoties")
    for i in range(7):
        make_contact(
            session,
            f"p{i}@example.org",
            language="fr" if i % 2 else "nl",
            topics=[news] if i < 5 else [promo],
            last_name="Peeters" if i != 3 else "Janssens",
        )
    session.commit()
    headers = bearer("marketing")

    first = client.get("/api/v1/contacts?per_page=3", headers=headers).get_json()
    third = client.get("/api/v1/contacts?per_page=3&page=3", headers=headers).get_json()
    assert (first["total"], len(first["items"]), len(third["items"])) == (7, 3, 1)
    assert first["items"][0]["email"] == "p0@example.org"
    assert third["items"][0]["email"] == "p6@example.org"

    def emails(query: str) -> list[str]:
        body = client.get(f"/api/v1/contacts?{query}", headers=headers).get_json()
        return [c["email"] for c in body["items"]]

    assert emails("topic=promoties") == ["p5@example.org", "p6@example.org"]
    assert emails("topic=nieuws&language=fr") == ["p1@example.org", "p3@example.org"]
    assert emails("q=JANSS") == ["p3@example.org"]
    assert emails("q=p4%40") == ["p4@example.org"]
    assert emails("q=%25") == []
    assert emails("status=erased") == []


def test_subscribe_and_unsubscribe_through_the_api(client, session, bearer):
    make_topic(session, "nieuws")
    ana = make_contact(session, "ana@example.org")
    session.commit()
    headers = bearer("marketing")
    path = f"/api/v1/contacts/{ana.public_id}/subscriptions/nieuws"

    added = client.put(path, headers=headers)
    assert added.get_json() == {"topic": "nieuws", "status": "subscribed", "changed": True}
    assert client.put(path, headers=headers).get_json()["changed"] is False
    removed = client.delete(path, headers=headers)
    assert removed.get_json() == {"topic": "nieuws", "status": "unsubscribed", "changed": True}

    # only the person can take back their own unsubscribe
    refused = client.put(path, headers=headers)
    assert refused.status_code == 409
    listed = client.get(f"/api/v1/contacts/{ana.public_id}/subscriptions", headers=headers)
    assert listed.get_json() == [{"topic": "nieuws", "status": "unsubscribed"}]


def test_subscribing_to_an_unknown_topic_is_404(client, session, bearer):
    ana = make_contact(session)
    session.commit()
    response = client.put(
        f"/api/v1/contacts/{ana.public_id}/subscriptions/nope", headers=bearer("marketing")
    )
    assert response.status_code == 404


# --- audit ------------------------------------------------------------------------------


def test_every_change_is_audited_with_ids_only(client, session, bearer):
    headers = bearer("marketing")
    client.post("/api/v1/topics", headers=headers, json={"slug": "nieuws", "name": "Nieuws"})
    created = client.post(
        "/api/v1/contacts", headers=headers, json={"email": "ana@example.org"}
    ).get_json()
    client.get("/api/v1/contacts", headers=headers)  # reading is not audited

    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.target) for e in events] == [
        ("topic.create", "topic:nieuws"),
        ("contact.created", f"contact:{created['public_id']}"),
    ]
    assert {e.actor for e in events} == {events[0].actor}
    assert events[0].actor.startswith("apikey:")
    assert all("@" not in str(e.detail) for e in events)


def test_admins_list_the_audit_log_newest_first(client, session, bearer):
    headers = bearer("admin")
    for slug in ("a", "b"):
        client.post("/api/v1/topics", headers=headers, json={"slug": slug, "name": slug})
    body = client.get("/api/v1/audit?action=topic.create", headers=headers).get_json()
    assert body["total"] == 2
    assert [e["target"] for e in body["items"]] == ["topic:b", "topic:a"]


def test_each_changing_route_writes_one_audit_entry(client, session, bearer, clock):
    import io

    from tests.factories import DEFAULT_HTML

    headers = bearer("admin")

    def call(method: str, path: str, **kwargs) -> dict:
        response = client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)
        assert response.status_code < 300, (method, path, response.get_json())
        return response.get_json()

    call("POST", "/topics", json={"slug": "nieuws", "name": "Nieuws"})
    pid = call("POST", "/contacts", json={"email": "ana@example.org"})["public_id"]
    call("PATCH", f"/contacts/{pid}", json={"first_name": "Ana"})
    call("PUT", f"/contacts/{pid}/subscriptions/nieuws")
    call("DELETE", f"/contacts/{pid}/subscriptions/nieuws")
    call("PUT", f"/contacts/{pid}/legal-hold", json={"reason": "invoice"})
    call("DELETE", f"/contacts/{pid}/legal-hold")
    call("GET", f"/contacts/{pid}/export")
    call("POST", "/rights-requests", json={"kind": "erasure", "contact": pid})
    call("DELETE", f"/contacts/{pid}")
    call("POST", "/imports", data={"file": (io.BytesIO(b"email\nbob@example.org\n"), "a.csv")})
    call("POST", "/contacts", json={"email": "cor@example.org", "topics": ["nieuws"]})
    variants = [{"language": "nl", "subject": "Nieuws", "html": DEFAULT_HTML}]
    draft = call("POST", "/campaigns", json={"topic": "nieuws", "variants": variants})["id"]
    call("POST", f"/campaigns/{draft}/test-send", json={"to": "editor@example.org"})
    call("POST", f"/campaigns/{draft}/schedule", json={"at": "2026-06-01T09:00:00+02:00"})
    call("POST", f"/campaigns/{draft}/cancel")
    sent = call("POST", "/campaigns", json={"topic": "nieuws", "variants": variants})["id"]
    call("POST", f"/campaigns/{sent}/send")
    # reading, previews and checks change nothing and are not logged
    call("GET", "/contacts")
    call("POST", f"/campaigns/{sent}/preview", json={})
    call("POST", "/suppression/check", json={"email": "ana@example.org"})

    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == [
        "topic.create",
        "contact.created",
        "contact.update",
        "subscription.add",
        "subscription.remove",
        "contact.legal_hold",
        "contact.legal_hold_lifted",
        "contact.export",
        "rights.open",
        "contact.erase",
        "import.commit",
        "contact.created",
        "campaign.create",
        "campaign.test_send",
        "campaign.schedule",
        "campaign.cancel",
        "campaign.create",
        "campaign.send",
    ]
    details = " ".join(str(e.detail) + str(e.target) for e in session.scalars(select(AuditEvent)))
    assert "@" not in details


@pytest.mark.parametrize("logger", ["werkzeug", "gunicorn.access"])
def test_request_logs_never_hold_a_searched_address(app, caplog, logger):
    import logging

    line = '127.0.0.1 - - "GET /api/v1/contacts?q=%s&per_page=5 HTTP/1.1" 200 -'
    with caplog.at_level(logging.INFO, logger=logger):
        logging.getLogger(logger).info(line, "Ana.Peeters%40Example.org")
        logging.getLogger(logger).info(line, "ana@example.org")
    assert "xample.org" not in caplog.text
    assert caplog.text.count("GET /api/v1/contacts?q=[address]&per_page=5") == 2


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/contacts",
            {"email": "ana@example.org", "first_name": "Ana\x1b[31m"},
            "first_name",
        ),
        ("/api/v1/contacts", {"email": "ana@example.org", "organisation": "A\nB"}, "organisation"),
        ("/api/v1/topics", {"slug": "news", "name": "News\r\nBcc: x"}, "name"),
        (
            "/api/v1/topics",
            {"slug": "news", "name": "News", "description": "a\x1bb"},
            "description",
        ),
    ],
)
def test_a_control_character_in_a_text_field_is_422_naming_it(client, bearer, path, body, field):
    response = client.post(path, json=body, headers=bearer("marketing"))
    assert response.status_code == 422
    assert "control characters" in response.get_json()["errors"][field][0]


def test_patch_refuses_a_control_character_naming_the_field(client, session, bearer):
    contact = make_contact(session, "ana@example.org")
    session.commit()
    response = client.patch(
        f"/api/v1/contacts/{contact.public_id}",
        json={"last_name": "Pee\u2028ters"},
        headers=bearer("marketing"),
    )
    assert response.status_code == 422
    assert "last_name" in response.get_json()["errors"]
