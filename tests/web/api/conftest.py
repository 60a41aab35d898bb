"""Fixtures of the API tests: a bearer key per role."""

from __future__ import annotations

import pytest

from prefsvc.access import apikeys


@pytest.fixture
def bearer(session, clock):
    """Return a function giving request headers with a fresh key of the given role."""

    def make(role: str = "admin") -> dict[str, str]:
        _, key = apikeys.create(session, f"{role} key", role, now=clock())
        session.commit()
        return {"Authorization": f"Bearer {key}"}

    return make
