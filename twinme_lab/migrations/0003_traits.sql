-- Features, questionnaires and trait scores.

CREATE TABLE features (
    participant_id VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    value DOUBLE,                       -- NULL: not measurable from the data held
    n_obs BIGINT NOT NULL,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, feature)
);

CREATE TABLE questionnaire_answers (
    participant_id VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    item INTEGER NOT NULL,
    answer DOUBLE NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, instrument, item)
);

-- Scores on the instrument's mean-item scale. NULL when too many items are missing.
CREATE TABLE questionnaire_scores (
    participant_id VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    scale VARCHAR NOT NULL,
    score DOUBLE,
    n_items INTEGER NOT NULL,
    n_missing INTEGER NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, instrument, scale)
);

-- Predicted traits: a z-score against the reference, with the share of the trait's
-- mapping weight that had data. score is NULL with coverage 0 when nothing did.
CREATE TABLE trait_scores (
    participant_id VARCHAR NOT NULL,
    trait VARCHAR NOT NULL,
    score DOUBLE,
    coverage DOUBLE NOT NULL,
    n_obs BIGINT NOT NULL,
    mapping_version VARCHAR NOT NULL,
    reference VARCHAR NOT NULL,         -- cohort | shipped
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, trait)
);
