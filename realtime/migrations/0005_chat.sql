-- Messaging (messagerie) and live-session chat.
-- Every change in a conversation is an event with a gap-free seq per conversation, written in
-- the same transaction as the change: the conversation's reliable stream, kept for good.

CREATE TABLE chat_school_settings (
    school_id             INTEGER PRIMARY KEY REFERENCES schools(id) ON DELETE CASCADE,
    parents_to_teachers   INTEGER NOT NULL DEFAULT 1,
    parents_to_cpe        INTEGER NOT NULL DEFAULT 1,
    parents_to_staff      INTEGER NOT NULL DEFAULT 1,
    students_to_teachers  INTEGER NOT NULL DEFAULT 1,
    students_to_cpe       INTEGER NOT NULL DEFAULT 1,
    quiet_hours           INTEGER NOT NULL DEFAULT 1,
    day_start_min         INTEGER NOT NULL DEFAULT 420,
    day_end_min           INTEGER NOT NULL DEFAULT 1200
);

CREATE TABLE chat_conversations (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('direct', 'group', 'information', 'live')),
    title       TEXT NOT NULL DEFAULT '',
    creator_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    board_id    INTEGER UNIQUE REFERENCES boards(id) ON DELETE CASCADE,
    open        INTEGER NOT NULL DEFAULT 1,
    created_at  REAL NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,   -- the conversation's stream head
    last_at     REAL NOT NULL
);

CREATE TABLE chat_participants (
    conversation_id INTEGER NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at        REAL NOT NULL,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    muted           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX chat_participants_user ON chat_participants(user_id, conversation_id);

CREATE TABLE chat_messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    author_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body            TEXT NOT NULL,
    created_at      REAL NOT NULL,
    edited_at       REAL,
    deleted_at      REAL,
    deleted_by      INTEGER,
    recalled_at     REAL,
    UNIQUE (conversation_id, seq)
);

CREATE TABLE chat_events (
    conversation_id INTEGER NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL,     -- message | edited | deleted | recalled | closed | reopened | joined
    message_id      INTEGER,
    data            TEXT NOT NULL DEFAULT '{}',
    at              REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

CREATE TABLE chat_attachments (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id  INTEGER REFERENCES chat_messages(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    storage_key TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL
);
CREATE INDEX chat_attachments_message ON chat_attachments(message_id);

CREATE TABLE chat_acks (
    message_id INTEGER NOT NULL REFERENCES chat_messages(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at         REAL NOT NULL,
    PRIMARY KEY (message_id, user_id)
) WITHOUT ROWID;

CREATE TABLE chat_reports (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES chat_messages(id) ON DELETE CASCADE,
    reporter_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    school_id   INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    reason      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    UNIQUE (message_id, reporter_id)
);
CREATE INDEX chat_reports_school ON chat_reports(school_id, created_at DESC);

-- Search in one's own conversations; rowid = chat_messages.id. Accents do not matter:
-- "eleve" finds "élève".
CREATE VIRTUAL TABLE chat_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');

-- A new message takes the conversation's next seq (given in its INSERT), and its stream event
-- and search row are written by the same statement: one round trip for the hot path.
CREATE TRIGGER chat_message_stream AFTER INSERT ON chat_messages
BEGIN
    UPDATE chat_conversations SET last_seq = NEW.seq, last_at = NEW.created_at
        WHERE id = NEW.conversation_id;
    INSERT INTO chat_events (conversation_id, seq, kind, message_id, data, at)
        VALUES (NEW.conversation_id, NEW.seq, 'message', NEW.id, '{}', NEW.created_at);
    INSERT INTO chat_fts (rowid, body) SELECT NEW.id, NEW.body WHERE NEW.body != '';
END;
