-- Attendance as a CPE runs it (issue 19): reminders and flags of rolls not taken or not
-- validated, the school calendar (zone, the collège's own closures), « départ anticipé » as
-- an absence event, guardians' proposals (with an optional supporting document) and the
-- CPE's decisions kept side by side, advance declarations, and the roll's full history.
-- migrate: foreign_keys off

-- absence_events.kind gains 'left_early': SQLite cannot alter a CHECK, so the table is
-- rebuilt (the documented 12-step procedure; foreign keys are off around this file).
CREATE TABLE absence_events_new (
    id             INTEGER PRIMARY KEY,
    school_id      INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    student_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    roll_id        INTEGER NOT NULL REFERENCES rolls(id) ON DELETE CASCADE,
    date           TEXT NOT NULL,
    start          TEXT NOT NULL,
    end            TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('absent', 'late', 'left_early')),
    minutes        INTEGER,
    cancelled      INTEGER NOT NULL DEFAULT 0,
    justification  TEXT NOT NULL DEFAULT 'none'
                   CHECK (justification IN ('none', 'given', 'accepted', 'refused')),
    reason_code    TEXT,
    reason_comment TEXT NOT NULL DEFAULT '',
    given_by       INTEGER,
    given_at       REAL,
    decided_by     INTEGER,
    decided_at     REAL,
    UNIQUE (roll_id, student_id)
);
INSERT INTO absence_events_new SELECT id, school_id, student_id, roll_id, date, start, end,
    kind, minutes, cancelled, justification, reason_code, reason_comment, given_by, given_at,
    decided_by, decided_at FROM absence_events;
DROP TABLE absence_events;
ALTER TABLE absence_events_new RENAME TO absence_events;
CREATE INDEX absence_events_student ON absence_events(student_id, date);
CREATE INDEX absence_events_school ON absence_events(school_id, justification, date);

-- Reminders to the teacher and flags on the CPE's grid, each at most once per roll, day and
-- kind across processes (the row is the lock). target: 'slot:<id>' or 'hall:<id>'.
CREATE TABLE roll_alerts (
    target    TEXT NOT NULL,
    date      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('not_started', 'in_progress', 'unfinished')),
    school_id INTEGER NOT NULL,
    sent_at   REAL NOT NULL,
    PRIMARY KEY (target, date, kind)
);
CREATE INDEX roll_alerts_school ON roll_alerts(school_id, date);

-- The school calendar: the zone (null: from the UAI's département) and, for the public
-- holidays of Alsace-Moselle, the département ('57', '67', '68'; null: general).
CREATE TABLE school_calendars (
    school_id   INTEGER PRIMARY KEY REFERENCES schools(id) ON DELETE CASCADE,
    zone        TEXT CHECK (zone IN ('A', 'B', 'C')),
    subdivision TEXT
);

-- The collège's own days without classes (bridge days, exam days, a strike closure…).
CREATE TABLE school_closures (
    id         INTEGER PRIMARY KEY,
    school_id  INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    start      TEXT NOT NULL,
    end        TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_by INTEGER,
    created_at REAL NOT NULL,
    UNIQUE (school_id, start, end, label)
);
CREATE INDEX school_closures_school ON school_closures(school_id, start);

-- A correction says why; every step of a roll is kept (who, what, when, why).
ALTER TABLE roll_corrections ADD COLUMN reason TEXT NOT NULL DEFAULT '';
CREATE TABLE roll_history (
    id         INTEGER PRIMARY KEY,
    roll_id    INTEGER NOT NULL REFERENCES rolls(id) ON DELETE CASCADE,
    at         REAL NOT NULL,
    by         INTEGER NOT NULL,
    action     TEXT NOT NULL,                   -- open, mark, validate, replace
    student_id INTEGER,
    before     TEXT,                            -- JSON of the mark, or null
    after      TEXT,
    reason     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX roll_history_roll ON roll_history(roll_id, id);

-- A guardian's reason is a proposal: each kept, never overwritten by the other guardian's.
CREATE TABLE absence_proposals (
    id             INTEGER PRIMARY KEY,
    event_id       INTEGER NOT NULL REFERENCES absence_events(id) ON DELETE CASCADE,
    guardian_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason_code    TEXT NOT NULL,
    comment        TEXT NOT NULL DEFAULT '',
    declaration_id INTEGER,
    created_at     REAL NOT NULL
);
CREATE INDEX absence_proposals_event ON absence_proposals(event_id, id);

-- A supporting document (a photo of a medical certificate): purged with its absence.
CREATE TABLE absence_documents (
    id           INTEGER PRIMARY KEY,
    proposal_id  INTEGER NOT NULL REFERENCES absence_proposals(id) ON DELETE CASCADE,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    data         BLOB NOT NULL,
    created_at   REAL NOT NULL
);
CREATE INDEX absence_documents_proposal ON absence_documents(proposal_id);

-- Every decision of the CPE, kept with who and when (the event holds only the latest).
CREATE TABLE absence_decisions (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES absence_events(id) ON DELETE CASCADE,
    decided_by  INTEGER NOT NULL,
    decided_at  REAL NOT NULL,
    accepted    INTEGER NOT NULL,
    reason_code TEXT,
    comment     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX absence_decisions_event ON absence_decisions(event_id, id);

-- « Mon enfant sera absent jeudi »: shown on the teacher's roll, then a proposal.
CREATE TABLE absence_declarations (
    id           INTEGER PRIMARY KEY,
    school_id    INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    student_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    guardian_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    date_from    TEXT NOT NULL,
    date_to      TEXT NOT NULL,
    part         TEXT NOT NULL DEFAULT 'day' CHECK (part IN ('day', 'morning', 'afternoon')),
    reason_code  TEXT NOT NULL,
    comment      TEXT NOT NULL DEFAULT '',
    created_at   REAL NOT NULL,
    cancelled_at REAL
);
CREATE INDEX absence_declarations_student ON absence_declarations(student_id, date_from);
