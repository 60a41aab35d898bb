"""API keys: only hashes stored, shown once, revocable; roles decide what a key may do."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from prefsvc.access import apikeys
from prefsvc.errors import InvalidInput, NotFound
from prefsvc.models import ApiKey, StaffRole


def test_only_the_sha256_of_a_key_is_stored(session, clock):
    row, key = apikeys.create(session, "crm", "marketing", now=clock())
    session.commit()
    stored = session.scalars(select(ApiKey)).one()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {stored.name, stored.prefix, stored.key_hash}
    assert key.startswith(stored.prefix)


def test_a_key_authenticates_until_it_is_revoked(session, clock):
    row, key = apikeys.create(session, "crm", StaffRole.PRIVACY, now=clock())
    assert apikeys.authenticate(session, key, now=clock()) is row
    assert apikeys.authenticate(session, key + "x", now=clock()) is None
    apikeys.revoke(session, row.id, now=clock())
    assert apikeys.authenticate(session, key, now=clock()) is None


@pytest.mark.parametrize(("name", "role"), [("", "admin"), ("x" * 201, "admin"), ("ok", "boss")])
def test_a_key_needs_a_name_and_a_known_role(session, clock, name, role):
    with pytest.raises(InvalidInput):
        apikeys.create(session, name, role, now=clock())


def test_revoking_an_unknown_key_is_not_found(session, clock):
    with pytest.raises(NotFound):
        apikeys.revoke(session, 42, now=clock())


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("marketing", "campaigns", True),
        ("marketing", "contacts:erase", False),
        ("marketing", "contacts:export", False),
        ("marketing", "rights", False),
        ("privacy", "contacts:read", True),
        ("privacy", "contacts:erase", True),
        ("privacy", "legal-hold", True),
        ("privacy", "campaigns", False),
        ("privacy", "contacts:write", False),
        ("admin", "audit:read", True),
        ("admin", "no-such-permission", False),
    ],
)
def test_roles_allow_their_permissions_only(role, permission, allowed):
    assert apikeys.allows(StaffRole(role), permission) is allowed


def test_cli_creates_lists_and_revokes_keys(runner, session):
    created = runner.invoke(args=["apikeys", "create", "Newsletter CRM", "--role", "marketing"])
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("psk_")
    assert "shown only now" in created.stderr

    listed = runner.invoke(args=["apikeys", "list", "--json"])
    (entry,) = json.loads(listed.stdout)
    assert (entry["name"], entry["role"], entry["revoked_at"]) == (
        "Newsletter CRM",
        "marketing",
        None,
    )
    assert key not in listed.stdout

    revoked = runner.invoke(args=["apikeys", "revoke", str(entry["id"])])
    assert revoked.exit_code == 0
    session.expire_all()
    assert (
        apikeys.authenticate(session, key, now=session.get(ApiKey, entry["id"]).created_at) is None
    )


def test_cli_refuses_an_unknown_role_and_an_unknown_id(runner):
    assert runner.invoke(args=["apikeys", "create", "x", "--role", "boss"]).exit_code != 0
    missing = runner.invoke(args=["apikeys", "revoke", "99"])
    assert missing.exit_code != 0
    assert "no API key 99" in missing.stderr
