"""the bot: handled events, direct rooms, matrix state, outbox delivery columns

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import harmony_matrix.storage.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('direct_rooms',
    sa.Column('matrix_id', sa.String(length=255), nullable=False),
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('matrix_id', name=op.f('pk_direct_rooms')),
    sa.UniqueConstraint('room_id', name=op.f('uq_direct_rooms_room_id'))
    )
    op.create_table('handled_events',
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('handled_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_handled_events'))
    )
    op.create_table('matrix_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_matrix_state'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('html', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reply_to_event_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('mention', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('notice', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('first_attempt_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failed_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('event_id', sa.String(length=255), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('event_id')
        batch_op.drop_column('failed_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('first_attempt_at')
        batch_op.drop_column('notice')
        batch_op.drop_column('mention')
        batch_op.drop_column('reply_to_event_id')
        batch_op.drop_column('html')

    op.drop_table('matrix_state')
    op.drop_table('handled_events')
    op.drop_table('direct_rooms')
