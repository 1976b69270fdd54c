-- Schools, people and the week's timetable: the directory every feature scopes by.

CREATE TABLE schools (
    id    INTEGER PRIMARY KEY,
    uai   TEXT NOT NULL UNIQUE,          -- code UAI (ex-RNE), 7 digits + a letter
    name  TEXT NOT NULL,
    town  TEXT NOT NULL
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    login       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role        TEXT NOT NULL CHECK (role IN ('teacher','student','parent','cpe','staff','admin')),
    name        TEXT NOT NULL,
    school_id   INTEGER REFERENCES schools(id) ON DELETE RESTRICT,
    code_hash   TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    CHECK (role = 'admin' OR role = 'parent' OR school_id IS NOT NULL)
);
CREATE INDEX users_school ON users(school_id, role);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    revoked_at  REAL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE classes (
    id         INTEGER PRIMARY KEY,
    school_id  INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,                 -- "6e A"
    level      TEXT NOT NULL CHECK (level IN ('6e','5e','4e','3e')),
    UNIQUE (school_id, name)
);

CREATE TABLE enrollments (
    student_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    class_id   INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE
);
CREATE INDEX enrollments_class ON enrollments(class_id);

CREATE TABLE guardianships (
    guardian_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    student_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    relation    TEXT NOT NULL DEFAULT 'responsable légal',
    PRIMARY KEY (guardian_id, student_id)
);
CREATE INDEX guardianships_student ON guardianships(student_id);

CREATE TABLE teachings (
    teacher_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    class_id   INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    subject    TEXT NOT NULL,
    PRIMARY KEY (teacher_id, class_id, subject)
);
CREATE INDEX teachings_class ON teachings(class_id);

CREATE TABLE course_slots (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    class_id    INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    teacher_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    room        TEXT NOT NULL,
    weekday     INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),   -- ISO: 1 = lundi
    start       TEXT NOT NULL CHECK (start GLOB '[0-2][0-9]:[0-5][0-9]'),
    end         TEXT NOT NULL CHECK (end GLOB '[0-2][0-9]:[0-5][0-9]'),
    CHECK (start < end),
    UNIQUE (class_id, weekday, start),
    UNIQUE (teacher_id, weekday, start)
);
CREATE INDEX course_slots_class ON course_slots(class_id, weekday);
CREATE INDEX course_slots_teacher ON course_slots(teacher_id, weekday);
