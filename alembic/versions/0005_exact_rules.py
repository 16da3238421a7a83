"""paper votes, Thing agreements, remit declines, Party Consensus, meeting topics

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import harmony_matrix.storage.types

revision: str = '0005'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('remit_flagged', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('ballot_rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('on_paper', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('consensus_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('party_consensus', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('thing_agreements',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('assembly_id', sa.Integer(), nullable=False),
    sa.Column('agreed_by_id', sa.Integer(), nullable=True),
    sa.Column('agreed_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreed_by_id'], ['people.id'], name=op.f('fk_thing_agreements_agreed_by_id_people')),
    sa.ForeignKeyConstraint(['assembly_id'], ['assemblies.id'], name=op.f('fk_thing_agreements_assembly_id_assemblies')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_thing_agreements_meeting_id_meetings')),
    sa.PrimaryKeyConstraint('meeting_id', 'assembly_id', name=op.f('pk_thing_agreements'))
    )
    op.create_table('remit_declines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assembly_id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=True),
    sa.Column('declined_by_id', sa.Integer(), nullable=True),
    sa.Column('declined_at', harmony_matrix.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['assembly_id'], ['assemblies.id'], name=op.f('fk_remit_declines_assembly_id_assemblies')),
    sa.ForeignKeyConstraint(['declined_by_id'], ['people.id'], name=op.f('fk_remit_declines_declined_by_id_people')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_remit_declines_meeting_id_meetings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_remit_declines'))
    )
    # Things of Assemblies called before agreements were recorded went ahead as called:
    # they count as agreed (by nobody named) when they were called.
    op.execute(
        "INSERT INTO thing_agreements (meeting_id, assembly_id, agreed_by_id, agreed_at) "
        "SELECT meetings.id, meeting_assemblies.assembly_id, NULL, meetings.created_at "
        "FROM meetings JOIN meeting_assemblies ON meeting_assemblies.meeting_id = meetings.id "
        "WHERE meetings.kind = 'thing_of_assemblies'"
    )


def downgrade() -> None:
    op.drop_table('remit_declines')
    op.drop_table('thing_agreements')
    with op.batch_alter_table('consensus_records', schema=None) as batch_op:
        batch_op.drop_column('party_consensus')
    with op.batch_alter_table('ballot_rounds', schema=None) as batch_op:
        batch_op.drop_column('on_paper')
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_column('remit_flagged')
        batch_op.drop_column('topic')
