"""topic translations: a name and a description per language (nl, fr, en)

Existing topics get their one name and description in all three languages. The columns are
added and dropped in place (``recreate="never"``: SQLite >= 3.35 drops a column natively):
recreating ``topics`` on SQLite would drop a table that subscriptions and campaigns refer to.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LANGUAGES = ("nl", "fr", "en")


def upgrade():
    with op.batch_alter_table("topics", recreate="never") as batch_op:
        for lang in LANGUAGES:
            batch_op.add_column(sa.Column(f"name_{lang}", sa.String(length=200), nullable=True))
        for lang in LANGUAGES:
            batch_op.add_column(sa.Column(f"description_{lang}", sa.Text(), nullable=True))
    copies = ", ".join(
        f"name_{lang} = name, description_{lang} = description" for lang in LANGUAGES
    )
    op.execute(f"UPDATE topics SET {copies}")
    with op.batch_alter_table("topics", recreate="never") as batch_op:
        batch_op.drop_column("name")
        batch_op.drop_column("description")


def downgrade():
    with op.batch_alter_table("topics", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("name", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
    op.execute(
        "UPDATE topics SET name = COALESCE(name_nl, name_fr, name_en, slug),"
        " description = COALESCE(description_nl, description_fr, description_en)"
    )
    with op.batch_alter_table("topics", recreate="never") as batch_op:
        for lang in LANGUAGES:
            batch_op.drop_column(f"name_{lang}")
            batch_op.drop_column(f"description_{lang}")
