"""JSON API: erasure, access export, legal hold, suppression check, rights requests."""

from __future__ import annotations

from sqlalchemy import select

from prefsvc.consent import suppression
from prefsvc.models import AuditEvent, ConsentEvent, EventKind, RightsKind, SuppressionReason
from prefsvc.privacy import erasure, register
from tests.factories import make_contact, make_topic


def test_erasure_removes_personal_data_and_suppresses_the_address(
    client, session, bearer, settings
):
    ana = make_contact(session, "ana@example.org", topics=[make_topic(session)])
    session.commit()
    response = client.delete(f"/api/v1/contacts/{ana.public_id}", headers=bearer("privacy"))
    assert response.status_code == 200
    assert response.get_json() == {"public_id": ana.public_id, "kept": [], "legal_hold": None}
    shown = client.get(f"/api/v1/contacts/{ana.public_id}", headers=bearer("privacy")).get_json()
    assert (shown["email"], shown["first_name"], shown["status"]) == (None, None, "erased")
    assert suppression.is_suppressed(session, settings.suppression_key, "ana@example.org")
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.erase")).one()
    assert audit.target == f"contact:{ana.public_id}"


def test_a_legal_hold_set_by_the_source_system_limits_erasure(client, session, bearer):
    ana = make_contact(session, "ana@example.org", organisation="Acme")
    session.commit()
    headers = bearer("privacy")
    held = client.put(
        f"/api/v1/contacts/{ana.public_id}/legal-hold",
        headers=headers,
        json={"reason": "invoices: 7 years (accounting law)", "until": "2033-12-31"},
    )
    assert held.status_code == 200
    assert held.get_json()["legal_hold"] == {
        "reason": "invoices: 7 years (accounting law)",
        "until": "2033-12-31",
    }

    erased = client.delete(f"/api/v1/contacts/{ana.public_id}", headers=headers).get_json()
    assert erased["kept"] == ["first_name", "last_name", "organisation"]
    assert erased["legal_hold"]["until"] == "2033-12-31"


def test_a_legal_hold_is_recorded_in_the_ledger_without_its_text(client, session, bearer):
    ana = make_contact(session)
    session.commit()
    client.put(
        f"/api/v1/contacts/{ana.public_id}/legal-hold",
        headers=bearer("privacy"),
        json={"reason": "open invoice", "until": None},
    )
    event = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == ana.id)).one()
    assert event.kind is EventKind.RECTIFIED
    assert event.detail["legal_hold"] == "set"
    assert "open invoice" not in str(event.detail)


def test_lifting_a_legal_hold(client, session, bearer, clock):
    ana = make_contact(session)
    erasure.set_legal_hold(session, ana, reason="invoice", until=None, now=clock())
    session.commit()
    response = client.delete(
        f"/api/v1/contacts/{ana.public_id}/legal-hold", headers=bearer("privacy")
    )
    assert response.get_json()["legal_hold"] is None


def test_a_legal_hold_needs_a_reason_and_a_future_end(client, session, bearer):
    ana = make_contact(session)
    session.commit()
    path = f"/api/v1/contacts/{ana.public_id}/legal-hold"
    headers = bearer("privacy")
    assert "reason" in client.put(path, headers=headers, json={}).get_json()["errors"]
    past = client.put(path, headers=headers, json={"reason": "x", "until": "2020-01-01"})
    assert past.status_code == 422
    assert "until" in past.get_json()["errors"]
    bad = client.put(path, headers=headers, json={"reason": "x", "until": "2026-02-30"})
    assert "until" in bad.get_json()["errors"]


def test_the_access_export_holds_everything_and_is_logged(client, session, bearer):
    ana = make_contact(session, "ana@example.org")
    session.commit()
    response = client.get(f"/api/v1/contacts/{ana.public_id}/export", headers=bearer("privacy"))
    assert response.status_code == 200
    document = response.get_json()
    assert document["contact"]["email"] == "ana@example.org"
    assert document["suppressed"] is False
    kinds = [e.kind for e in session.scalars(select(ConsentEvent))]
    assert kinds == [EventKind.EXPORTED]


def test_the_suppression_check_answers_only_yes_or_no(client, session, bearer, settings):
    suppression.add(
        session, settings.suppression_key, "gone@example.org", SuppressionReason.OBJECTION
    )
    session.commit()
    headers = bearer("marketing")
    yes = client.post(
        "/api/v1/suppression/check", headers=headers, json={"email": "Gone@Example.org"}
    )
    no = client.post(
        "/api/v1/suppression/check", headers=headers, json={"email": "new@example.org"}
    )
    assert (yes.get_json(), no.get_json()) == ({"suppressed": True}, {"suppressed": False})
    bad = client.post("/api/v1/suppression/check", headers=headers, json={"email": "nope"})
    assert bad.status_code == 422
    assert "email" in bad.get_json()["errors"]


def test_rights_requests_are_opened_listed_and_overdue_ones_shown(client, session, bearer, clock):
    ana = make_contact(session)
    session.commit()
    headers = bearer("privacy")
    opened = client.post(
        "/api/v1/rights-requests",
        headers=headers,
        json={"kind": "access", "contact": ana.public_id, "note": "by phone"},
    )
    assert opened.status_code == 201
    request = opened.get_json()
    assert (request["kind"], request["status"], request["due_on"], request["contact"]) == (
        "access",
        "received",
        "2026-04-09",
        ana.public_id,
    )
    listed = client.get("/api/v1/rights-requests?open=true", headers=headers).get_json()
    assert [r["id"] for r in listed["items"]] == [request["id"]]
    assert client.get("/api/v1/rights-requests/overdue", headers=headers).get_json() == []

    clock.set(clock().replace(month=5))
    late = client.get("/api/v1/rights-requests/overdue", headers=headers).get_json()
    assert [r["id"] for r in late] == [request["id"]]
    one = client.get(f"/api/v1/rights-requests/{request['id']}", headers=headers)
    assert one.get_json() == request


def test_a_rights_request_of_an_unknown_kind_is_422(client, bearer):
    response = client.post(
        "/api/v1/rights-requests", headers=bearer("privacy"), json={"kind": "deletion"}
    )
    assert response.status_code == 422
    assert "kind" in response.get_json()["errors"]


def test_rights_requests_list_filters_by_status(client, session, bearer, clock, settings):
    register.open_request(session, RightsKind.ERASURE, now=clock(), settings=settings)
    session.commit()
    headers = bearer("privacy")
    done = client.get("/api/v1/rights-requests?status=done", headers=headers).get_json()
    received = client.get("/api/v1/rights-requests?status=received", headers=headers).get_json()
    assert (done["total"], received["total"]) == (0, 1)


def test_erasure_of_an_unknown_contact_is_404(client, bearer):
    response = client.delete("/api/v1/contacts/nobody", headers=bearer("privacy"))
    assert response.status_code == 404
