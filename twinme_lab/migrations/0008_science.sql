-- Trait science: simulated cohorts with known truth, and trait mappings.

-- One row per simulate run. design holds the Design settings as JSON.
CREATE TABLE simulation_runs (
    run_id VARCHAR PRIMARY KEY,
    seed BIGINT NOT NULL,
    n_participants INTEGER NOT NULL,
    design JSON NOT NULL,
    effects_sha256 VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- The true traits of each simulated participant: z-score and the score on the
-- 1-5 mean-item scale of the Dolan et al. (2009) data they were drawn from.
CREATE TABLE simulation_truth (
    participant_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    trait VARCHAR NOT NULL,
    true_z DOUBLE NOT NULL,
    true_score DOUBLE NOT NULL,
    PRIMARY KEY (participant_id, trait)
);

-- The features as the simulator computed them from the records it wrote, to
-- compare with what the pipeline computes from the imported exports.
CREATE TABLE simulation_features (
    participant_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    value DOUBLE,
    PRIMARY KEY (participant_id, feature)
);

-- Per trait: R of the true trait with its best linear predictor from the
-- generated features (in sample and adjusted for the number of features), the
-- simulated scale's Cronbach's alpha, and ceiling = adjusted R * sqrt(alpha).
CREATE TABLE simulation_ceilings (
    run_id VARCHAR NOT NULL,
    trait VARCHAR NOT NULL,
    r_best_linear DOUBLE NOT NULL,
    r_best_linear_adjusted DOUBLE,      -- NULL when n <= n_features + 1
    alpha DOUBLE NOT NULL,
    ceiling DOUBLE,
    n INTEGER NOT NULL,
    n_features INTEGER NOT NULL,
    PRIMARY KEY (run_id, trait)
);

-- Mappings written by tuning (the shipped default lives in the package). document
-- is the whole mapping JSON, the same as workspace/mappings/<version>.json.
CREATE TABLE trait_mappings (
    version VARCHAR PRIMARY KEY,
    base_version VARCHAR,
    instrument VARCHAR NOT NULL,
    n_participants INTEGER NOT NULL,
    data_fingerprint VARCHAR NOT NULL,
    document JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
