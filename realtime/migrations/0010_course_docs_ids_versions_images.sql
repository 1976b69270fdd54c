-- Course documents (issue #18, items 9–11).

-- A deleted course's id is never given to another course: the ENT's webhook stream said
-- `course.deleted 6` then `course.changed 6` for a new course, because an INTEGER PRIMARY KEY
-- without AUTOINCREMENT takes max(id) + 1. Rebuilding course_docs with AUTOINCREMENT would
-- need foreign keys off (its children cascade), which a migration's transaction cannot do:
-- ids come from this AUTOINCREMENT registry instead, whose rows are never deleted. Ids freed
-- before this migration above the highest remaining one may be given once more.
CREATE TABLE course_doc_ids (
    id INTEGER PRIMARY KEY AUTOINCREMENT
);
INSERT INTO course_doc_ids (id) SELECT id FROM course_docs ORDER BY id;

-- Versions: kept by a person ('manual'), automatically while editing or when a session ends
-- ('auto'), or the content just before a restore ('restore').
ALTER TABLE course_doc_versions ADD COLUMN kind TEXT NOT NULL DEFAULT 'manual';

-- Images uploaded into a course, served under the course's policy.
CREATE TABLE course_doc_images (
    doc_id     INTEGER NOT NULL REFERENCES course_docs(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    mime       TEXT NOT NULL,
    data       BLOB NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (doc_id, sha256)
);
