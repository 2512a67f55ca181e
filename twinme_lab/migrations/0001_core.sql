-- Core tables: schema bookkeeping, settings, participants, audit and deletions.
CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE workspace_settings (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE TABLE participants (
    participant_id VARCHAR PRIMARY KEY,
    timezone VARCHAR,
    consent_version VARCHAR,
    consent_at TIMESTAMPTZ,
    synthetic BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL
);

-- Counts only: never personal values.
CREATE SEQUENCE audit_seq;
CREATE TABLE audit_log (
    audit_id BIGINT PRIMARY KEY DEFAULT nextval('audit_seq'),
    occurred_at TIMESTAMPTZ NOT NULL,
    kind VARCHAR NOT NULL,
    participant_id VARCHAR,
    counts JSON NOT NULL
);

CREATE TABLE deletions (
    participant_id VARCHAR NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL
);

-- One row per imported file; the file is named by its base name and digest only,
-- because folder paths often carry a participant's real name.
CREATE SEQUENCE import_seq;
CREATE TABLE imports (
    import_id BIGINT PRIMARY KEY DEFAULT nextval('import_seq'),
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL,
    counts JSON NOT NULL
);
