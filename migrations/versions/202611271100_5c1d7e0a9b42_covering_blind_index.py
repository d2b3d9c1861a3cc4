"""blind index look-ups answered from the index; a redundant duplicate-decision index dropped

The (kind, digest) index of blind_index_entries becomes (kind, digest, owner_type, owner_id):
a duplicate check reads the owners of thousands of digests per registration batch, and from
the index alone they are a few adjacent pages instead of a table row each. duplicate_decisions
loses its person_id index: the (person_id, candidate_id) unique constraint's index serves the
same look-ups, and each registration wrote both.

Revision ID: 5c1d7e0a9b42
Revises: abb44db71169
Create Date: 2026-11-27 11:00:00
"""
from alembic import op

revision = "5c1d7e0a9b42"
down_revision = "abb44db71169"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blind_index_entries", schema=None) as batch_op:
        batch_op.create_index("ix_blind_index_entries_kind_digest_owner",
                              ["kind", "digest", "owner_type", "owner_id"], unique=False)
        batch_op.drop_index("ix_blind_index_entries_kind_digest")
    with op.batch_alter_table("duplicate_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_duplicate_decisions_person_id")


def downgrade() -> None:
    with op.batch_alter_table("duplicate_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_duplicate_decisions_person_id", ["person_id"], unique=False)
    with op.batch_alter_table("blind_index_entries", schema=None) as batch_op:
        batch_op.create_index("ix_blind_index_entries_kind_digest", ["kind", "digest"], unique=False)
        batch_op.drop_index("ix_blind_index_entries_kind_digest_owner")
