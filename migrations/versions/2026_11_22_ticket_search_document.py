"""ticket search document: one tsvector per ticket (subject + every message), kept by triggers

Search matches a ticket when its words appear anywhere in it, so it asks one GIN index on
`tickets.search_document` instead of gathering matches from threads and de-duplicating them.
The document is maintained by the database on every write path (webhook, portal, console,
merge, erasure), so no code path can forget it:

* a new ticket starts with its subject (weight A);
* a new message is appended, 100 positions after the last, so a phrase never spans two messages;
* a message that changes (erasure rewrites it, a merge moves it) or goes away rebuilds the
  documents of the tickets involved, as does a changed subject.

The per-message index on `threads.search_vector` and the subject-only `tickets.search_vector`
(with its index) go: nothing reads them any more, and every new message paid for them. The
per-message vectors stay: documents are built from them, and snippets check them.

A tsvector holds at most 1 MB. A ticket whose document is full keeps the words it already
holds; its new messages are still stored and still searchable one by one in the ticket. A
message is never refused for the sake of the search index.

Revision ID: 7c1d2e9a4b10
Revises: 4f4e04d732b6
Create Date: 2026-11-22 05:20:00
"""
from alembic import op

revision = '7c1d2e9a4b10'
down_revision = '4f4e04d732b6'
branch_labels = None
depends_on = None


# op.execute runs this through sqlalchemy.text, where "\:" is a literal colon, not a bind parameter.
UPGRADE = r"""
-- Appending a message to a document: `||` shifts the new positions past the document's last one,
-- and a filler lexeme (a single space, which no query can contain) 100 positions on keeps a
-- phrase from matching across two messages.
CREATE FUNCTION echo_search_append(doc tsvector, part tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN part IS NULL OR part = ''::tsvector THEN doc
                ELSE doc || $gap$' '\:100$gap$::tsvector || part END
$$;

CREATE AGGREGATE echo_tsvector_agg(tsvector) (SFUNC = echo_search_append, STYPE = tsvector, INITCOND = '');

ALTER TABLE tickets ADD COLUMN search_document tsvector NOT NULL DEFAULT ''::tsvector;

-- The whole document of one ticket: the subject, then every message in order. Appends message by
-- message only when the one-shot aggregate overflows, stopping at the first that no longer fits.
CREATE FUNCTION echo_ticket_search_document(ticket uuid, subject text) RETURNS tsvector
LANGUAGE plpgsql STABLE AS $$
DECLARE
    doc tsvector := setweight(to_tsvector('english'::regconfig, coalesce(subject, '')), 'A');
    part tsvector;
BEGIN
    BEGIN
        RETURN doc || coalesce((SELECT echo_tsvector_agg(search_vector ORDER BY created_at, id)
                                  FROM threads WHERE ticket_id = ticket), ''::tsvector);
    EXCEPTION WHEN program_limit_exceeded THEN
        NULL;
    END;
    FOR part IN SELECT search_vector FROM threads WHERE ticket_id = ticket ORDER BY created_at, id LOOP
        BEGIN
            doc := echo_search_append(doc, part);
        EXCEPTION WHEN program_limit_exceeded THEN
            RETURN doc;
        END;
    END LOOP;
    RETURN doc;
END $$;

CREATE FUNCTION echo_tickets_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.search_document := setweight(to_tsvector('english'::regconfig, coalesce(NEW.subject, '')), 'A');
    ELSIF NEW.subject IS DISTINCT FROM OLD.subject THEN
        NEW.search_document := echo_ticket_search_document(NEW.id, NEW.subject);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tickets_search_document BEFORE INSERT OR UPDATE OF subject ON tickets
    FOR EACH ROW EXECUTE FUNCTION echo_tickets_search_document();

CREATE FUNCTION echo_threads_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        BEGIN
            UPDATE tickets SET search_document = echo_search_append(search_document, NEW.search_vector)
             WHERE id = NEW.ticket_id;
        EXCEPTION WHEN program_limit_exceeded THEN
            NULL;  -- the document is full: the message is kept, the document keeps what it holds
        END;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.ticket_id IS NOT DISTINCT FROM OLD.ticket_id
       AND NEW.search_vector IS NOT DISTINCT FROM OLD.search_vector THEN
        RETURN NULL;
    END IF;
    UPDATE tickets SET search_document = echo_ticket_search_document(id, subject) WHERE id = OLD.ticket_id;
    IF TG_OP = 'UPDATE' AND NEW.ticket_id IS DISTINCT FROM OLD.ticket_id THEN
        UPDATE tickets SET search_document = echo_ticket_search_document(id, subject) WHERE id = NEW.ticket_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER threads_search_document AFTER INSERT OR UPDATE OF ticket_id, stripped_text OR DELETE ON threads
    FOR EACH ROW EXECUTE FUNCTION echo_threads_search_document();

-- Every ticket's document at once (existing data; bulk loads that bypassed the triggers).
CREATE FUNCTION echo_rebuild_search_documents() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    changed bigint;
BEGIN
    UPDATE tickets t SET search_document = setweight(to_tsvector('english'::regconfig, t.subject), 'A')
                                           || coalesce(a.doc, ''::tsvector)
      FROM tickets t2 LEFT JOIN (SELECT ticket_id, echo_tsvector_agg(search_vector ORDER BY created_at, id) AS doc
                                   FROM threads GROUP BY ticket_id) a ON a.ticket_id = t2.id
     WHERE t2.id = t.id;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
EXCEPTION WHEN program_limit_exceeded THEN
    -- some ticket is too large for the one-shot aggregate: build each document on its own
    UPDATE tickets SET search_document = echo_ticket_search_document(id, subject);
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END $$;

SELECT echo_rebuild_search_documents();

CREATE INDEX ix_tickets_search_document ON tickets USING gin (search_document);

-- Search reads the documents now: the per-message and subject indexes only cost every write.
DROP INDEX ix_threads_search_vector;
DROP INDEX ix_tickets_search_vector;
ALTER TABLE tickets DROP COLUMN search_vector;
"""

DOWNGRADE = r"""
ALTER TABLE tickets ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (setweight(to_tsvector('english'::regconfig, subject), 'A')) STORED;
CREATE INDEX ix_tickets_search_vector ON tickets USING gin (search_vector);
CREATE INDEX ix_threads_search_vector ON threads USING gin (search_vector);
DROP INDEX IF EXISTS ix_tickets_search_document;
DROP TRIGGER IF EXISTS threads_search_document ON threads;
DROP TRIGGER IF EXISTS tickets_search_document ON tickets;
DROP FUNCTION IF EXISTS echo_rebuild_search_documents();
DROP FUNCTION IF EXISTS echo_threads_search_document();
DROP FUNCTION IF EXISTS echo_tickets_search_document();
DROP FUNCTION IF EXISTS echo_ticket_search_document(uuid, text);
ALTER TABLE tickets DROP COLUMN IF EXISTS search_document;
DROP AGGREGATE IF EXISTS echo_tsvector_agg(tsvector);
DROP FUNCTION IF EXISTS echo_search_append(tsvector, tsvector);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
