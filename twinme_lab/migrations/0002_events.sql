-- Behavioural events from exports (and later from platform APIs).
-- Times are UTC; the participant's zone lives in participants.timezone, and
-- time-of-day features convert at query time.
-- Not stored, by design: IP addresses, user agents, usernames, countries, device
-- names or ids, and the rows of Netflix profiles other than the chosen one.

-- One row per play. record_key is a digest of the play's identifying fields, and
-- record_ordinal counts identical plays within one file (1, 2, ...), so the same
-- file imported twice adds nothing while repeated plays inside a file all stay.
CREATE TABLE listening_events (
    participant_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,            -- spotify_account | spotify_extended | spotify_api
    kind VARCHAR NOT NULL,              -- music | podcast | audiobook | video
    ended_at TIMESTAMPTZ NOT NULL,      -- end of playback, UTC
    time_precision VARCHAR NOT NULL,    -- minute | second
    ms_played BIGINT NOT NULL,
    track_name VARCHAR,
    artist_name VARCHAR,
    album_name VARCHAR,
    track_uri VARCHAR,
    show_name VARCHAR,
    episode_name VARCHAR,
    episode_uri VARCHAR,
    audiobook_title VARCHAR,
    audiobook_uri VARCHAR,
    chapter_title VARCHAR,
    chapter_uri VARCHAR,
    skipped BOOLEAN,                    -- NULL where the export does not record it
    reason_start VARCHAR,
    reason_end VARCHAR,
    shuffle BOOLEAN,
    offline BOOLEAN,
    record_key VARCHAR NOT NULL,
    record_ordinal INTEGER NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key, record_ordinal)
);

CREATE TABLE library_items (
    participant_id VARCHAR NOT NULL,
    item_type VARCHAR NOT NULL,         -- track | album | artist | show | episode
                                        -- | banned_track | banned_artist
    name VARCHAR,
    artist_name VARCHAR,
    uri VARCHAR,
    record_key VARCHAR NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key)
);

-- One row per Netflix viewing of the chosen profile. started_at is set for
-- ViewingActivity.csv; NetflixViewingHistory.csv gives a date only (watched_on).
CREATE TABLE viewing_events (
    participant_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,            -- netflix_activity | netflix_history
    started_at TIMESTAMPTZ,
    watched_on DATE NOT NULL,
    time_precision VARCHAR NOT NULL,    -- second | day
    duration_s INTEGER,                 -- NULL where the export has no duration
    title VARCHAR NOT NULL,
    series_title VARCHAR,
    season VARCHAR,
    episode_title VARCHAR,
    is_episode BOOLEAN NOT NULL,
    supplemental_type VARCHAR,
    is_supplemental BOOLEAN NOT NULL,   -- trailers, hooks, recaps: never viewing
    attributes VARCHAR,
    record_key VARCHAR NOT NULL,
    record_ordinal INTEGER NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key, record_ordinal)
);
