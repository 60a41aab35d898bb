"""reliability: a job outbox for every job (replaces the notice outbox), heartbeats, leases

Revision ID: 0016
Revises: 0015
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    outbox = op.create_table(
        "job_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_outbox")),
    )
    # Notices held at upgrade time become send_notice jobs, in their order.
    connection = op.get_bind()
    held = connection.execute(
        sa.text("SELECT kind, contact_id, params, held_at FROM notice_outbox ORDER BY id")
    ).all()
    rows = []
    for kind, contact_id, params, held_at in held:
        if isinstance(params, str):  # SQLite hands JSON back as text
            params = json.loads(params)
        rows.append(
            {"actor": "send_notice", "args": [kind, contact_id, params], "held_at": held_at}
        )
    if rows:
        op.bulk_insert(outbox, rows)
    op.drop_table("notice_outbox")
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("beat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    op.create_index("ix_heartbeats_kind_beat_at", "heartbeats", ["kind", "beat_at"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=100), nullable=True))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("jobs_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("jobs_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("owner")
    op.drop_index("ix_heartbeats_kind_beat_at", table_name="heartbeats")
    op.drop_table("heartbeats")
    op.create_table(
        "notice_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_notice_outbox_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_outbox")),
    )
    op.drop_table("job_outbox")
