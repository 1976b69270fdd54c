-- Roll calls, marks and their corrections, absence events and reasons, guardians' notices,
-- Web Push subscriptions, study halls, reminders, and the log of staff reads.

CREATE TABLE study_halls (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    supervisor_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room          TEXT NOT NULL,
    weekday       INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start         TEXT NOT NULL,
    end           TEXT NOT NULL,
    UNIQUE (school_id, room, weekday, start)
);

CREATE TABLE rolls (
    id             INTEGER PRIMARY KEY,
    school_id      INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('course', 'study_hall')),
    class_id       INTEGER REFERENCES classes(id) ON DELETE CASCADE,
    slot_id        INTEGER REFERENCES course_slots(id) ON DELETE SET NULL,
    study_hall_id  INTEGER REFERENCES study_halls(id) ON DELETE SET NULL,
    date           TEXT NOT NULL,
    start          TEXT NOT NULL,
    end            TEXT NOT NULL,
    subject        TEXT NOT NULL DEFAULT '',
    teacher_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    replacement_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    state          TEXT NOT NULL CHECK (state IN ('todo', 'in_progress', 'done')),
    roster         TEXT NOT NULL DEFAULT '[]',       -- JSON array of student ids
    opened_by      INTEGER,
    opened_at      REAL,
    validated_by   INTEGER,
    validated_at   REAL,
    version        INTEGER NOT NULL DEFAULT 0,
    absent_count   INTEGER NOT NULL DEFAULT 0,       -- kept after the details are purged
    late_count     INTEGER NOT NULL DEFAULT 0,
    purged         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rolls_slot_date ON rolls(slot_id, date) WHERE slot_id IS NOT NULL;
CREATE UNIQUE INDEX rolls_hall_date ON rolls(study_hall_id, date)
    WHERE study_hall_id IS NOT NULL;
CREATE INDEX rolls_school_date ON rolls(school_id, date);
CREATE INDEX rolls_class_date ON rolls(class_id, date);

CREATE TABLE marks (
    roll_id     INTEGER NOT NULL REFERENCES rolls(id) ON DELETE CASCADE,
    student_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    minutes     INTEGER,
    must_attend INTEGER NOT NULL DEFAULT 0,
    comment     TEXT NOT NULL DEFAULT '',
    by          INTEGER NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (roll_id, student_id)
) WITHOUT ROWID;
CREATE INDEX marks_student ON marks(student_id);

CREATE TABLE roll_corrections (
    id          INTEGER PRIMARY KEY,
    roll_id     INTEGER NOT NULL REFERENCES rolls(id) ON DELETE CASCADE,
    student_id  INTEGER NOT NULL,
    before      TEXT,                                -- JSON of the mark, or null
    after       TEXT NOT NULL,
    by          INTEGER NOT NULL,
    at          REAL NOT NULL
);
CREATE INDEX roll_corrections_roll ON roll_corrections(roll_id);

CREATE TABLE absence_reasons (
    school_id   INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    code        TEXT NOT NULL,
    label       TEXT NOT NULL,
    justifying  INTEGER NOT NULL,
    legal       INTEGER NOT NULL DEFAULT 0,
    active      INTEGER NOT NULL DEFAULT 1,
    position    INTEGER NOT NULL,
    PRIMARY KEY (school_id, code)
);

CREATE TABLE absence_events (
    id             INTEGER PRIMARY KEY,
    school_id      INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    student_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    roll_id        INTEGER NOT NULL REFERENCES rolls(id) ON DELETE CASCADE,
    date           TEXT NOT NULL,
    start          TEXT NOT NULL,
    end            TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('absent', 'late')),
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
CREATE INDEX absence_events_student ON absence_events(student_id, date);
CREATE INDEX absence_events_school ON absence_events(school_id, justification, date);

-- A guardian's notices: the durable truth behind the feed stream `attendance:guardian:<id>`.
-- stream_seq is null until published (an outbox: a crash between commit and publish is
-- caught up by the maintenance sweep).
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    guardian_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    student_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_id     INTEGER REFERENCES absence_events(id) ON DELETE CASCADE,
    date         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    read_at      REAL,
    stream_epoch TEXT,
    stream_seq   INTEGER
);
CREATE INDEX notifications_guardian ON notifications(guardian_id, id DESC);
CREATE INDEX notifications_outbox ON notifications(stream_seq) WHERE stream_seq IS NULL;

CREATE TABLE push_subscriptions (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint    TEXT NOT NULL UNIQUE,
    p256dh      TEXT NOT NULL,
    auth        TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);

CREATE TABLE roll_reminders (
    slot_id   INTEGER NOT NULL,
    date      TEXT NOT NULL,
    sent_at   REAL NOT NULL,
    PRIMARY KEY (slot_id, date)
);

-- Every read of a student's absence record by a member of staff (data of minors).
CREATE TABLE attendance_access_log (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    actor_id    INTEGER NOT NULL,
    actor_role  TEXT NOT NULL,
    student_id  INTEGER NOT NULL,
    what        TEXT NOT NULL
);
CREATE INDEX attendance_access_log_student ON attendance_access_log(student_id, at);
