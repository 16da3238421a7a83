"""paper sign-ins: one-time links that sign a secretary in to enter paper ballots

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import harmony_matrix.storage.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('paper_sign_ins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('created_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('used_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_paper_sign_ins_meeting_id_meetings')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_paper_sign_ins_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paper_sign_ins')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_paper_sign_ins_token_hash'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paper_sign_in_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_paper_sign_in_id_paper_sign_ins'), 'paper_sign_ins', ['paper_sign_in_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_paper_sign_in_id_paper_sign_ins'), type_='foreignkey')
        batch_op.drop_column('paper_sign_in_id')
    op.drop_table('paper_sign_ins')
