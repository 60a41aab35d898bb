"""The webhooks pages: admins register endpoints, see the secret once, and are warned."""

from __future__ import annotations

from prefsvc.models import WebhookEndpoint
from prefsvc.webhooks import endpoints
from tests.web.admin.conftest import post


def test_an_admin_registers_an_endpoint_and_sees_the_secret_once(as_role, session):
    client = as_role("admin")
    response = post(
        client,
        "/admin/webhooks",
        {"url": "https://crm.example.org/hook", "events": ["contact.unsubscribed"]},
        form_page="/admin/webhooks",
    )
    assert response.status_code == 201
    [endpoint] = session.query(WebhookEndpoint).all()
    assert endpoint.secret in response.get_data(as_text=True)
    listing = client.get("/admin/webhooks").get_data(as_text=True)
    assert "https://crm.example.org/hook" in listing
    assert endpoint.secret not in listing


def test_a_bad_address_is_a_422_naming_the_field(as_role):
    client = as_role("admin")
    response = post(client, "/admin/webhooks", {"url": "nope", "events": ["campaign.sent"]})
    assert response.status_code == 422
    assert "url: must be an absolute" in response.get_data(as_text=True)


def test_marketing_staff_may_not_see_webhooks(as_role):
    assert as_role("marketing").get("/admin/webhooks").status_code == 403


def test_every_admin_page_warns_while_an_endpoint_is_disabled_for_failing(as_role, session, clock):
    endpoint = endpoints.create(
        session, "https://crm.example.org/h", ["campaign.sent"], now=clock()
    )
    endpoints.disable(session, endpoint, now=clock(), reason=endpoints.DISABLED_FAILING)
    session.commit()
    page = as_role("admin").get("/admin/").get_data(as_text=True)
    assert f"disabled because they kept failing: {endpoint.id}" in page
