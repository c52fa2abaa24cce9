"""search estimate function: the planner's guess of matching tickets, callable inside a query

Search picks its strategy from how many tickets PostgreSQL expects a query to match, which only
EXPLAIN tells. As a function, the estimate travels in the search's opening statement with the
table size and the matching customers (one round trip instead of two). The query is quoted into
the EXPLAINed text with %L, so it is planned with its actual words, as a literal.

Revision ID: 3e6f1b2c8d45
Revises: 7c1d2e9a4b10
Create Date: 2026-12-01 07:40:00
"""
from alembic import op

revision = '3e6f1b2c8d45'
down_revision = '7c1d2e9a4b10'
branch_labels = None
depends_on = None


UPGRADE = """
CREATE FUNCTION echo_estimated_matches(query text) RETURNS double precision
LANGUAGE plpgsql VOLATILE AS $$  -- EXPLAIN is refused in a STABLE function
DECLARE
    plan json;
BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM tickets '
                   'WHERE search_document @@ websearch_to_tsquery(''english''::regconfig, %L)', query) INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision;
END $$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS echo_estimated_matches(text)")
