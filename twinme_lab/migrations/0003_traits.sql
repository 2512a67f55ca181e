-- Features, questionnaires and trait scores.

-- One row per participant and feature. value is NULL when the data held cannot
-- measure it (no rows of the source, fewer than the feature's minimum
-- observations, or no time zone for a time-of-day feature); n_obs still counts
-- the rows that were there.
CREATE TABLE features (
    participant_id VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    value DOUBLE,
    n_obs BIGINT NOT NULL,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, feature)
);

-- Raw item answers as given, before any reversal; a missing answer has no row.
CREATE TABLE questionnaire_answers (
    participant_id VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    item INTEGER NOT NULL,
    answer DOUBLE NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, instrument, item)
);

-- Scores on the instrument's mean-item scale. NULL when too many items are missing.
-- trait names the Big Five trait a scale measures (openness for IPIP-50's
-- Intellect/Imagination), NULL for a scale stored only as the other pole's source
-- (emotional_stability, whose reverse pole is stored as neuroticism).
CREATE TABLE questionnaire_scores (
    participant_id VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    scale VARCHAR NOT NULL,
    trait VARCHAR,
    score DOUBLE,
    n_items INTEGER NOT NULL,
    n_missing INTEGER NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, instrument, scale)
);

-- Predicted traits: a weighted mean of feature z-scores, with the share of the
-- trait's absolute mapping weight that had data. score is NULL with coverage 0 when
-- nothing did. reference is cohort, shipped, mixed (features standardized both
-- ways) or none (no evidence). details holds each weighted feature's value,
-- z-score, weight and reference as a JSON list.
CREATE TABLE trait_scores (
    participant_id VARCHAR NOT NULL,
    trait VARCHAR NOT NULL,
    score DOUBLE,
    coverage DOUBLE NOT NULL,
    n_obs BIGINT NOT NULL,
    mapping_version VARCHAR NOT NULL,
    reference VARCHAR NOT NULL,
    data_fingerprint VARCHAR NOT NULL,
    details JSON NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, trait)
);

-- Every scoring run, appended. data_fingerprint is a sha256 over the participant's
-- feature rows, the reference values used and the mapping, so two runs with the
-- same fingerprint scored the same evidence.
CREATE SEQUENCE trait_run_seq;
CREATE TABLE trait_score_history (
    run_id BIGINT NOT NULL,
    participant_id VARCHAR NOT NULL,
    trait VARCHAR NOT NULL,
    score DOUBLE,
    coverage DOUBLE NOT NULL,
    n_obs BIGINT NOT NULL,
    mapping_version VARCHAR NOT NULL,
    reference VARCHAR NOT NULL,
    data_fingerprint VARCHAR NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, participant_id, trait)
);
