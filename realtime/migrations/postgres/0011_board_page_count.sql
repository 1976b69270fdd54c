-- PostgreSQL twin of migrations/0011_board_page_count.sql.
-- « Reprendre le cours » shows each board's page count without decoding its snapshot: written
-- with every snapshot (a board open on a server reports its live count instead).
ALTER TABLE boards ADD COLUMN page_count BIGINT NOT NULL DEFAULT 1;
