-- API extraction: runs, the per-endpoint run log, cursors, conditional-request
-- state, trimmed raw records, and the tables API items are normalized into.

CREATE SEQUENCE extract_run_seq;
CREATE TABLE extract_runs (
    run_id BIGINT PRIMARY KEY DEFAULT nextval('extract_run_seq'),
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,            -- NULL: the run was interrupted
    exit_code INTEGER
);

-- One row per run, participant, platform and endpoint. items is NULL unless the
-- endpoint completed (ok or empty): a failure is never recorded as zero items.
-- items_stored counts what was kept from pages read before a failure.
CREATE TABLE extract_run_log (
    run_id BIGINT NOT NULL,
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    status VARCHAR NOT NULL,            -- ok | empty | failed | restricted | requires_reauth
    pages INTEGER NOT NULL,
    items BIGINT,
    items_stored BIGINT NOT NULL,
    requests INTEGER NOT NULL,
    not_modified INTEGER NOT NULL,      -- answered 304
    unchanged INTEGER NOT NULL,         -- 304s plus cursor pages with nothing new
    rate_limited INTEGER NOT NULL,      -- 429s (and GitHub 403 rate limits) received
    retries INTEGER NOT NULL,
    duration_s DOUBLE NOT NULL,
    window_start TIMESTAMPTZ,           -- oldest item the platform still served
    note VARCHAR,
    error VARCHAR,                      -- sanitized: no token, code or query string
    finished_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, participant_id, platform, endpoint)
);

-- Incremental state of stream endpoints: the newest item held, and while a walk
-- is in progress the next page to read and the newest item the walk has seen.
CREATE TABLE extract_cursors (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    high_water DOUBLE,
    resume_url VARCHAR,
    walk_high_water DOUBLE,
    window_start TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, platform, endpoint)
);

-- Validators per page URL, so a re-run asks with If-None-Match/If-Modified-Since.
-- next_page lets a 304 continue the walk without a body.
CREATE TABLE extract_pages (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    page_url VARCHAR NOT NULL,
    etag VARCHAR,
    last_modified VARCHAR,
    next_page VARCHAR,
    item_count INTEGER NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, platform, endpoint, page_url)
);

-- One row per item and endpoint, keyed by the platform's id, holding only the
-- fields features read. rank is the item's position for ranked lists.
CREATE TABLE api_records (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    rank INTEGER,
    payload JSON NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, platform, endpoint, item_id)
);

-- Repositories and public activity on code platforms.
CREATE TABLE code_repositories (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    repo_id VARCHAR NOT NULL,
    full_name VARCHAR NOT NULL,
    owned BOOLEAN NOT NULL,
    fork BOOLEAN NOT NULL,
    primary_language VARCHAR,
    created_at TIMESTAMPTZ,
    pushed_at TIMESTAMPTZ,
    PRIMARY KEY (participant_id, platform, repo_id)
);

CREATE TABLE code_languages (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    repo_id VARCHAR NOT NULL,
    language VARCHAR NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (participant_id, platform, repo_id, language)
);

CREATE TABLE code_activity (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,              -- the platform's event type, e.g. PushEvent
    repo_name VARCHAR,
    occurred_at TIMESTAMPTZ NOT NULL,   -- UTC
    PRIMARY KEY (participant_id, platform, event_id)
);

-- Servers, subreddits and followed channels the participant belongs to.
CREATE TABLE communities (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    community_id VARCHAR NOT NULL,
    name VARCHAR,
    kind VARCHAR NOT NULL,              -- guild | subreddit | channel
    owned BOOLEAN,                      -- NULL where the platform does not say
    joined_at TIMESTAMPTZ,
    PRIMARY KEY (participant_id, platform, community_id)
);

-- Reddit posts and comments: kind post | comment.
CREATE TABLE community_posts (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    post_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    community VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, platform, post_id)
);

CREATE TABLE video_subscriptions (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    channel_id VARCHAR NOT NULL,
    title VARCHAR,
    subscribed_at TIMESTAMPTZ,
    PRIMARY KEY (participant_id, platform, channel_id)
);

CREATE TABLE video_likes (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,
    video_id VARCHAR NOT NULL,
    title VARCHAR,
    channel_id VARCHAR,
    topics VARCHAR[],
    PRIMARY KEY (participant_id, platform, video_id)
);

-- Topic categories of channels (catalogue data, shared by participants).
CREATE TABLE channel_topics (
    platform VARCHAR NOT NULL,
    channel_id VARCHAR NOT NULL,
    topics VARCHAR[] NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (platform, channel_id)
);

-- Genres per artist (catalogue data, shared by participants, so one request per
-- artist serves the whole cohort).
CREATE TABLE artist_genres (
    artist_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    genres VARCHAR[] NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL
);

-- Ranked top artists and tracks per time range.
CREATE TABLE music_top_items (
    participant_id VARCHAR NOT NULL,
    item_type VARCHAR NOT NULL,         -- artist | track
    time_range VARCHAR NOT NULL,        -- short_term | medium_term | long_term
    item_id VARCHAR NOT NULL,
    rank INTEGER NOT NULL,
    name VARCHAR,
    artist_ids VARCHAR[],
    PRIMARY KEY (participant_id, item_type, time_range, item_id)
);

-- Interests per participant, weighted by engagement; written only when the study
-- opts in, because interests can reveal sensitive categories.
CREATE TABLE interests (
    participant_id VARCHAR NOT NULL,
    category VARCHAR NOT NULL,          -- music_genre | video_topic | subreddit | language | community
    label VARCHAR NOT NULL,
    weight DOUBLE NOT NULL,             -- share of the category's engagement, 0..1
    n_obs BIGINT NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (participant_id, category, label)
);

-- The Web API does not report how long a play lasted, so plays from it have an
-- unknown ms_played rather than an invented one.
ALTER TABLE listening_events ALTER COLUMN ms_played DROP NOT NULL;
