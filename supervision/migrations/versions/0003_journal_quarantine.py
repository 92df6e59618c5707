"""journal quarantine: rows the database refused for their content, kept apart with the error

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('journal_quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('site', sa.String(length=40), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('table_name', sa.String(length=40), nullable=False),
    sa.Column('row', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_quarantine'))
    )


def downgrade() -> None:
    op.drop_table('journal_quarantine')
