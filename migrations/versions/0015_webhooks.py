"""webhooks: endpoints, the webhook outbox and the delivery log; ledger_append holds events

``ledger_append`` (PostgreSQL) now also holds each event's webhook twin in ``webhook_outbox``
while an endpoint is enabled, as ``prefsvc.consent.ledger.append_many`` does in Python: a copy
of ``prefsvc.consent.ledger.APPEND_FUNCTION`` at this revision.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APPEND_FUNCTION = """CREATE OR REPLACE FUNCTION ledger_append(
    p_contact integer, p_topic integer, p_kind varchar, p_channel varchar, p_detail json,
    p_at timestamp, p_before text, p_after text
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_seq integer;
    v_prev varchar;
    v_hash varchar;
BEGIN
    UPDATE ledger_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash INTO v_seq, v_prev;
    IF NOT FOUND THEN
        INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, repeat('0', 64))
        ON CONFLICT (id) DO NOTHING;
        UPDATE ledger_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash INTO v_seq, v_prev;
    END IF;
    v_hash := encode(
        sha256(convert_to(v_prev || p_before || v_seq::text || p_after, 'UTF8')), 'hex'
    );
    INSERT INTO consent_events
        (seq, contact_id, topic_id, kind, channel, detail, occurred_at, prev_hash, hash)
    VALUES (v_seq, p_contact, p_topic, p_kind, p_channel, p_detail, p_at, v_prev, v_hash);
    UPDATE ledger_head SET hash = v_hash WHERE id = 1;
    IF p_kind NOT IN ('imported', 'exported')
        AND EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        INSERT INTO webhook_outbox (kind, ledger_seq, contact_id, topic_id, held_at)
        VALUES (p_kind, v_seq, p_contact, p_topic, p_at);
    END IF;
    RETURN v_seq;
END $$"""
# The function as migration 0005 left it, for the downgrade.
APPEND_FUNCTION_0005 = APPEND_FUNCTION.replace(
    APPEND_FUNCTION[
        APPEND_FUNCTION.index("    IF p_kind NOT IN") : APPEND_FUNCTION.index("    RETURN v_seq;")
    ],
    "",
)


def upgrade():
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("disabled_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("address_hash", sa.String(length=64), nullable=True),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "delivered",
                "failed",
                name="webhook_delivery_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("pending_since", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_response", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("message_id", name=op.f("uq_webhook_deliveries_message_id")),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_lane", "webhook_deliveries", ["endpoint_id", "contact_id", "id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_FUNCTION_0005)
    op.drop_index("ix_webhook_deliveries_lane", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_outbox")
    op.drop_table("webhook_endpoints")
