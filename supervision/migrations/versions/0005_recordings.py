"""recordings: each call's recording, its checksum, status, legal hold and deletion

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recordings',
    sa.Column('call_id', sa.String(length=80), nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('file', sa.String(length=200), nullable=False),
    sa.Column('line', sa.String(length=40), nullable=False),
    sa.Column('caller', sa.String(length=40), nullable=False),
    sa.Column('desks', sa.String(length=200), nullable=False),
    sa.Column('queues', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.Double(), nullable=False),
    sa.Column('ended_at', sa.Double(), nullable=True),
    sa.Column('duration', sa.Double(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('hold_by', sa.String(length=40), nullable=False),
    sa.Column('hold_at', sa.Double(), nullable=True),
    sa.Column('hold_reason', sa.Text(), nullable=False),
    sa.Column('deleted_at', sa.Double(), nullable=True),
    sa.Column('deleted_by', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('call_id', name=op.f('pk_recordings'))
    )
    op.create_index(op.f('ix_recordings_caller'), 'recordings', ['caller'], unique=False)
    op.create_index(op.f('ix_recordings_site'), 'recordings', ['site'], unique=False)
    op.create_index(op.f('ix_recordings_started_at'), 'recordings', ['started_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_recordings_started_at'), table_name='recordings')
    op.drop_index(op.f('ix_recordings_site'), table_name='recordings')
    op.drop_index(op.f('ix_recordings_caller'), table_name='recordings')
    op.drop_table('recordings')
