"""Registering endpoints: checked URLs and events, and the rotation overlap."""

from __future__ import annotations

from datetime import timedelta

import pytest

from prefsvc.errors import InvalidInput
from prefsvc.webhooks import endpoints


@pytest.mark.parametrize("url", ["", "crm.example.org/hook", "ftp://crm.example.org", "https://"])
def test_a_url_that_is_not_absolute_http_is_refused(url):
    with pytest.raises(InvalidInput) as refused:
        endpoints.check_url(url)
    assert refused.value.field == "url"


def test_events_are_known_ones_in_a_fixed_order():
    assert endpoints.check_events(["campaign.sent", " contact.erased"]) == [
        "contact.erased",
        "campaign.sent",
    ]
    with pytest.raises(InvalidInput, match="unknown event 'contact.deleted'"):
        endpoints.check_events(["contact.deleted"])
    with pytest.raises(InvalidInput, match="at least one"):
        endpoints.check_events([])


def test_a_rotated_secret_signs_for_the_overlap_only(session, clock):
    endpoint = endpoints.create(
        session, "https://crm.example.org/h", ["campaign.sent"], now=clock()
    )
    old = endpoint.secret
    new = endpoints.rotate_secret(session, endpoint, now=clock())
    assert endpoints.signing_secrets(endpoint, clock()) == [new, old]
    later = clock() + endpoints.ROTATION_OVERLAP + timedelta(seconds=1)
    assert endpoints.signing_secrets(endpoint, later) == [new]
