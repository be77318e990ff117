-- 0001: sessions, locks and one-time ids.
--
-- Runs inside the migration transaction with search_path set to the store's
-- schema, so names are unqualified. Every table is prefixed bff_ because the
-- default schema is public, which the application's own tables may share.

-- One row per session. key is the SHA-256 of the session cookie (never the
-- cookie itself); data is sealed by the key ring, so a dump holds no token.
-- The CHECKs keep rows the store could not decode from being written at all.
CREATE TABLE bff_sessions (
    key             bytea       NOT NULL,
    version         bigint      NOT NULL,
    iss             text        NOT NULL,
    sub             text        NOT NULL,
    sid             text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    idle_expires_at timestamptz NOT NULL,
    data            bytea       NOT NULL,
    CONSTRAINT bff_sessions_pkey PRIMARY KEY (key),
    CONSTRAINT bff_sessions_key_length CHECK (octet_length(key) = 32),
    CONSTRAINT bff_sessions_version_positive CHECK (version > 0),
    CONSTRAINT bff_sessions_times_finite
        CHECK (isfinite(created_at) AND isfinite(expires_at) AND isfinite(idle_expires_at))
);

-- Back-channel logout by sid. Most sessions of some OPs have no sid; they
-- stay out of the index, and queries repeat the predicate (sid <> '') so
-- that generic plans of prepared statements can use it.
CREATE INDEX bff_sessions_iss_sid_idx ON bff_sessions (iss, sid) WHERE sid <> '';

-- Back-channel logout by sub, "log out everywhere" and ListBySub.
CREATE INDEX bff_sessions_iss_sub_idx ON bff_sessions (iss, sub);

-- DeleteExpired walks this instead of the table: a session ends at the
-- earlier of its absolute and idle ends. Queries spell the expression the
-- same way so the planner matches it.
CREATE INDEX bff_sessions_ends_at_idx ON bff_sessions ((least(expires_at, idle_expires_at)));

-- Named locks. token is the holder's random fencing token; expires_at is on
-- the database server's clock. Locks are released (deleted) after use, so the
-- table stays small and needs no expiry index.
CREATE TABLE bff_locks (
    name       text        NOT NULL,
    token      bytea       NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT bff_locks_pkey PRIMARY KEY (name)
);

-- One-time identifiers (logout-token jti, single-use login state), kept for
-- their ttl on the database server's clock. Nothing deletes them but
-- DeleteExpired, so it gets an expiry index.
CREATE TABLE bff_jti (
    id         text        NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT bff_jti_pkey PRIMARY KEY (id)
);

CREATE INDEX bff_jti_expires_at_idx ON bff_jti (expires_at);
