-- OAuth connections: one row per participant and platform. Tokens are AES-GCM
-- ciphertexts (see twinme_lab/vault.py); key_id names the master key that sealed
-- them. origin is 'platform' or 'sandbox', so a token is only sent where it was
-- issued.
CREATE TABLE connections (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    origin VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    status_reason VARCHAR,
    granted_scopes VARCHAR,
    consented_at TIMESTAMPTZ NOT NULL,
    key_id VARCHAR NOT NULL,
    access_token BLOB,
    refresh_token BLOB,
    token_type VARCHAR,
    expires_at TIMESTAMPTZ,
    refreshed_at TIMESTAMPTZ,
    validated_at TIMESTAMPTZ,
    last_extraction_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, platform)
);

-- Pending authorization requests. Only hashes are stored: the state and PKCE
-- verifier stay in the memory of the process that started the request.
CREATE TABLE oauth_states (
    state_sha256 VARCHAR PRIMARY KEY,
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    origin VARCHAR NOT NULL,
    verifier_sha256 VARCHAR,
    redirect_uri VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
