"""sealed ballots: an open round's ballots sealed to its key; counted ballots apart

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import harmony_matrix.storage.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    # Ballots of an open round were stored in clear before this revision; they cannot be
    # sealed after the fact without keeping them readable in the old pages. Refuse.
    open_with_ballots = connection.execute(sa.text(
        "SELECT count(*) FROM cast_ballots JOIN ballot_rounds "
        "ON ballot_rounds.id = cast_ballots.round_id WHERE ballot_rounds.status = 'open'"
    )).scalar()
    if open_with_ballots:
        raise RuntimeError(
            "A ballot round is open with ballots cast: close it with the previous "
            "version of Harmony before upgrading."
        )
    with op.batch_alter_table('ballot_rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal_key', sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column('cleaned_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table('sealed_ballots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['ballot_rounds.id'], name=op.f('fk_sealed_ballots_round_id_ballot_rounds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sealed_ballots')),
    sqlite_with_rowid=False
    )
    op.create_table('counted_ballots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('receipt', sa.String(length=32), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['ballot_rounds.id'], name=op.f('fk_counted_ballots_round_id_ballot_rounds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_counted_ballots')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('counted_ballots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_counted_ballots_round_id'), ['round_id'], unique=False)
    # Closed rounds' ballots were already rewritten in random order when they closed.
    op.execute(
        "INSERT INTO counted_ballots (id, round_id, receipt, scores) "
        "SELECT id, round_id, receipt, scores FROM cast_ballots"
    )
    op.drop_table('cast_ballots')


def downgrade() -> None:
    op.create_table('cast_ballots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('receipt', sa.String(length=32), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['ballot_rounds.id'], name=op.f('fk_cast_ballots_round_id_ballot_rounds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cast_ballots')),
    sa.UniqueConstraint('receipt', name=op.f('uq_cast_ballots_receipt')),
    sqlite_with_rowid=False
    )
    op.execute(
        "INSERT INTO cast_ballots (id, round_id, receipt, scores) "
        "SELECT id, round_id, receipt, scores FROM counted_ballots"
    )
    with op.batch_alter_table('counted_ballots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_counted_ballots_round_id'))
    op.drop_table('counted_ballots')
    op.drop_table('sealed_ballots')
    with op.batch_alter_table('ballot_rounds', schema=None) as batch_op:
        batch_op.drop_column('cleaned_at')
        batch_op.drop_column('seal_key')
