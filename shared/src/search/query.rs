//! `GET /search/messages`: the caller's current conversations, AND of prefix terms, newest first.
//!
//! 1. The terms: `q` trimmed, 1..=200 characters, at most 8 space-separated terms, normalised like the
//!    index ([`super::text`]); a term that segments into several words (`東京`) becomes several terms.
//! 2. The conversations: with `conversationId`, that one (a strongly consistent membership check, else
//!    404); else every member item of the caller (GSI1, 100 a Query).
//! 3. Per conversation a lane: its index partition `SRCH#<conversationId>`, read newest first below
//!    the cursor, [`FIRST_PAGE_MANY`] items a Query when the search spans several conversations
//!    ([`FIRST_PAGE_ONE`] when one), at most [`CONCURRENT_QUERIES`] at once. The Query's filter keeps
//!    the items whose word list has every term at the start of a word (and those without a list), so
//!    only matches come back, but `Limit` counts the items read: a page may hold none and still end
//!    early, and the lane's floor is then where the read stopped (its `LastEvaluatedKey`).
//! 4. Merge: the matches of lane c are complete down to its floor (when c has more); every match newer
//!    than the highest floor is known. While fewer than `limit` are, the lane that sets that floor is
//!    read further ([`FOLLOW_UP_PAGE`] items), at most [`MAX_FOLLOW_UPS`] times a query. The next
//!    cursor is where the known part ends.
//! 5. One strongly consistent BatchGetItem of the page's messages (and, without `conversationId`, the
//!    caller's member items of their conversations, so a member removed a moment ago finds nothing
//!    there even while GSI1 lags) re-checks each message against its current text: never encrypted,
//!    deleted, or matched by a word an edit took away, even before the indexer has caught up. A page
//!    can therefore hold fewer than `limit` items (none, even, when the reads ran out before a match)
//!    and still have a `nextCursor`; the walk goes on from there.
//!
//! The reads are bounded whatever the conversations hold (module `search` has the figures): at most
//! `N x FIRST_PAGE_MANY + MAX_FOLLOW_UPS x FOLLOW_UP_PAGE` index items for N conversations
//! (`FIRST_PAGE_ONE + MAX_FOLLOW_UPS x FOLLOW_UP_PAGE` for one), and `limit` messages.

use std::collections::{BTreeSet, HashSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{text, STORED_WORD_MAX};
use crate::context::AppContext;
use crate::domain::conversations::{membership, Page};
use crate::domain::messages::Message;
use crate::error::ApiError;
use crate::store::{MemberRecord, MessageRecord, SearchPage};
use crate::validate;

/// `q`'s length after trimming, in Unicode scalar values.
pub const QUERY_LEN: std::ops::RangeInclusive<usize> = 1..=200;
/// Space-separated terms of `q` at most.
pub const MAX_TERMS: usize = 8;
/// Index Queries in flight at once.
pub const CONCURRENT_QUERIES: usize = 32;
/// Further index pages one search reads at most after the first page of every conversation.
pub const MAX_FOLLOW_UPS: usize = 10;
/// Index items a lane's first page reads when the search spans several conversations: 25 items of a
/// typical message (about 160 bytes) are one 4 KB read, 0.5 RCU, the least a Query costs.
pub const FIRST_PAGE_MANY: usize = 25;
/// Index items the first page reads when the search spans one conversation (about 16 KB, 2 RCU).
pub const FIRST_PAGE_ONE: usize = 100;
/// Index items a follow-up page reads (about 32 KB, 4 RCU).
pub const FOLLOW_UP_PAGE: usize = 200;

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
    // Longest first (the order the filter tests them in). A term that starts another adds nothing (a word
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

/// One conversation's index partition, as far as it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lane {
    conversation_id: String,
    /// The oldest message id read, while more items may follow it.
    floor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    message_id: String,
    conversation_id: String,
}

/// What the merge of the lanes needs next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Read lane `lane` further, below `floor`.
    Read { lane: usize, floor: String },
    /// Stop: every match at or above `known_floor` is known (`None`: every match is).
    Done { known_floor: Option<String> },
}

/// The lanes and the matches read from them so far.
#[derive(Debug, Default)]
struct Merge {
    lanes: Vec<Lane>,
    candidates: Vec<Candidate>,
}

impl Merge {
    /// Takes a page read from lane `lane`: its matches, and where it stopped.
    fn take(&mut self, lane: usize, page: SearchPage) {
        let conversation_id = &self.lanes[lane].conversation_id;
        self.candidates
            .extend(page.message_ids.into_iter().map(|message_id| Candidate {
                message_id,
                conversation_id: conversation_id.clone(),
            }));
        self.lanes[lane].floor = page.floor;
    }

    /// Whether `limit` matches are known, or `follow_ups` pages were read already; else which lane to
    /// read further: the one whose floor is highest, since everything above it is complete.
    fn next(&self, limit: usize, follow_ups: usize) -> Next {
        let highest = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, lane)| lane.floor.as_ref().map(|f| (i, f)))
            .max_by(|a, b| a.1.cmp(b.1));
        let Some((lane, floor)) = highest else {
            return Next::Done { known_floor: None };
        };
        let known = self.candidates.iter().filter(|c| c.message_id >= *floor).count();
        if known >= limit || follow_ups >= MAX_FOLLOW_UPS {
            Next::Done {
                known_floor: Some(floor.clone()),
            }
        } else {
            Next::Read {
                lane,
                floor: floor.clone(),
            }
        }
    }

    /// The known matches, newest first, at most `limit`, and the position the next page starts below.
    fn page(self, known_floor: Option<String>, limit: usize) -> (Vec<Candidate>, Option<String>) {
        let mut known: Vec<Candidate> = self
            .candidates
            .into_iter()
            .filter(|c| known_floor.as_ref().is_none_or(|f| c.message_id >= *f))
            .collect();
        known.sort_by(|a, b| b.message_id.cmp(&a.message_id));
        known.dedup_by(|a, b| a.message_id == b.message_id);
        if known.len() > limit {
            known.truncate(limit);
            let next = known.last().map(|c| c.message_id.clone());
            (known, next)
        } else {
            (known, known_floor)
        }
    }
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
            let position = context.cursors().open(&scope, c, "cursor")?;
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

    // The stored words are cut to STORED_WORD_MAX characters: so are the terms the index is
    // filtered by (the final check reads the whole text).
    let cut_terms: Vec<String> = terms.iter().map(|t| text::cut(t, STORED_WORD_MAX).to_owned()).collect();
    let first_page = if conversations.len() == 1 {
        FIRST_PAGE_ONE
    } else {
        FIRST_PAGE_MANY
    };
    let mut merge = Merge {
        lanes: conversations
            .into_iter()
            .map(|conversation_id| Lane {
                conversation_id,
                floor: None,
            })
            .collect(),
        candidates: Vec::new(),
    };
    let (cut_ref, before_ref) = (&cut_terms, before.as_deref());
    let lanes: Vec<(usize, String)> = merge
        .lanes
        .iter()
        .map(|lane| lane.conversation_id.clone())
        .enumerate()
        .collect();
    let pages: Vec<(usize, SearchPage)> = stream::iter(lanes)
        .map(|(lane, id)| async move {
            let page = context.store.search_page(&id, cut_ref, before_ref, first_page).await?;
            Ok::<_, ApiError>((lane, page))
        })
        .buffer_unordered(CONCURRENT_QUERIES)
        .try_collect()
        .await?;
    for (lane, page) in pages {
        merge.take(lane, page);
    }

    // Read further where the known part ends, until a page is known or the budget is spent.
    let mut follow_ups = 0;
    let known_floor = loop {
        match merge.next(limit, follow_ups) {
            Next::Done { known_floor } => break known_floor,
            Next::Read { lane, floor } => {
                follow_ups += 1;
                let page = context
                    .store
                    .search_page(
                        &merge.lanes[lane].conversation_id,
                        &cut_terms,
                        Some(&floor),
                        FOLLOW_UP_PAGE,
                    )
                    .await?;
                merge.take(lane, page);
            }
        }
    };
    let (known, next_position) = merge.page(known_floor, limit);
    let next_cursor = next_position.map(|position| context.cursors().seal(&scope, &position));

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

    fn lane(id: &str, floor: Option<&str>) -> Lane {
        Lane {
            conversation_id: id.to_owned(),
            floor: floor.map(str::to_owned),
        }
    }

    fn page(ids: &[&str], floor: Option<&str>) -> SearchPage {
        SearchPage {
            message_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            floor: floor.map(str::to_owned),
        }
    }

    fn merge_of(lanes: &[&str]) -> Merge {
        Merge {
            lanes: lanes.iter().map(|id| lane(id, None)).collect(),
            candidates: Vec::new(),
        }
    }

    fn ids(candidates: &[Candidate]) -> Vec<&str> {
        candidates.iter().map(|c| c.message_id.as_str()).collect()
    }

    #[test]
    fn lanes_read_to_their_end_give_every_match() {
        let mut merge = merge_of(&["A", "B"]);
        merge.take(0, page(&["09", "05"], None));
        merge.take(1, page(&["07"], None));
        assert_eq!(merge.next(20, 0), Next::Done { known_floor: None });
        let (found, next) = merge.page(None, 20);
        assert_eq!((ids(&found), next), (vec!["09", "07", "05"], None));
        assert_eq!(found[1].conversation_id, "B");
    }

    #[test]
    fn the_lane_with_the_highest_floor_is_read_further() {
        let mut merge = merge_of(&["A", "B", "C"]);
        // A read down to 50 with one match, B down to 70 with none (its page held no match), C done.
        merge.take(0, page(&["90"], Some("50")));
        merge.take(1, page(&[], Some("70")));
        merge.take(2, page(&["80", "20"], None));
        // Known above 70: 90 and 80. Two of three: B is read further.
        assert_eq!(
            merge.next(3, 0),
            Next::Read {
                lane: 1,
                floor: "70".to_owned()
            }
        );
        merge.take(1, page(&["60"], None));
        // Now A sets the floor (50): 90, 80, 60 known above it.
        assert_eq!(
            merge.next(3, 1),
            Next::Done {
                known_floor: Some("50".to_owned())
            }
        );
        let (found, next) = merge.page(Some("50".to_owned()), 3);
        assert_eq!(ids(&found), ["90", "80", "60"]);
        assert_eq!(
            next.as_deref(),
            Some("50"),
            "20 (below A's floor) comes on the next page"
        );
    }

    #[test]
    fn the_follow_ups_are_bounded_and_the_page_ends_where_the_known_part_does() {
        let mut merge = merge_of(&["A"]);
        merge.take(0, page(&[], Some("90")));
        for follow_ups in 0..MAX_FOLLOW_UPS {
            assert!(matches!(merge.next(20, follow_ups), Next::Read { lane: 0, .. }));
            let floor = format!("{:02}", 80 - follow_ups);
            merge.take(0, page(&[], Some(&floor)));
        }
        let Next::Done { known_floor } = merge.next(20, MAX_FOLLOW_UPS) else {
            panic!("the budget is spent");
        };
        assert_eq!(known_floor.as_deref(), Some("71"));
        let (found, next) = merge.page(known_floor, 20);
        assert!(found.is_empty(), "no match among the items read");
        assert_eq!(next.as_deref(), Some("71"), "the walk goes on below what was read");
    }

    #[test]
    fn a_full_page_ends_at_its_last_match() {
        let mut merge = merge_of(&["A", "B"]);
        merge.take(0, page(&["99", "97", "95"], Some("94")));
        merge.take(1, page(&["98", "96"], Some("93")));
        assert_eq!(
            merge.next(3, 0),
            Next::Done {
                known_floor: Some("94".to_owned())
            }
        );
        let (found, next) = merge.page(Some("94".to_owned()), 3);
        assert_eq!(ids(&found), ["99", "98", "97"]);
        assert_eq!(next.as_deref(), Some("97"), "96 and 95 come next");
    }

    #[test]
    fn a_message_found_twice_is_listed_once() {
        let mut merge = merge_of(&["A"]);
        merge.take(0, page(&["9", "8"], Some("8")));
        merge.take(0, page(&["8", "7"], None));
        let (found, _) = merge.page(None, 20);
        assert_eq!(ids(&found), ["9", "8", "7"]);
    }
}
