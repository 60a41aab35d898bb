"""hash-chained consent ledger, legal hold, rights request register, retention runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00

Existing consent events are chained in id order, then the database is told to refuse UPDATE
and DELETE on them (a trigger on SQLite and on PostgreSQL).
"""

from datetime import UTC

import sqlalchemy as sa
from alembic import op

from prefsvc.consent.ledger import GENESIS, canonical, chain_hash

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY = {
    "sqlite": (
        "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
        "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END",
        "CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events "
        "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'consent_events is append-only' USING ERRCODE = 'insufficient_privilege'; "
        "END $$",
        "CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events "
        "FOR EACH ROW EXECUTE FUNCTION consent_events_append_only()",
    ),
}
DROP_APPEND_ONLY = {
    "sqlite": (
        "DROP TRIGGER IF EXISTS consent_events_no_update",
        "DROP TRIGGER IF EXISTS consent_events_no_delete",
    ),
    "postgresql": (
        "DROP TRIGGER IF EXISTS consent_events_append_only ON consent_events",
        "DROP FUNCTION IF EXISTS consent_events_append_only()",
    ),
}


def _chain_existing_events(bind) -> None:
    events = sa.table(
        "consent_events",
        sa.column("id", sa.Integer),
        sa.column("seq", sa.Integer),
        sa.column("contact_id", sa.Integer),
        sa.column("topic_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("channel", sa.String),
        sa.column("detail", sa.JSON),
        sa.column("occurred_at", sa.DateTime),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    rows = bind.execute(
        sa.select(
            events.c.id,
            events.c.contact_id,
            events.c.topic_id,
            events.c.kind,
            events.c.channel,
            events.c.detail,
            events.c.occurred_at,
        ).order_by(events.c.id)
    ).all()
    previous = GENESIS
    for seq, row in enumerate(rows, start=1):
        payload = canonical(
            seq=seq,
            contact_id=row.contact_id,
            topic_id=row.topic_id,
            kind=row.kind,
            channel=row.channel,
            detail=row.detail or {},
            occurred_at=row.occurred_at.replace(tzinfo=UTC),
        )
        digest = chain_hash(previous, payload)
        bind.execute(
            events.update()
            .where(events.c.id == row.id)
            .values(seq=seq, prev_hash=previous, hash=digest)
        )
        previous = digest
    head = sa.table(
        "ledger_head",
        sa.column("id", sa.Integer),
        sa.column("seq", sa.Integer),
        sa.column("hash", sa.String),
    )
    bind.execute(head.insert().values(id=1, seq=len(rows), hash=previous))


def upgrade():
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_hold_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("legal_hold_until", sa.Date(), nullable=True))

    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ledger_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_head")),
    )

    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_events(op.get_bind())
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_consent_events_seq"), ["seq"])

    op.create_table(
        "rights_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "access",
                "rectification",
                "erasure",
                name="rights_kind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "verified",
                "done",
                "refused",
                name="rights_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("verification", sa.String(length=64), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by", sa.String(length=200), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_rights_requests_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_requests")),
    )
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.create_index("ix_rights_requests_contact", ["contact_id"], unique=False)
        batch_op.create_index(
            "ix_rights_requests_status_due_on", ["status", "due_on"], unique=False
        )

    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("run_on", sa.Date(), nullable=False),
        sa.Column("last_expired_anchor", sa.Date(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("anonymised", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )

    for statement in APPEND_ONLY.get(op.get_bind().dialect.name, ()):
        op.execute(statement)


def downgrade():
    for statement in DROP_APPEND_ONLY.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    op.drop_table("retention_runs")
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_rights_requests_status_due_on")
        batch_op.drop_index("ix_rights_requests_contact")
    op.drop_table("rights_requests")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_consent_events_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_table("ledger_head")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("legal_hold_until")
        batch_op.drop_column("legal_hold_reason")
