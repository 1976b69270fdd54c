-- PostgreSQL twin of migrations/0002_streams.sql.
-- Reliable streams: gap-free seq per named stream, bounded history, an epoch per incarnation.

CREATE TABLE streams (
    name        TEXT PRIMARY KEY,
    epoch       TEXT NOT NULL,
    seq         BIGINT NOT NULL DEFAULT 0,   -- the last seq handed out
    trimmed_to  BIGINT NOT NULL DEFAULT 0    -- every seq <= this is gone from history
);

-- SQLite's WITHOUT ROWID: a plain table here (the primary key is its index either way).
CREATE TABLE stream_events (
    stream   TEXT NOT NULL REFERENCES streams(name) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    ts       DOUBLE PRECISION NOT NULL,
    payload  BYTEA NOT NULL,
    PRIMARY KEY (stream, seq)
);
