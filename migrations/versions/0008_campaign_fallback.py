"""campaigns name their fallback language (NULL: contacts without a variant are not sent it)

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
# While 0007 (topic texts per language) is developed in parallel this follows 0006; the merge
# re-chains it onto 0007.
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "fallback_language",
                sa.Enum(
                    "nl",
                    "fr",
                    "en",
                    name="fallback_language",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )
    # Until now every contact without a variant got the default language's: keep that.
    op.execute("UPDATE campaigns SET fallback_language = default_language")


def downgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("fallback_language")
