-- Reliable streams: gap-free seq per named stream, bounded history, an epoch per incarnation.

CREATE TABLE streams (
    name        TEXT PRIMARY KEY,
    epoch       TEXT NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,   -- the last seq handed out
    trimmed_to  INTEGER NOT NULL DEFAULT 0    -- every seq <= this is gone from history
);

CREATE TABLE stream_events (
    stream   TEXT NOT NULL REFERENCES streams(name) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    ts       REAL NOT NULL,
    payload  BLOB NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
