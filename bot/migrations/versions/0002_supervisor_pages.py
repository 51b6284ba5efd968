"""supervisor pages: web users and case marks

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:03:05.823387
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('case_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_number', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_marks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_marks_case_number'), ['case_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_marks_message_id'), ['message_id'], unique=False)

    op.create_table('web_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('telegram_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_users_name'), ['name'], unique=True)




def downgrade() -> None:

    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_users_name'))

    op.drop_table('web_users')
    with op.batch_alter_table('case_marks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_marks_message_id'))
        batch_op.drop_index(batch_op.f('ix_case_marks_case_number'))

    op.drop_table('case_marks')

