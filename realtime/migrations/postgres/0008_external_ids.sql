-- PostgreSQL twin of migrations/0008_external_ids.sql.
-- One person key shared with the ENT: the AAF's ENTPersonJointure (optionally prefixed by an
-- academy prefix) for people, ENTStructureJointure for schools. SSO matches accounts on it;
-- the CSV and AAF imports set it. NULL for accounts outside the feed (demo, hand-made).

ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users(external_id) WHERE external_id IS NOT NULL;

ALTER TABLE schools ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX schools_external_id ON schools(external_id) WHERE external_id IS NOT NULL;
