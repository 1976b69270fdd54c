-- Course documents co-edited with Yjs: metadata, access list, an append-only update log,
-- a compacted snapshot (covering every update id <= snapshot_upto) and named versions.

CREATE TABLE course_docs (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
    owner_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    snapshot      BLOB,                       -- Yjs update v1 merging every update <= snapshot_upto
    snapshot_upto INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX course_docs_owner ON course_docs(owner_id, updated_at DESC);

-- Other teachers of the school who may edit.
CREATE TABLE course_doc_editors (
    doc_id     INTEGER NOT NULL REFERENCES course_docs(id) ON DELETE CASCADE,
    teacher_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (doc_id, teacher_id)
);
CREATE INDEX course_doc_editors_teacher ON course_doc_editors(teacher_id);

-- Classes the document is shared with, read-only or editable by the students.
CREATE TABLE course_doc_classes (
    doc_id   INTEGER NOT NULL REFERENCES course_docs(id) ON DELETE CASCADE,
    class_id INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    mode     TEXT NOT NULL CHECK (mode IN ('read', 'edit')),
    PRIMARY KEY (doc_id, class_id)
);
CREATE INDEX course_doc_classes_class ON course_doc_classes(class_id);

-- Every Yjs update, appended durably before it is relayed; compaction folds a prefix into
-- course_docs.snapshot and deletes it in the same transaction.
CREATE TABLE course_doc_updates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id     INTEGER NOT NULL REFERENCES course_docs(id) ON DELETE CASCADE,
    data       BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX course_doc_updates_doc ON course_doc_updates(doc_id, id);

-- Named versions ("checkpoints"): the full state at that moment.
CREATE TABLE course_doc_versions (
    id         INTEGER PRIMARY KEY,
    doc_id     INTEGER NOT NULL REFERENCES course_docs(id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    state      BLOB NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at REAL NOT NULL
);
CREATE INDEX course_doc_versions_doc ON course_doc_versions(doc_id, created_at DESC);
