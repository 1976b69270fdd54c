-- Messaging read receipts, reporters told of the outcome, and retention (issue 19, items 7-9).

-- Each time a participant's read mark moves up, when: « Lu à 14 h 02 » beside each of one's
-- messages is the first mark at or beyond its seq (at most one row per message and reader).
CREATE TABLE chat_read_marks (
    conversation_id INTEGER NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    at              REAL NOT NULL,
    PRIMARY KEY (conversation_id, user_id, seq)
) WITHOUT ROWID;

-- Every seq <= purged_seq of a conversation was removed by the retention purge: a client
-- asking to resume from before it gets a reset (docs/chat.md, « Conservation »).
ALTER TABLE chat_conversations ADD COLUMN purged_seq INTEGER NOT NULL DEFAULT 0;

-- A reporter is told once when the vie scolaire handled their report; until then (offline
-- reporters) the outcome waits for their next visit.
ALTER TABLE chat_reports ADD COLUMN reporter_told_at REAL;

-- Departed users: when an account was disabled, so that what it leaves behind (its course
-- documents) is purged a configurable time later. Accounts already disabled start counting
-- from this migration, never retroactively.
ALTER TABLE users ADD COLUMN disabled_at REAL;
UPDATE users SET disabled_at = CAST(strftime('%s', 'now') AS REAL) WHERE disabled = 1;
CREATE TRIGGER users_disabled_at AFTER UPDATE OF disabled ON users
    WHEN NEW.disabled = 1 AND OLD.disabled = 0 AND NEW.disabled_at IS NULL
BEGIN
    UPDATE users SET disabled_at = CAST(strftime('%s', 'now') AS REAL) WHERE id = NEW.id;
END;
CREATE TRIGGER users_enabled_again AFTER UPDATE OF disabled ON users
    WHEN NEW.disabled = 0 AND OLD.disabled = 1
BEGIN
    UPDATE users SET disabled_at = NULL WHERE id = NEW.id;
END;

CREATE INDEX chat_messages_created ON chat_messages(created_at);
CREATE INDEX boards_updated ON boards(updated_at);
-- A reporter's outcomes, read at each connection (welcome).
CREATE INDEX chat_reports_reporter ON chat_reports(reporter_id, handled_at);
