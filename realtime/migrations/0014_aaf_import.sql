-- The académie's directory feed (AAF): what the import keeps beside the accounts.
--
-- users.source = 'aaf' marks the accounts the feed manages (a full snapshot that no longer
-- names one disables it); users.feed_disabled = 1 when the feed is what disabled it, so the
-- account is re-enabled if it comes back (an account disabled by hand stays disabled) and
-- deleted after the configured delay, counted from users.disabled_at (migration 0013).

ALTER TABLE users ADD COLUMN source TEXT;
ALTER TABLE users ADD COLUMN feed_disabled INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_source ON users(source) WHERE source IS NOT NULL;

-- Guardians' contact details from the feed (PersRelEleve): the school team only reads them.
CREATE TABLE guardian_contacts (
    guardian_id  INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    home_phone   TEXT NOT NULL DEFAULT '',
    work_phone   TEXT NOT NULL DEFAULT '',
    mobile_phone TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL DEFAULT ''
);

-- Groups (« structure$code » in the feed: language sets, options), their pupils and teachers.
CREATE TABLE class_groups (
    id         INTEGER PRIMARY KEY,
    school_id  INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    code       TEXT NOT NULL,
    name       TEXT NOT NULL,
    UNIQUE (school_id, code)
);

CREATE TABLE group_members (
    group_id   INTEGER NOT NULL REFERENCES class_groups(id) ON DELETE CASCADE,
    student_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, student_id)
);
CREATE INDEX group_members_student ON group_members(student_id);

CREATE TABLE group_teachings (
    teacher_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id   INTEGER NOT NULL REFERENCES class_groups(id) ON DELETE CASCADE,
    subject    TEXT NOT NULL,
    PRIMARY KEY (teacher_id, group_id, subject)
);

-- The form tutor (professeur principal) of a class: ENTAuxEnsClassesPrincipal.
CREATE TABLE class_tutors (
    class_id   INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    teacher_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (class_id, teacher_id)
);
CREATE INDEX class_tutors_teacher ON class_tutors(teacher_id);
