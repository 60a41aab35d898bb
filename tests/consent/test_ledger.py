"""The consent ledger is one gapless hash chain; tampering is found at the row that was touched."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from prefsvc import create_app
from prefsvc.consent import changes as consent
from prefsvc.consent import ledger
from prefsvc.extensions import db
from prefsvc.mail.tokens import Signer
from prefsvc.models import ConsentEvent, Contact, EventKind, LedgerHead
from prefsvc.recipient import links
from prefsvc.settings import current_settings
from tests.factories import make_contact, make_topic

pytestmark = pytest.mark.all_databases


def _append(session, contact, n: int, now: datetime, *, commit_every: int = 7) -> None:
    for i in range(n):
        consent.record(
            session, contact, EventKind.PREFERENCES, channel="test", now=now, detail={"i": i}
        )
        if i % commit_every == 0:
            session.commit()
    session.commit()


@pytest.fixture
def chain(session, clock):
    """A ledger of 10 events over two contacts and a topic."""
    topic = make_topic(session)
    ana = make_contact(session, "ana@example.org", topics=[topic])
    bo = make_contact(session, "bo@example.org")
    for i in range(5):
        consent.record(
            session, ana, EventKind.SUBSCRIBED, channel="import", now=clock(), topic=topic
        )
        consent.record(session, bo, EventKind.PAUSED, channel="web", now=clock(), detail={"n": i})
        clock.advance(minutes=1)
    session.commit()
    return session


@pytest.fixture
def attacker(app):
    """Run SQL straight against the database with the append-only trigger out of the way."""
    dialect = db.engine.dialect.name

    def run(*statements: tuple[str, dict]) -> None:
        db.session.commit()
        with db.engine.begin() as connection:
            if dialect == "postgresql":
                connection.execute(text("ALTER TABLE consent_events DISABLE TRIGGER USER"))
            else:
                connection.execute(text("DROP TRIGGER consent_events_no_update"))
                connection.execute(text("DROP TRIGGER consent_events_no_delete"))
            for statement, params in statements:
                connection.execute(text(statement), params)
            if dialect == "postgresql":
                connection.execute(text("ALTER TABLE consent_events ENABLE TRIGGER USER"))
            else:
                for ddl in ledger.APPEND_ONLY_DDL["sqlite"]:
                    connection.execute(text(ddl))

    return run


def test_chain_verifies_after_many_appends(session, clock):
    contact = make_contact(session)
    _append(session, contact, 250, clock())

    result = ledger.verify(session, batch=64)

    assert (result.ok, result.checked, result.first_bad_seq) == (True, 250, None)
    seqs = session.scalars(select(ConsentEvent.seq).order_by(ConsentEvent.seq)).all()
    assert seqs == list(range(1, 251))


def test_every_event_links_to_the_one_before(chain):
    events = chain.scalars(select(ConsentEvent).order_by(ConsentEvent.seq)).all()

    assert events[0].prev_hash == ledger.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in pairwise(events))
    assert len({e.hash for e in events}) == len(events)


def test_concurrent_writers_keep_one_gapless_chain(app, session):
    first, second = make_contact(session), make_contact(session)
    session.commit()
    ids = [first.id, second.id]
    engine = db.engine
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(contact_id: int) -> None:
        try:
            with Session(engine) as own:
                contact = own.get(Contact, contact_id)
                start.wait()
                for i in range(40):
                    consent.record(
                        own,
                        contact,
                        EventKind.PREFERENCES,
                        channel="test",
                        now=datetime.now(UTC),
                        detail={"i": i},
                    )
                    own.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    result = ledger.verify(session)
    assert (result.ok, result.checked) == (True, 80)
    for contact_id in ids:
        count = session.scalar(select(func.count()).where(ConsentEvent.contact_id == contact_id))
        assert count == 40


def test_a_rolled_back_append_leaves_no_gap(session, clock):
    contact = make_contact(session)
    _append(session, contact, 3, clock())
    consent.record(session, contact, EventKind.PAUSED, channel="web", now=clock())
    session.rollback()
    consent.record(session, contact, EventKind.RENEWED, channel="web", now=clock())
    session.commit()

    result = ledger.verify(session)
    assert (result.ok, result.checked) == (True, 4)
    assert session.scalar(select(ConsentEvent.kind).where(ConsentEvent.seq == 4)) == (
        EventKind.RENEWED
    )


def test_database_refuses_to_update_or_delete_events(chain):
    for statement in (
        "UPDATE consent_events SET channel = 'forged' WHERE seq = 3",
        "DELETE FROM consent_events WHERE seq = 3",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            chain.execute(text(statement))
        chain.rollback()
    assert ledger.verify(chain).ok


def test_changed_detail_is_found_at_its_seq(chain, attacker):
    attacker(("UPDATE consent_events SET detail = :d WHERE seq = 4", {"d": '{"n": 99}'}))

    result = ledger.verify(chain)

    assert (result.ok, result.first_bad_seq, result.checked) == (False, 4, 3)
    assert "hash" in result.problem


def test_rehashed_change_is_found_at_the_next_link(chain, attacker):
    event = chain.scalar(select(ConsentEvent).where(ConsentEvent.seq == 6))
    forged = ledger.chain_hash(
        event.prev_hash,
        ledger.canonical(
            seq=6,
            contact_id=event.contact_id,
            topic_id=event.topic_id,
            kind="objection",
            channel=event.channel,
            detail=event.detail,
            occurred_at=event.occurred_at,
        ),
    )
    attacker(
        ("UPDATE consent_events SET kind = 'objection', hash = :h WHERE seq = 6", {"h": forged})
    )

    assert ledger.verify(chain).first_bad_seq == 7


def test_deleted_event_is_found_at_its_seq(chain, attacker):
    attacker(("DELETE FROM consent_events WHERE seq = 5", {}))

    result = ledger.verify(chain)

    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_deleted_last_event_is_found_against_the_head(chain, attacker):
    attacker(("DELETE FROM consent_events WHERE seq = 10", {}))

    result = ledger.verify(chain)

    assert (result.ok, result.first_bad_seq, result.checked) == (False, 10, 9)


def test_reordered_events_are_found_at_the_first_moved_seq(chain, attacker):
    attacker(
        ("UPDATE consent_events SET seq = -1 WHERE seq = 3", {}),
        ("UPDATE consent_events SET seq = 3 WHERE seq = 4", {}),
        ("UPDATE consent_events SET seq = 4 WHERE seq = -1", {}),
    )

    result = ledger.verify(chain)

    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_ledger_refuses_personal_data_in_detail(session, clock):
    contact = make_contact(session)
    with pytest.raises(ValueError, match="personal data"):
        consent.record(
            session,
            contact,
            EventKind.RECTIFIED,
            channel="web",
            now=clock(),
            detail={"first_name": "Ana"},
        )


def test_cli_verify_prints_one_line_when_intact(chain, runner):
    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ledger intact: 10 events, head ")
    assert len(result.stdout.splitlines()) == 1


def test_cli_verify_fails_naming_the_first_bad_seq(chain, runner, attacker):
    attacker(("UPDATE consent_events SET channel = 'forged' WHERE seq = 2", {}))

    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code != 0
    assert result.stdout == ""
    assert "seq 2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def empty_app(settings, backend, request):
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    app = create_app(settings)
    with app.app_context():
        reset = "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
        if backend == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text(reset))
        yield app
        db.session.remove()
        if backend == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text(reset))
        db.engine.dispose()


def test_migration_chains_events_recorded_before_it(empty_app):
    upgrade(revision="0001")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (id, public_id, email, language, window_anchor, status, "
                "created_at, updated_at) VALUES (1, 'p1', 'ana@example.org', 'nl', '2026-01-01', "
                "'active', '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
            )
        )
        for i, kind in enumerate(("imported", "subscribed", "paused")):
            connection.execute(
                text(
                    "INSERT INTO consent_events (contact_id, kind, channel, detail, occurred_at) "
                    "VALUES (1, :kind, 'import', :detail, :at)"
                ),
                {"kind": kind, "detail": f'{{"i": {i}}}', "at": f"2026-01-0{i + 1} 10:00:00"},
            )

    upgrade()

    result = ledger.verify(db.session)
    assert (result.ok, result.checked) == (True, 3)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("DELETE FROM consent_events"))
    db.session.rollback()


def test_appends_in_a_rolled_back_savepoint_leave_no_trace(session, clock):
    contact = make_contact(session)
    session.commit()
    try:
        with session.begin_nested():
            consent.record(session, contact, EventKind.IMPORTED, channel="import", now=clock())
            raise RuntimeError("row rejected")
    except RuntimeError:
        pass
    consent.record(session, contact, EventKind.IMPORTED, channel="import", now=clock())
    consent.record(session, contact, EventKind.SUBSCRIBED, channel="import", now=clock())
    session.commit()

    result = ledger.verify(session)
    assert (result.ok, result.checked) == (True, 2)


def test_a_migrated_database_chains_every_kind_of_append(empty_app):
    """After ``upgrade`` (not ``create_all``), server-side appends and leaves verify."""
    upgrade()
    now = datetime(2026, 3, 10, 9, 30, 0, 123456, tzinfo=UTC)
    topic, other = make_topic(db.session), make_topic(db.session)
    ana = make_contact(db.session, "ana@example.org", topics=[topic, other])
    db.session.commit()
    consent.record(
        db.session, ana, EventKind.PAUSED, channel="web", now=now, detail={"months": 3, "é": "ü"}
    )
    assert consent.leave(
        db.session, ana.id, topic.id, channel="one-click", now=now, today=now.date()
    )
    ledger.append_many(db.session, [ledger.NewEvent(ana.id, EventKind.PREFERENCES, "web")], now=now)
    token = Signer(current_settings().secret_keys).unsubscribe_token(ana.public_id, other.id)
    _link, left = links.leave_by_link(
        db.session,
        Signer(current_settings().secret_keys),
        token,
        channel="one-click",
        now=now,
        today=now.date(),
    )
    db.session.commit()

    assert left
    assert ledger.verify(db.session) == ledger.VerifyResult(
        True,
        4,
        head_hash=db.session.scalars(select(ConsentEvent.hash).where(ConsentEvent.seq == 4)).one(),
    )


def test_a_detail_holding_seq_keys_still_verifies(session, clock):
    """SQL fills the event's own ``seq`` in; a ``seq`` inside the detail must not confuse it."""
    contact = make_contact(session)
    consent.record(
        session,
        contact,
        EventKind.PREFERENCES,
        channel="web",
        now=clock(),
        detail={"seq": 0, "nested": {"seq": 0}, "list": ['"seq":0']},
    )
    session.commit()

    assert ledger.verify(session).ok
    assert session.scalars(select(ConsentEvent.seq)).all() == [1]


def test_a_missing_head_row_is_put_back_on_the_next_append(session, clock):
    contact = make_contact(session)
    session.commit()
    session.execute(text("DELETE FROM ledger_head"))
    session.commit()

    consent.record(session, contact, EventKind.IMPORTED, channel="import", now=clock())
    consent.record(session, contact, EventKind.PAUSED, channel="web", now=clock())
    session.commit()

    result = ledger.verify(session)
    assert (result.ok, result.checked) == (True, 2)


def test_the_three_part_template_joins_into_the_canonical_json(clock):
    head, middle, after = ledger.around_contact_and_seq(
        EventKind.UNSUBSCRIBED, 'one-"click":0', 7, detail={}, occurred_at=clock()
    )
    assert f"{head}4321{middle}17{after}".encode() == ledger.canonical(
        seq=17,
        contact_id=4321,
        topic_id=7,
        kind="unsubscribed",
        channel='one-"click":0',
        detail={},
        occurred_at=clock(),
    )


@pytest.mark.parametrize("backend", ["postgresql"])  # ledger_append exists on PostgreSQL only
def test_ledger_append_on_the_server_chains_what_append_many_chains(session):
    """The PL/pgSQL twin and the Python rule, from the same head with the same events."""
    topic = make_topic(session)
    ana, bo = make_contact(session, "ana@example.org"), make_contact(session, "bo@example.org")
    session.commit()
    now = datetime(2026, 3, 10, 9, 30, 0, 123456, tzinfo=UTC)
    events = [
        ledger.NewEvent(ana.id, EventKind.IMPORTED, "import", detail={"by": "ops", "é": "ü"}),
        ledger.NewEvent(ana.id, EventKind.SUBSCRIBED, "import", topic_id=topic.id),
        ledger.NewEvent(bo.id, EventKind.PAUSED, "web", detail={"months": 3, "seq": 0}),
        ledger.NewEvent(bo.id, EventKind.PREFERENCES, "web", detail={"list": ['"seq":0', None]}),
    ]
    columns = ledger.EVENT_COLUMNS

    def run(append_one) -> tuple[list[tuple], tuple]:
        for event in events:
            append_one(event)
        rows = [tuple(row) for row in session.execute(select(*columns).order_by(ConsentEvent.seq))]
        head = tuple(session.execute(select(LedgerHead.seq, LedgerHead.hash)).one())
        assert ledger.verify(session).ok
        session.rollback()
        return rows, head

    on_server = run(
        lambda e: ledger.append(
            session,
            e.contact_id,
            e.kind,
            channel=e.channel,
            now=now,
            topic_id=e.topic_id,
            detail=e.detail,
        )
    )
    in_python = run(lambda e: ledger.append_many(session, [e], now=now))

    assert on_server == in_python
    rows, head = in_python
    assert [row[0] for row in rows] == [1, 2, 3, 4]
    assert head == (4, rows[-1][-1])
