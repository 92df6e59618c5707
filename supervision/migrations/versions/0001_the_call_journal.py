"""the call journal

Revision ID: 0001
Revises:
Create Date: 2026-11-23 03:29:41.866843
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('agent_sessions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('interface', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('login_at', sa.Double(), nullable=False),
    sa.Column('logout_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_sessions')),
    sa.UniqueConstraint('site', 'interface', 'login_at', name=op.f('uq_agent_sessions_site'))
    )
    op.create_table('calls',
    sa.Column('call_id', sa.String(length=80), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('uniqueid', sa.String(length=80), nullable=False),
    sa.Column('line', sa.String(length=40), nullable=False),
    sa.Column('dialed', sa.String(length=40), nullable=False),
    sa.Column('caller', sa.String(length=40), nullable=False),
    sa.Column('origin', sa.String(length=40), nullable=False),
    sa.Column('inbound', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.Double(), nullable=False),
    sa.Column('answered_at', sa.Double(), nullable=True),
    sa.Column('first_wait', sa.Double(), nullable=True),
    sa.Column('ended_at', sa.Double(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('qualification', sa.String(length=4), nullable=False),
    sa.Column('switched_to', sa.String(length=40), nullable=False),
    sa.Column('hangup_cause', sa.Integer(), nullable=True),
    sa.Column('repeat', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('call_id', name=op.f('pk_calls'))
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_site'), ['site'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_started_at'), ['started_at'], unique=False)

    op.create_table('journal_gaps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('from_at', sa.Double(), nullable=False),
    sa.Column('to_at', sa.Double(), nullable=False),
    sa.Column('dropped_rows', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_gaps'))
    )
    op.create_table('mutual_aid_journal',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('partner', sa.String(length=80), nullable=False),
    sa.Column('by', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('share', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mutual_aid_journal')),
    sa.UniqueConstraint('site', 'at', 'kind', 'subject', name=op.f('uq_mutual_aid_journal_site'))
    )
    with op.batch_alter_table('mutual_aid_journal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mutual_aid_journal_at'), ['at'], unique=False)

    op.create_table('agent_legs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=80), nullable=False),
    sa.Column('queue', sa.String(length=40), nullable=False),
    sa.Column('interface', sa.String(length=100), nullable=False),
    sa.Column('member_name', sa.String(length=80), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('connected_at', sa.Double(), nullable=False),
    sa.Column('ended_at', sa.Double(), nullable=True),
    sa.Column('talk_time', sa.Double(), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.call_id'], name=op.f('fk_agent_legs_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_legs')),
    sa.UniqueConstraint('call_id', 'interface', 'connected_at', name=op.f('uq_agent_legs_call_id'))
    )
    with op.batch_alter_table('agent_legs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_legs_call_id'), ['call_id'], unique=False)

    op.create_table('overflows',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=80), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('queue', sa.String(length=40), nullable=False),
    sa.Column('partner', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.call_id'], name=op.f('fk_overflows_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_overflows')),
    sa.UniqueConstraint('call_id', 'at', 'direction', name=op.f('uq_overflows_call_id'))
    )
    with op.batch_alter_table('overflows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_overflows_call_id'), ['call_id'], unique=False)

    op.create_table('qualifications',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=80), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('by', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('medical_advice', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.call_id'], name=op.f('fk_qualifications_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qualifications')),
    sa.UniqueConstraint('call_id', 'at', name=op.f('uq_qualifications_call_id'))
    )
    with op.batch_alter_table('qualifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qualifications_call_id'), ['call_id'], unique=False)

    op.create_table('queue_visits',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=80), nullable=False),
    sa.Column('queue', sa.String(length=40), nullable=False),
    sa.Column('joined_at', sa.Double(), nullable=False),
    sa.Column('left_at', sa.Double(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('destination', sa.String(length=40), nullable=False),
    sa.Column('wait', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.call_id'], name=op.f('fk_queue_visits_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_visits')),
    sa.UniqueConstraint('call_id', 'queue', 'joined_at', name=op.f('uq_queue_visits_call_id'))
    )
    with op.batch_alter_table('queue_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_queue_visits_call_id'), ['call_id'], unique=False)

    op.create_table('transfers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=80), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('source_queue', sa.String(length=40), nullable=False),
    sa.Column('target_queue', sa.String(length=40), nullable=False),
    sa.Column('by', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('mechanism', sa.String(length=20), nullable=False),
    sa.Column('confirmed', sa.Boolean(), nullable=False),
    sa.Column('fallback_queue', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.call_id'], name=op.f('fk_transfers_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfers')),
    sa.UniqueConstraint('call_id', 'at', name=op.f('uq_transfers_call_id'))
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_call_id'), ['call_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_call_id'))

    op.drop_table('transfers')
    with op.batch_alter_table('queue_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_queue_visits_call_id'))

    op.drop_table('queue_visits')
    with op.batch_alter_table('qualifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qualifications_call_id'))

    op.drop_table('qualifications')
    with op.batch_alter_table('overflows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_overflows_call_id'))

    op.drop_table('overflows')
    with op.batch_alter_table('agent_legs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_legs_call_id'))

    op.drop_table('agent_legs')
    with op.batch_alter_table('mutual_aid_journal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mutual_aid_journal_at'))

    op.drop_table('mutual_aid_journal')
    op.drop_table('journal_gaps')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_started_at'))
        batch_op.drop_index(batch_op.f('ix_calls_site'))

    op.drop_table('calls')
    op.drop_table('agent_sessions')

