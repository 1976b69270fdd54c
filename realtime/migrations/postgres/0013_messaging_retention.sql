-- PostgreSQL twin of migrations/0013_messaging_retention.sql.
-- Messaging read receipts, reporters told of the outcome, and retention (issue 19, items 7-9).

-- Each time a participant's read mark moves up, when: « Lu à 14 h 02 » beside each of one's
-- messages is the first mark at or beyond its seq (at most one row per message and reader).
CREATE TABLE chat_read_marks (
    conversation_id BIGINT NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    at              DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (conversation_id, user_id, seq)
);

-- Every seq <= purged_seq of a conversation was removed by the retention purge: a client
-- asking to resume from before it gets a reset (docs/chat.md, « Conservation »).
ALTER TABLE chat_conversations ADD COLUMN purged_seq BIGINT NOT NULL DEFAULT 0;

-- A reporter is told once when the vie scolaire handled their report; until then (offline
-- reporters) the outcome waits for their next visit.
ALTER TABLE chat_reports ADD COLUMN reporter_told_at DOUBLE PRECISION;

-- Departed users: when an account was disabled, so that what it leaves behind (its course
-- documents) is purged a configurable time later. Accounts already disabled start counting
-- from this migration, never retroactively. Whole epoch seconds, as SQLite's
-- CAST(strftime('%s', 'now') AS REAL).
ALTER TABLE users ADD COLUMN disabled_at DOUBLE PRECISION;
UPDATE users SET disabled_at = floor(extract(epoch FROM clock_timestamp()))::double precision
    WHERE disabled = 1;

-- SQLite's two triggers run AFTER the UPDATE and update the row again; here they are BEFORE
-- triggers that set the column in the row being written: the same row in the end (and the
-- UPDATE's RETURNING already sees it), one write instead of two.
CREATE FUNCTION users_disabled_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.disabled_at := floor(extract(epoch FROM clock_timestamp()))::double precision;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_disabled_at BEFORE UPDATE OF disabled ON users FOR EACH ROW
    WHEN (NEW.disabled = 1 AND OLD.disabled = 0 AND NEW.disabled_at IS NULL)
    EXECUTE FUNCTION users_disabled_at();

CREATE FUNCTION users_enabled_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.disabled_at := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_enabled_again BEFORE UPDATE OF disabled ON users FOR EACH ROW
    WHEN (NEW.disabled = 0 AND OLD.disabled = 1)
    EXECUTE FUNCTION users_enabled_again();

CREATE INDEX chat_messages_created ON chat_messages(created_at);
CREATE INDEX boards_updated ON boards(updated_at);
-- A reporter's outcomes, read at each connection (welcome).
CREATE INDEX chat_reports_reporter ON chat_reports(reporter_id, handled_at);
