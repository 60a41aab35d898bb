"""Staff accounts: hashed passwords, roles, the sign-in brake, and ``prefsvc admins``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from prefsvc.access import staff
from prefsvc.errors import InvalidInput
from prefsvc.models import AdminUser, StaffRole


def test_password_is_stored_only_as_a_salted_scrypt_hash(session, clock):
    one = staff.create(session, "ana", "same password", "marketing", now=clock())
    two = staff.create(session, "bram", "same password", "privacy", now=clock())
    assert one.password_hash.startswith("scrypt:")
    assert "same password" not in one.password_hash
    assert one.password_hash != two.password_hash


@pytest.mark.parametrize(
    ("username", "role", "password", "field"),
    [
        ("A", "marketing", "secret-secret", "username"),
        ("has space", "marketing", "secret-secret", "username"),
        ("ana", "boss", "secret-secret", "role"),
        ("ana", "admin", "abc", "password"),
    ],
)
def test_create_names_the_field_it_refuses(session, clock, username, role, password, field):
    with pytest.raises(InvalidInput) as caught:
        staff.create(session, username, password, role, now=clock())
    assert caught.value.field == field


def test_usernames_are_unique_whatever_their_case(session, clock):
    staff.create(session, "ana", "secret-secret", "admin", now=clock())
    with pytest.raises(InvalidInput):
        staff.create(session, "ANA", "other-secret", "admin", now=clock())


def test_authenticate_accepts_the_right_password_and_records_the_sign_in(session, clock):
    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    user = staff.authenticate(session, "Ana", "secret-secret", now=clock())
    assert user.last_login_at == clock()


def test_authenticate_refuses_a_disabled_account_even_with_the_right_password(session, clock):
    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    staff.disable(session, "ana")
    with pytest.raises(staff.SignInRefused):
        staff.authenticate(session, "ana", "secret-secret", now=clock())


def test_brake_holds_for_the_window_after_the_fifth_failure(session, clock):
    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    for _ in range(staff.MAX_FAILURES):
        with pytest.raises(staff.SignInRefused):
            staff.authenticate(session, "ana", "wrong", now=clock())
        clock.advance(minutes=1)
    with pytest.raises(staff.SignInThrottled) as caught:
        staff.authenticate(session, "ana", "secret-secret", now=clock())
    assert caught.value.retry_after == timedelta(minutes=10)
    clock.advance(minutes=11)
    assert staff.authenticate(session, "ana", "secret-secret", now=clock()).username == "ana"


def test_admins_may_use_every_page_others_only_their_own():
    assert staff.may(StaffRole.ADMIN, (StaffRole.PRIVACY,))
    assert staff.may(StaffRole.PRIVACY, (StaffRole.PRIVACY,))
    assert not staff.may(StaffRole.MARKETING, (StaffRole.PRIVACY,))


def test_cli_creates_lists_and_disables_accounts(runner, session):
    created = runner.invoke(
        args=["admins", "create", "ana", "--role", "privacy", "--password-stdin"],
        input="a long enough password\n",
    )
    assert created.exit_code == 0, created.stderr
    assert "created privacy account ana" in created.stdout
    listed = runner.invoke(args=["admins", "list", "--json"])
    (row,) = json.loads(listed.stdout)
    assert row["username"] == "ana" and row["role"] == "privacy" and row["active"] is True
    assert "hash" not in listed.stdout
    disabled = runner.invoke(args=["admins", "disable", "ana"])
    assert disabled.exit_code == 0
    session.expire_all()
    assert session.scalar(select(AdminUser.active)) is False


def test_cli_prompts_for_the_password_twice_without_echo(runner, session):
    result = runner.invoke(
        args=["admins", "create", "bram", "--role", "marketing"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.stderr
    assert "a long enough password" not in result.stdout
    assert session.scalar(select(AdminUser.username)) == "bram"


def test_cli_refuses_a_bad_role_and_a_duplicate_with_one_line(runner):
    bad = runner.invoke(args=["admins", "create", "ana", "--role", "boss", "--password-stdin"])
    assert bad.exit_code != 0
    runner.invoke(
        args=["admins", "create", "ana", "--role", "admin", "--password-stdin"], input="pw-pw-pw\n"
    )
    again = runner.invoke(
        args=["admins", "create", "ana", "--role", "admin", "--password-stdin"], input="pw-pw-pw\n"
    )
    assert again.exit_code == 1
    assert again.stderr.strip().splitlines() == ["Error: username: 'ana' exists already"]


def test_cli_disable_of_an_unknown_account_fails(runner):
    result = runner.invoke(args=["admins", "disable", "nobody"])
    assert result.exit_code == 1
    assert "no staff account" in result.stderr


def test_a_failed_sign_in_typed_as_an_address_keeps_no_address_but_still_brakes(session):
    from sqlalchemy import select

    from prefsvc.models import AuditEvent

    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    for _ in range(staff.MAX_FAILURES):
        with pytest.raises(staff.SignInRefused):
            staff.authenticate(session, "Ana.Peeters@Example.org", "guess", now=now)
    with pytest.raises(staff.SignInThrottled):
        staff.authenticate(session, "ana.peeters@example.org", "guess", now=now)
    targets = session.scalars(select(AuditEvent.target)).all()
    assert targets and all("@" not in (t or "") for t in targets)


@pytest.mark.all_databases
def test_parallel_failed_sign_ins_get_no_more_evaluations_than_the_brake_allows(
    app, session, clock
):
    """40 parallel wrong passwords for one user from one client: exactly 5 are checked."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy.orm import Session

    from prefsvc.extensions import db

    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    session.commit()
    engine = db.engine

    def attempt(_: int) -> str:
        with Session(engine) as own:
            try:
                staff.authenticate(own, "ana", "wrong", client="203.0.113.9", now=clock())
            except staff.SignInThrottled:
                own.rollback()
                return "throttled"
            except staff.SignInRefused:
                own.commit()
                return "refused"
            return "accepted"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    assert outcomes.count("refused") == staff.MAX_FAILURES
    assert outcomes.count("throttled") == 40 - staff.MAX_FAILURES


def test_a_stranger_failing_does_not_lock_the_user_out_from_elsewhere(session, clock):
    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    for _ in range(staff.MAX_FAILURES):
        with pytest.raises(staff.SignInRefused):
            staff.authenticate(session, "ana", "guess", client="203.0.113.9", now=clock())
    with pytest.raises(staff.SignInThrottled):
        staff.authenticate(session, "ana", "secret-secret", client="203.0.113.9", now=clock())
    user = staff.authenticate(session, "ana", "secret-secret", client="198.51.100.7", now=clock())
    assert user.username == "ana"


def test_one_client_guessing_across_user_names_is_braked_for_every_name(session, clock):
    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    for n in range(staff.MAX_CLIENT_FAILURES):
        with pytest.raises(staff.SignInRefused):
            staff.authenticate(session, f"user{n}", "guess", client="203.0.113.9", now=clock())
    with pytest.raises(staff.SignInThrottled):
        staff.authenticate(session, "ana", "secret-secret", client="203.0.113.9", now=clock())
    clock.advance(minutes=16)
    assert staff.authenticate(session, "ana", "secret-secret", client="203.0.113.9", now=clock())


def test_a_correct_password_clears_that_clients_failures_for_the_user(session, clock):
    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    for _ in range(3):
        for _ in range(staff.MAX_FAILURES - 1):
            with pytest.raises(staff.SignInRefused):
                staff.authenticate(session, "ana", "typo", client="198.51.100.7", now=clock())
        staff.authenticate(session, "ana", "secret-secret", client="198.51.100.7", now=clock())


def test_changing_a_password_or_signing_out_moves_the_session_generation(session, clock):
    user = staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    session.commit()
    before = user.session_generation
    staff.end_sessions(session, user.id)
    session.commit()
    session.refresh(user)
    assert user.session_generation == before + 1
    old_hash = user.password_hash
    staff.change_password(session, "ana", "another secret")
    session.commit()
    session.refresh(user)
    assert user.session_generation == before + 2 and user.password_hash != old_hash
    assert staff.authenticate(session, "ana", "another secret", now=clock())


def test_cli_changes_a_password(runner, session, clock):
    staff.create(session, "ana", "secret-secret", "marketing", now=clock())
    session.commit()
    result = runner.invoke(
        args=["admins", "password", "ana", "--password-stdin"], input="a new long password\n"
    )
    assert result.exit_code == 0, result.stderr
    assert "changed the password of ana" in result.stdout
    session.expire_all()
    assert staff.authenticate(session, "ana", "a new long password", now=clock())
