"""Communication style from the participant's own messages, posts and comments.

The counts behind these features were measured from the text at import (see
``twinme_lab.imports.text_style``); the text itself is not needed here. Items are
the participant's own rows in ``written_items`` (Discord messages, LinkedIn
messages, shares and comments) with at least one character of text.

Word-list rates (first-person pronouns, positive and negative words) need English
text: they are NULL unless at least 10% of the participant's words are common
English function words. Positive and negative words come from AFINN-en-165
(Finn Årup Nielsen, 2011; Open Database License v1.0).

NOTE: the minimum of 20 items per feature (5 replies for response latency) and
the 10% English threshold are working choices, not values from a publication.
"""

from __future__ import annotations

from . import FeatureDefinition

SOURCE = ("written_items",)
MIN_ITEMS = 20
MIN_REPLIES = 5
MIN_ENGLISH_SHARE = 0.10

FEATURES = (
    FeatureDefinition(
        "comm_message_length",
        "Mean length of the participant's messages, posts and comments.",
        "characters",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_question_rate",
        "Share of items containing a question mark.",
        "ratio 0-1",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_exclamation_rate",
        "Share of items containing an exclamation mark.",
        "ratio 0-1",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_emoji_rate",
        "Emoji per item.",
        "emoji per item",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_first_singular_rate",
        "Share of words that are first-person singular pronouns (I, me, my, "
        "mine, myself and contractions). NULL for text that is not English.",
        "ratio 0-1",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_first_plural_rate",
        "Share of words that are first-person plural pronouns (we, us, our, "
        "ours, ourselves and contractions). NULL for text that is not English.",
        "ratio 0-1",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_positive_rate",
        "Share of words rated positive in AFINN-en-165. NULL for text that is "
        "not English.",
        "ratio 0-1",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_negative_rate",
        "Share of words rated negative in AFINN-en-165. NULL for text that is "
        "not English.",
        "ratio 0-1",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_response_latency",
        "Median time from another person's message to the participant's next "
        "message in the same conversation (LinkedIn messages; Discord packages "
        "hold only the participant's own messages). Messages in the same second "
        "count the participant's first, so no reply has a latency of 0.",
        "minutes",
        SOURCE,
        MIN_REPLIES,
    ),
    FeatureDefinition(
        "comm_night_share",
        "Share of items written between 00:00 and 05:59 local time. NULL without "
        "a time zone.",
        "ratio 0-1",
        SOURCE,
        MIN_ITEMS,
    ),
    FeatureDefinition(
        "comm_mean_hour",
        "Circular mean of the local hour of writing (0-24). NULL without a time zone.",
        "hour of day",
        SOURCE,
        MIN_ITEMS,
    ),
)

SQL = f"""
WITH own AS (
    SELECT w.participant_id, s.timezone, w.written_at, w.chars, w.words,
           w.questions, w.exclamations, w.emoji, w.first_singular,
           w.first_plural, w.positive_words, w.negative_words,
           w.english_function_words,
           timezone(coalesce(s.timezone, 'UTC'), w.written_at) AS local_ts
    FROM written_items w
    JOIN feature_scope s ON s.participant_id = w.participant_id
    WHERE w.is_own AND w.chars > 0
),
style AS (
    SELECT participant_id, count(*) AS n_obs, min(written_at) AS ws,
           max(written_at) AS we, any_value(timezone) AS timezone,
           avg(chars) AS length,
           avg(CASE WHEN questions > 0 THEN 1 ELSE 0 END) AS question_rate,
           avg(CASE WHEN exclamations > 0 THEN 1 ELSE 0 END) AS exclamation_rate,
           avg(emoji) AS emoji_rate,
           sum(words) AS words,
           sum(english_function_words) AS english_words,
           sum(first_singular) AS singular,
           sum(first_plural) AS plural,
           sum(positive_words) AS positive,
           sum(negative_words) AS negative,
           avg(CASE WHEN hour(local_ts) < 6 THEN 1 ELSE 0 END) AS night,
           avg(sin(2 * pi() * (hour(local_ts) + minute(local_ts) / 60) / 24)
               ORDER BY written_at) AS hour_sin,
           avg(cos(2 * pi() * (hour(local_ts) + minute(local_ts) / 60) / 24)
               ORDER BY written_at) AS hour_cos
    FROM own GROUP BY participant_id
),
english AS (
    SELECT *, words > 0 AND english_words >= {MIN_ENGLISH_SHARE} * words
              AS is_english
    FROM style
),
conversation AS (
    SELECT w.participant_id, w.is_own, w.written_at,
           lag(w.is_own) OVER turn AS previous_own,
           lag(w.written_at) OVER turn AS previous_at
    FROM written_items w
    JOIN feature_scope s ON s.participant_id = w.participant_id
    WHERE w.kind = 'message' AND w.conversation_key IS NOT NULL
    WINDOW turn AS (PARTITION BY w.participant_id, w.platform, w.conversation_key
                    ORDER BY w.written_at, w.is_own DESC, w.record_key,
                             w.record_ordinal)
),
latency AS (
    SELECT participant_id, count(*) AS n_obs, min(previous_at) AS ws,
           max(written_at) AS we,
           median(epoch(written_at) - epoch(previous_at)) / 60.0 AS minutes
    FROM conversation
    WHERE is_own AND previous_own = false
    GROUP BY participant_id
)
SELECT participant_id, 'comm_message_length' AS feature, length AS value, n_obs,
       ws AS window_start, we AS window_end
FROM style
UNION ALL
SELECT participant_id, 'comm_question_rate', question_rate, n_obs, ws, we
FROM style
UNION ALL
SELECT participant_id, 'comm_exclamation_rate', exclamation_rate, n_obs, ws, we
FROM style
UNION ALL
SELECT participant_id, 'comm_emoji_rate', emoji_rate, n_obs, ws, we
FROM style
UNION ALL
SELECT participant_id, 'comm_first_singular_rate',
       CASE WHEN is_english THEN singular / words END, n_obs, ws, we
FROM english
UNION ALL
SELECT participant_id, 'comm_first_plural_rate',
       CASE WHEN is_english THEN plural / words END, n_obs, ws, we
FROM english
UNION ALL
SELECT participant_id, 'comm_positive_rate',
       CASE WHEN is_english THEN positive / words END, n_obs, ws, we
FROM english
UNION ALL
SELECT participant_id, 'comm_negative_rate',
       CASE WHEN is_english THEN negative / words END, n_obs, ws, we
FROM english
UNION ALL
SELECT participant_id, 'comm_night_share',
       CASE WHEN timezone IS NOT NULL THEN night END, n_obs, ws, we
FROM style
UNION ALL
SELECT participant_id, 'comm_mean_hour',
       CASE WHEN timezone IS NOT NULL THEN
           (degrees(atan2(hour_sin, hour_cos)) / 15 + 24) % 24 END,
       n_obs, ws, we
FROM style
UNION ALL
SELECT participant_id, 'comm_response_latency', minutes, n_obs, ws, we
FROM latency
"""
