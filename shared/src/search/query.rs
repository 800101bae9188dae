//! `GET /search/messages`: the caller's current conversations, AND of prefix terms, newest first.
//!
//! 1. The terms: `q` trimmed, 1..=200 characters, at most 8 space-separated terms, normalised like the
//!    index ([`super::text`]); a term that segments into several words (`東京`) becomes several terms.
//! 2. The conversations: with `conversationId`, that one (a strongly consistent membership check, else
//!    404); else every member item of the caller (GSI1, 100 a Query).
//! 3. The driving term is the longest (most selective); per conversation one Query of
//!    `IDX#<conversationId>#<driving term cut to PREFIX_MAX>`, newest first, below the cursor, at most
//!    [`CONCURRENT_QUERIES`] at once. An entry is kept when its word list satisfies every term.
//! 4. Merge: entries of conversation c are complete down to the oldest one read from c (when c has
//!    more); every match newer than the highest such floor is known. While fewer than `limit` are, the
//!    conversation that sets that floor is read further, at most [`MAX_FOLLOW_UPS`] times a query.
//!    The next cursor is where the known part ends.
//! 5. One strongly consistent BatchGetItem of the page's messages (and, without `conversationId`, the
//!    caller's member items of their conversations, so a member removed a moment ago finds nothing
//!    there even while GSI1 lags) re-checks each message against its current text: never encrypted,
//!    deleted, or matched by a word an edit took away, even before the indexer has caught up. A page
//!    can therefore hold fewer than `limit` items and still have a `nextCursor`.

use std::collections::{BTreeSet, HashSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{text, PREFIX_MAX, STORED_WORD_MAX};
use crate::context::AppContext;
use crate::domain::conversations::{membership, Page};
use crate::domain::messages::Message;
use crate::error::ApiError;
use crate::store::{IndexEntry, MemberRecord, MessageRecord};
use crate::validate;

/// `q`'s length after trimming, in Unicode scalar values.
pub const QUERY_LEN: std::ops::RangeInclusive<usize> = 1..=200;
/// Space-separated terms of `q` at most.
pub const MAX_TERMS: usize = 8;
/// Index Queries in flight at once.
pub const CONCURRENT_QUERIES: usize = 32;
/// Further index pages one search reads at most after the first page of every conversation.
pub const MAX_FOLLOW_UPS: usize = 10;
/// Entries a first page reads per conversation when the search spans several (one that spans one
/// reads `limit + 1`): 25 entries of about 150 bytes fit the smallest read (0.5 RCU).
const FIRST_PAGE_MANY: usize = 25;
/// Entries a follow-up page reads.
const FOLLOW_UP_PAGE: usize = 100;

/// The normalised terms of `q` (distinct, longest first), or `validation_failed` on `q`.
pub fn terms(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::invalid("q", "is required: the words to search for"))?;
    let q = validate::text("q", raw, QUERY_LEN)?;
    let typed = q.split_whitespace().count();
    if typed > MAX_TERMS {
        return Err(ApiError::invalid(
            "q",
            format!("may have at most {MAX_TERMS} terms (it has {typed})"),
        ));
    }
    let mut terms = text::distinct_words(&q);
    if terms.is_empty() {
        return Err(ApiError::invalid("q", "has no letters or digits to search for"));
    }
    // Longest first: the first is the driving term. A term that starts another adds nothing (a word
    // that starts with the longer one starts with it too).
    terms.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then_with(|| a.cmp(b)));
    let mut kept: Vec<String> = Vec::with_capacity(terms.len());
    for term in terms {
        if !kept.iter().any(|k| k.starts_with(term.as_str())) {
            kept.push(term);
        }
    }
    Ok(kept)
}

/// The list a cursor belongs to: this caller, this conversation (or all), these terms.
fn scope(me: &str, conversation_id: Option<&str>, terms: &[String]) -> String {
    format!("SEARCH#{me}#{}#{}", conversation_id.unwrap_or("*"), terms.join(" "))
}

/// One conversation's index partition for the driving term, as far as it has been read.
struct Lane {
    conversation_id: String,
    /// The oldest message id read, while more entries follow it.
    floor: Option<String>,
}

struct Candidate {
    message_id: String,
    conversation_id: String,
}

fn keep(entry: &IndexEntry, cut_terms: &[String]) -> bool {
    entry
        .words
        .as_ref()
        .is_none_or(|words| text::matches_all(words, cut_terms))
}

/// Reads one page of a lane and adds its matches.
async fn read_lane(
    context: &AppContext,
    conversation_id: &str,
    driving: &str,
    before: Option<&str>,
    page: usize,
    cut_terms: &[String],
) -> Result<(Vec<Candidate>, Option<String>), ApiError> {
    let (entries, more) = context.store.index_page(conversation_id, driving, before, page).await?;
    let floor = if more {
        entries.last().map(|e| e.message_id.clone())
    } else {
        None
    };
    let found = entries
        .into_iter()
        .filter(|e| keep(e, cut_terms))
        .map(|e| Candidate {
            message_id: e.message_id,
            conversation_id: conversation_id.to_owned(),
        })
        .collect();
    Ok((found, floor))
}

/// A page of the caller's messages matching `q`, newest first (see the module comment).
pub async fn search(
    context: &AppContext,
    me: &str,
    q: Option<&str>,
    conversation_id: Option<&str>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Message>, ApiError> {
    let terms = terms(q)?;
    let conversation_id = conversation_id
        .map(|id| validate::ulid("conversationId", id))
        .transpose()?;
    let scope = scope(me, conversation_id.as_deref(), &terms);
    let before = cursor
        .map(|c| {
            let position = context.cursors.open(&scope, c, "cursor")?;
            validate::ulid("cursor", &position)
                .map_err(|_| ApiError::invalid("cursor", "is not a cursor this list gave out"))
        })
        .transpose()?;

    // The conversations, and which need their META read to judge a pending add.
    let (conversations, pending): (Vec<String>, HashSet<String>) = match &conversation_id {
        Some(id) => {
            membership(context, id, me).await?;
            (vec![id.clone()], HashSet::new())
        }
        None => {
            let memberships: Vec<MemberRecord> = context.store.all_memberships(me).await?;
            let pending = memberships
                .iter()
                .filter(|m| m.pending_add.is_some())
                .map(|m| m.conversation_id.clone())
                .collect();
            let ids: BTreeSet<String> = memberships.into_iter().map(|m| m.conversation_id).collect();
            (ids.into_iter().collect(), pending)
        }
    };
    if conversations.is_empty() {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    }

    let driving = text::cut(&terms[0], PREFIX_MAX).to_owned();
    let cut_terms: Vec<String> = terms.iter().map(|t| text::cut(t, STORED_WORD_MAX).to_owned()).collect();
    let first_page = if conversations.len() == 1 {
        limit + 1
    } else {
        (limit + 1).min(FIRST_PAGE_MANY)
    };
    let (driving_ref, cut_ref, before_ref) = (&driving, &cut_terms, before.as_deref());
    let pages: Vec<(Vec<Candidate>, Lane)> = stream::iter(conversations)
        .map(|id| async move {
            let (found, floor) = read_lane(context, &id, driving_ref, before_ref, first_page, cut_ref).await?;
            Ok::<_, ApiError>((
                found,
                Lane {
                    conversation_id: id,
                    floor,
                },
            ))
        })
        .buffer_unordered(CONCURRENT_QUERIES)
        .try_collect()
        .await?;
    let mut candidates = Vec::new();
    let mut lanes = Vec::with_capacity(pages.len());
    for (found, lane) in pages {
        candidates.extend(found);
        lanes.push(lane);
    }

    // Read further where the known part ends, until a page is known or the budget is spent.
    let mut follow_ups = 0;
    let known_floor = loop {
        let floor = lanes
            .iter()
            .enumerate()
            .filter_map(|(i, lane)| lane.floor.as_ref().map(|f| (i, f.clone())))
            .max_by(|a, b| a.1.cmp(&b.1));
        let Some((lane, floor)) = floor else {
            break None;
        };
        let known = candidates.iter().filter(|c| c.message_id >= floor).count();
        if known >= limit || follow_ups >= MAX_FOLLOW_UPS {
            break Some(floor);
        }
        follow_ups += 1;
        let (found, next) = read_lane(
            context,
            &lanes[lane].conversation_id,
            &driving,
            Some(&floor),
            FOLLOW_UP_PAGE,
            &cut_terms,
        )
        .await?;
        candidates.extend(found);
        lanes[lane].floor = next;
    };

    let mut known: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| known_floor.as_ref().is_none_or(|f| c.message_id >= *f))
        .collect();
    known.sort_by(|a, b| b.message_id.cmp(&a.message_id));
    known.dedup_by(|a, b| a.message_id == b.message_id);
    let next_cursor = if known.len() > limit {
        known.truncate(limit);
        known.last().map(|c| c.message_id.clone())
    } else {
        known_floor
    }
    .map(|position| context.cursors.seal(&scope, &position));

    let wanted: Vec<(String, String)> = known
        .iter()
        .map(|c| (c.conversation_id.clone(), c.message_id.clone()))
        .collect();
    let hit_conversations: BTreeSet<String> = known.iter().map(|c| c.conversation_id.clone()).collect();
    let (members_of, metas_of): (Vec<String>, Vec<String>) = if conversation_id.is_some() {
        (Vec::new(), Vec::new())
    } else {
        (
            hit_conversations.iter().cloned().collect(),
            hit_conversations
                .iter()
                .filter(|c| pending.contains(*c))
                .cloned()
                .collect(),
        )
    };
    let hits = if wanted.is_empty() {
        Default::default()
    } else {
        context.store.search_hits(&wanted, me, &members_of, &metas_of).await?
    };
    let still_member = |conversation: &str| -> bool {
        if conversation_id.is_some() {
            return true;
        }
        let Some(member) = hits.members.iter().find(|m| m.conversation_id == conversation) else {
            return false;
        };
        if member.pending_add.is_none() {
            return true;
        }
        hits.metas
            .iter()
            .find(|meta| meta.id == conversation)
            .is_some_and(|meta| meta.admits(member))
    };
    let mut records: Vec<MessageRecord> = hits
        .messages
        .into_iter()
        .filter(|m| !m.encrypted && !m.deleted && still_member(&m.conversation_id))
        .filter(|m| text::matches_all(&text::distinct_words(&m.body), &terms))
        .collect();
    records.sort_by(|a, b| b.id.cmp(&a.id));
    // Results carry `reactions` and the caller's `myReactions` like every other read.
    let items = crate::domain::messages::decorate(context, me, records).await?;
    Ok(Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(raw: Option<&str>) -> String {
        match terms(raw) {
            Err(ApiError::Validation { details, .. }) => {
                assert_eq!(details[0].field, "q");
                details[0].problem.clone()
            }
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn terms_are_normalised_longest_first_without_redundant_ones() {
        assert_eq!(terms(Some("  Café  ")).unwrap(), ["cafe"]);
        assert_eq!(terms(Some("to TOMORROW cafe")).unwrap(), ["tomorrow", "cafe"]);
        assert_eq!(terms(Some("東京")).unwrap(), ["京", "東"]);
        assert_eq!(terms(Some("привет мир")).unwrap(), ["привет", "мир"]);
    }

    #[test]
    fn bad_queries_are_refused() {
        assert!(problem(None).contains("required"));
        assert!(problem(Some("")).contains("empty"));
        assert!(problem(Some(" \t\n ")).contains("empty"));
        assert!(problem(Some(&"a".repeat(201))).contains("1 to 200"));
        assert!(terms(Some(&"a".repeat(200))).is_ok());
        assert!(problem(Some("a b c d e f g h i")).contains("at most 8"));
        assert!(terms(Some("a b c d e f g h")).is_ok());
        assert!(problem(Some("!!! ???")).contains("no letters"));
        assert!(problem(Some("bad\u{7}bell")).contains("control"));
    }
}
