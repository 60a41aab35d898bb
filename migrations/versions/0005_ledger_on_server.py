"""one-statement ledger appends and one-click unsubscribes on PostgreSQL

The ledger head row exists from the start, and two PL/pgSQL functions, ``ledger_append`` and
``consent_leave``, do on the server what ``prefsvc.consent.ledger.append`` and
``prefsvc.consent.changes.leave`` do in several statements on SQLite: the head stays locked for one
round trip instead of four. A copy of ``prefsvc.models.LEDGER_FUNCTIONS_DDL`` at this revision.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION ledger_append(
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
    RETURN v_seq;
END $$""",
    """CREATE OR REPLACE FUNCTION consent_leave(
    p_contact integer, p_topic integer, p_channel varchar, p_at timestamp, p_today date,
    p_before text, p_after text
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM contacts WHERE id = p_contact FOR UPDATE;
    INSERT INTO subscriptions (contact_id, topic_id, status, created_at, updated_at)
    VALUES (p_contact, p_topic, 'unsubscribed', p_at, p_at)
    ON CONFLICT (contact_id, topic_id) DO UPDATE
        SET status = excluded.status, updated_at = excluded.updated_at
        WHERE subscriptions.status <> 'unsubscribed';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE contacts SET window_anchor = GREATEST(window_anchor, p_today), updated_at = p_at
    WHERE id = p_contact;
    PERFORM ledger_append(
        p_contact, p_topic, 'unsubscribed', p_channel, '{}'::json, p_at, p_before, p_after
    );
    RETURN true;
END $$""",
)


def upgrade():
    op.execute(
        "INSERT INTO ledger_head (id, seq, hash) "
        f"SELECT 1, 0, '{GENESIS}' WHERE NOT EXISTS (SELECT 1 FROM ledger_head)"
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in FUNCTIONS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS consent_leave")
        op.execute("DROP FUNCTION IF EXISTS ledger_append")
    op.execute("DELETE FROM ledger_head WHERE seq = 0")
