-- Schema version 1 of the Postgres store. `{s}` is the store's schema, quoted.
-- Records are kept in their versioned byte form (`rec`); the columns beside them are
-- what claims, finishes and lookups need. See ARCHITECTURE.md, "Postgres store".

CREATE TABLE {s}.endpoints (
    id text PRIMARY KEY,
    max_concurrency integer NOT NULL,
    claimable boolean NOT NULL,
    data bytea NOT NULL
);

CREATE TABLE {s}.organizations (
    id text PRIMARY KEY,
    data bytea NOT NULL
);

-- Idempotency windows (SPEC §1); retention deletes those ended two windows ago.
CREATE TABLE {s}.windows (
    organization text NOT NULL,
    kind text NOT NULL,
    entity text NOT NULL,
    start_s bigint NOT NULL,
    PRIMARY KEY (organization, kind, entity)
);
CREATE INDEX windows_by_start ON {s}.windows (start_s);

-- One row per published event: the record without the payload's content, the content
-- raw in `body`, the domain (when any) for claims.
CREATE TABLE {s}.messages (
    organization text NOT NULL,
    event text NOT NULL,
    rec bytea NOT NULL,
    body bytea NOT NULL,
    domain text,
    PRIMARY KEY (organization, event)
);

-- One row per delivery: `rec` is the record as enqueued (the fields that never change);
-- the changing fields are columns. `head` marks the first open delivery of its chain
-- (endpoint, resource key): only heads are claimed.
CREATE TABLE {s}.deliveries (
    id text PRIMARY KEY,
    organization text NOT NULL,
    event text NOT NULL,
    endpoint text NOT NULL,
    resource_key text NOT NULL,
    seq bigint NOT NULL,
    status text NOT NULL,
    head boolean NOT NULL DEFAULT false,
    due_at_ms bigint NOT NULL,
    lease bigint NOT NULL DEFAULT 0,
    round_attempts integer NOT NULL DEFAULT 0,
    attempts bytea NOT NULL,
    finished_at_ms bigint,
    cancel_reason text,
    rec bytea NOT NULL
);
-- A chain's open deliveries in order: finds the next head, and cancels walk it.
CREATE INDEX deliveries_chains ON {s}.deliveries (endpoint, resource_key, seq)
    WHERE status IN ('pending', 'in_flight');
-- Heads by due time (a lease end for an in-flight head), per endpoint: claims.
CREATE INDEX deliveries_heads ON {s}.deliveries (endpoint, due_at_ms, id) WHERE head;

-- The secondary indexes of store/index.rs: binary members per set, scanned in byte order.
CREATE TABLE {s}.index_entries (
    set bytea NOT NULL,
    member bytea NOT NULL,
    PRIMARY KEY (set, member)
);

CREATE SEQUENCE {s}.delivery_seq;
CREATE SEQUENCE {s}.lease_seq;

INSERT INTO {s}.meta (key, value) VALUES ('config', 0) ON CONFLICT (key) DO NOTHING;
