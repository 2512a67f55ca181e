-- Data-export history from YouTube (Google Takeout), Discord and LinkedIn.
-- Times are UTC. Other people (contacts, message partners, commenters) appear only
-- as keyed pseudonyms (*_key columns: HMAC-SHA256 under a key derived from the
-- workspace key), never by name, e-mail address or profile URL.

-- One row per Takeout history entry. Ads (details say "From Google Ads") have kind
-- 'ad' and never count as watching. Takeout records no durations, so duration_s
-- stays NULL for its rows.
CREATE TABLE youtube_events (
    participant_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,              -- watch | search | visit | ad
    occurred_at TIMESTAMPTZ NOT NULL,
    time_precision VARCHAR NOT NULL,    -- millisecond | second
    product VARCHAR NOT NULL,           -- header: YouTube | YouTube Music | ...
    video_id VARCHAR,
    video_title VARCHAR,                -- NULL for removed videos
    channel_id VARCHAR,
    channel_name VARCHAR,
    removed BOOLEAN NOT NULL,           -- the video was removed before the export
    duration_s INTEGER,
    search_query VARCHAR,               -- search text, stored only with --keep-text
    record_key VARCHAR NOT NULL,
    record_ordinal INTEGER NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key, record_ordinal)
);

-- Discord channels the participant wrote in, with their kind from channel.json.
-- partner_key is the pseudonym of a direct message's other recipients; guild and
-- channel names are not stored (old packages name DM partners in channel names).
CREATE TABLE discord_channels (
    participant_id VARCHAR NOT NULL,
    channel_id VARCHAR NOT NULL,
    channel_kind VARCHAR NOT NULL,      -- dm | group_dm | guild | thread | unknown
    guild_id VARCHAR,
    partner_key VARCHAR,
    recipient_count INTEGER,            -- NULL where channel.json lists none
    record_key VARCHAR NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key)
);

-- Messages, posts and comments. For the participant's own items (is_own) the
-- style counts were measured from the text at import; the text itself is kept
-- only with --keep-text. Other people's messages (LinkedIn conversations) keep
-- their time and author pseudonym only, for response latency.
CREATE TABLE written_items (
    participant_id VARCHAR NOT NULL,
    platform VARCHAR NOT NULL,          -- discord | linkedin
    kind VARCHAR NOT NULL,              -- message | comment | share
    item_id VARCHAR,                    -- the platform's message id where it has one
    written_at TIMESTAMPTZ NOT NULL,
    time_precision VARCHAR NOT NULL,    -- second | microsecond
    conversation_key VARCHAR,           -- Discord channel id, LinkedIn pseudonym
    is_own BOOLEAN NOT NULL,
    author_key VARCHAR,                 -- pseudonym of another author; NULL if own
    target_key VARCHAR,                 -- pseudonym of the post commented or shared
    chars INTEGER,
    words INTEGER,
    questions INTEGER,
    exclamations INTEGER,
    emoji INTEGER,
    first_singular INTEGER,
    first_plural INTEGER,
    positive_words INTEGER,
    negative_words INTEGER,
    english_function_words INTEGER,     -- common English words, pronouns excluded
    lexicon VARCHAR,                    -- word list behind positive/negative_words
    mentions INTEGER,                   -- Discord user mentions (<@id>, <@!id>)
    attachments INTEGER,
    body VARCHAR,                       -- the text, only with --keep-text
    record_key VARCHAR NOT NULL,
    record_ordinal INTEGER NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key, record_ordinal)
);

-- LinkedIn connections: a pseudonym and the date only (no name, e-mail, URL,
-- company or position of the other person).
CREATE TABLE linkedin_connections (
    participant_id VARCHAR NOT NULL,
    contact_key VARCHAR,                -- NULL when the row has no name and no URL
    connected_on DATE NOT NULL,
    record_key VARCHAR NOT NULL,
    record_ordinal INTEGER NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key, record_ordinal)
);

CREATE TABLE linkedin_invitations (
    participant_id VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,         -- INCOMING | OUTGOING
    sent_at TIMESTAMP NOT NULL,         -- local time of the export, minute precision
    contact_key VARCHAR,
    has_message BOOLEAN NOT NULL,
    record_key VARCHAR NOT NULL,
    record_ordinal INTEGER NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key, record_ordinal)
);

-- The participant's own career, education and skills. Dates are the first day of
-- the month or year given; *_precision says which.
CREATE TABLE linkedin_positions (
    participant_id VARCHAR NOT NULL,
    company VARCHAR,
    title VARCHAR,
    started_on DATE,
    started_precision VARCHAR,          -- month | year
    finished_on DATE,                   -- NULL: current position
    finished_precision VARCHAR,
    record_key VARCHAR NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key)
);

CREATE TABLE linkedin_education (
    participant_id VARCHAR NOT NULL,
    school VARCHAR,
    degree VARCHAR,
    started_on DATE,
    started_precision VARCHAR,
    finished_on DATE,
    finished_precision VARCHAR,
    record_key VARCHAR NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key)
);

CREATE TABLE linkedin_skills (
    participant_id VARCHAR NOT NULL,
    skill VARCHAR NOT NULL,
    record_key VARCHAR NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key)
);

-- Profile.csv holds the participant's own name, birth date, address and handles;
-- only the industry is kept.
CREATE TABLE linkedin_profile (
    participant_id VARCHAR NOT NULL,
    industry VARCHAR,
    record_key VARCHAR NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key)
);

CREATE TABLE linkedin_reactions (
    participant_id VARCHAR NOT NULL,
    reacted_at TIMESTAMPTZ NOT NULL,
    reaction VARCHAR NOT NULL,          -- LIKE | APPRECIATION | EMPATHY | ...
    target_key VARCHAR,                 -- pseudonym of the post reacted to
    record_key VARCHAR NOT NULL,
    record_ordinal INTEGER NOT NULL,
    import_id BIGINT NOT NULL,
    PRIMARY KEY (participant_id, record_key, record_ordinal)
);
