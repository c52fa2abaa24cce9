"""Full-text search over tickets, threads and customers (PostgreSQL tsvector + GIN, pg_trgm)."""
