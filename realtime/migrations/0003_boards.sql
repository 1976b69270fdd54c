-- Live classroom boards: metadata, durable snapshots (the stream holds the ops since), images.

CREATE TABLE boards (
    id             INTEGER PRIMARY KEY,
    school_id      INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    class_id       INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    slot_id        INTEGER REFERENCES course_slots(id) ON DELETE SET NULL,
    owner_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title          TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'locked', 'ended')),
    pen_all        INTEGER NOT NULL DEFAULT 0,
    pen            TEXT NOT NULL DEFAULT '[]',      -- JSON array of student ids
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    snapshot       BLOB,                            -- BoardState.dump() at (snapshot_epoch, snapshot_seq)
    snapshot_epoch TEXT,
    snapshot_seq   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX boards_class ON boards(class_id, updated_at DESC);

CREATE TABLE board_images (
    board_id   INTEGER NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    mime       TEXT NOT NULL,
    data       BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (board_id, sha256)
);
