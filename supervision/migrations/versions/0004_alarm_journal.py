"""alarm journal: every alarm raised, escalated, acknowledged and cleared

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alarm_journal',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_journal')),
    sa.UniqueConstraint('site', 'at', 'key', 'kind', name=op.f('uq_alarm_journal_site'))
    )
    op.create_index(op.f('ix_alarm_journal_at'), 'alarm_journal', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_alarm_journal_at'), table_name='alarm_journal')
    op.drop_table('alarm_journal')
