-- PostgreSQL twin of migrations/0015_sso_logins.sql.
-- Sign-ins through the ENT's SSO (docs/identity.md). One row per session opened by CAS,
-- OpenID Connect or SAML, keyed by a SHA-256 of what the provider handed us once: the CAS
-- service ticket (which is also the SessionIndex of CAS back-channel logout requests), the
-- OIDC nonce, the SAML assertion's ID. The primary key makes a replayed ticket fail on every
-- node sharing the database; the session column lets a back-channel logout find the session
-- to end, and our logout know that it may also end the CAS session. Rows go with their
-- session.

CREATE TABLE sso_logins (
    provider    TEXT NOT NULL CHECK (provider IN ('cas', 'oidc', 'saml')),
    index_hash  TEXT NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (provider, index_hash)
);
CREATE INDEX sso_logins_session ON sso_logins(session_id);

-- SAML authentication requests waiting for their answer (InResponseTo), shared by every node:
-- an answer is accepted once, for a request this service sent less than ten minutes ago.
CREATE TABLE saml_requests (
    id          TEXT PRIMARY KEY,
    next_path   TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX saml_requests_created ON saml_requests(created_at);
