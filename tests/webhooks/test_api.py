"""``/api/v1/webhooks``: admins register endpoints and read the delivery log."""

from __future__ import annotations


def test_an_admin_registers_an_endpoint_and_sees_its_secret_once(client, bearer):
    headers = bearer("admin")
    created = client.post(
        "/api/v1/webhooks",
        json={"url": "https://crm.example.org/hook", "events": ["contact.unsubscribed"]},
        headers=headers,
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks", headers=headers).get_json()
    assert listed["items"][0]["events"] == ["contact.unsubscribed"]
    assert "secret" not in listed["items"][0]
    rotated = client.post(f"/api/v1/webhooks/{body['id']}/rotate-secret", headers=headers)
    assert rotated.get_json()["secret"] not in (body["secret"], None)
    log = client.get(f"/api/v1/webhooks/{body['id']}/deliveries", headers=headers)
    assert log.get_json() == {"items": []}


def test_marketing_keys_may_not_register_endpoints(client, bearer):
    response = client.post(
        "/api/v1/webhooks", json={"url": "https://x.example/h"}, headers=bearer("marketing")
    )
    assert response.status_code == 403


def test_a_bad_url_is_a_problem_naming_the_field(client, bearer):
    response = client.post("/api/v1/webhooks", json={"url": "nope"}, headers=bearer("admin"))
    assert response.status_code == 422
    assert "url" in response.get_json()["errors"]
