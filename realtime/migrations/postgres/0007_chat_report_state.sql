-- PostgreSQL twin of migrations/0007_chat_report_state.sql.
-- A reported message can be marked « traité » by a CPE of its school, with a note. Handling
-- applies to every report of that message in that school; reopening clears the three fields.

ALTER TABLE chat_reports ADD COLUMN handled_at DOUBLE PRECISION;
ALTER TABLE chat_reports ADD COLUMN handled_by BIGINT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE chat_reports ADD COLUMN note TEXT;
