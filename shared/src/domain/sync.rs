//! `GET /sync?since=`: everything that changed in the caller's conversations since a token, in one
//! answer (docs/API-GUIDE.md "Catching up: sync"; the keys it reads are in `store::sync`).
//!
//! A token is a time (the start of the sync that gave it), sealed for its user. The answer reads
//! from [`SYNC_OVERLAP_MS`] before that time: a write stamped just before a sync started can become
//! visible just after it read, and the overlap makes the next sync see it (the price: a change can
//! be answered twice, which clients dedupe by id, as they do events). The work is one Query of the
//! caller's sync partition, one BatchGetItem of the changed conversations' METAs, and per changed
//! conversation one Query of its new messages, one of its change items and one BatchGetItem of the
//! messages with the caller's reactions: nothing is read
//! for a conversation that did not change. A key stays ahead of its conversation's last change for a
//! sync window (`store::sync`), so a conversation found by its key is answered only if one of its
//! messages or its own view (`viewChangedAt`) changed since the token.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use super::conversations::{with_own_reactions, Conversation};
use super::messages::{decorate_read, Message};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{activity_key, keys, HistoryBound, SyncEntry};
use crate::time::{epoch_ms, now};

/// How far before its token's time a sync reads (see the module comment): longer than a stamped
/// write takes to become visible, and than the containers' clocks disagree.
pub const SYNC_OVERLAP_MS: u64 = 5_000;
/// A token older than this is `410 gone` (change records are kept a day longer).
pub const TOKEN_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Conversations in one answer; more are answered with `more: true` and a token that continues.
pub const CONVERSATIONS_PER_ANSWER: usize = 100;
/// Changed message ids read for one conversation at most; a conversation with more is `limited`.
const CHANGES_READ_CAP: usize = 2_000;
/// Conversations whose messages are read at once.
const CONCURRENT_CONVERSATIONS: usize = 8;

/// One changed conversation of a sync answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedConversation {
    pub conversation: Conversation,
    /// Created or changed since the token, ascending by `seq`, each once in its current state.
    pub messages: Vec<Message>,
    /// More messages changed than `messages` holds: the client pages on with `after=`.
    pub limited: bool,
}

/// `GET /sync`'s answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncAnswer {
    pub next: String,
    pub conversations: Vec<SyncedConversation>,
    pub removed: Vec<String>,
    /// More changed conversations than one answer holds: call again with `next` at once.
    pub more: bool,
}

/// Where a token says to continue from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// The time (epoch ms) the sync that gave the token started.
    since_ms: u64,
    /// Within an answer that had `more`: the last sync key answered.
    after: Option<String>,
}

fn scope(me: &str) -> String {
    format!("SYNC#{me}")
}

impl Token {
    fn position(&self) -> String {
        match &self.after {
            Some(after) => format!("v1:{}:{after}", self.since_ms),
            None => format!("v1:{}", self.since_ms),
        }
    }

    fn parse(position: &str) -> Option<Token> {
        let rest = position.strip_prefix("v1:")?;
        let (since, after) = match rest.split_once(':') {
            Some((since, after)) => (since, Some(after.to_owned())),
            None => (rest, None),
        };
        Some(Token {
            since_ms: since.parse().ok()?,
            after,
        })
    }
}

fn seal(context: &AppContext, me: &str, token: &Token) -> String {
    context.cursors().seal(&scope(me), &token.position())
}

fn open(context: &AppContext, me: &str, raw: &str, now_ms: u64) -> Result<Token, ApiError> {
    let invalid = || ApiError::invalid("since", "is not a sync token given to you");
    let position = context
        .cursors()
        .open(&scope(me), raw, "since")
        .map_err(|_| invalid())?;
    let token = Token::parse(&position).ok_or_else(invalid)?;
    if token.since_ms + TOKEN_MAX_AGE.as_millis() as u64 <= now_ms {
        return Err(ApiError::Gone(
            "This sync token is more than 30 days old: load the conversation list and history again, then sync from a new token."
                .to_owned(),
        ));
    }
    Ok(token)
}

/// The answer to `GET /sync?since=&limit=` for `me`.
pub async fn sync(context: &AppContext, me: &str, since: Option<&str>, limit: usize) -> Result<SyncAnswer, ApiError> {
    let now_ms = epoch_ms(now());
    let fresh = |now_ms| Token {
        since_ms: now_ms,
        after: None,
    };
    let Some(raw) = since else {
        return Ok(SyncAnswer {
            next: seal(context, me, &fresh(now_ms)),
            conversations: Vec::new(),
            removed: Vec::new(),
            more: false,
        });
    };
    let token = open(context, me, raw, now_ms)?;
    let from_ms = token.since_ms.saturating_sub(SYNC_OVERLAP_MS);
    let after = token.after.clone().unwrap_or_else(|| keys::sync_key(from_ms, ""));
    let (entries, more) = context.store.sync_entries(me, &after, CONVERSATIONS_PER_ANSWER).await?;
    let next = match (more, entries.last()) {
        (true, Some(last)) => Token {
            since_ms: token.since_ms,
            after: Some(last.key().to_owned()),
        },
        _ => fresh(now_ms),
    };

    // Each conversation once: a member item says it is (still, or again) the caller's.
    let mut members = BTreeMap::new();
    let mut left = BTreeSet::new();
    for entry in entries {
        match entry {
            SyncEntry::Member(member) => {
                left.remove(&member.conversation_id);
                members.insert(member.conversation_id.clone(), member);
            }
            SyncEntry::Left { conversation_id, .. } => {
                if !members.contains_key(&conversation_id) {
                    left.insert(conversation_id);
                }
            }
        }
    }
    let ids: Vec<String> = members.keys().cloned().collect();
    let metas = context.store.batch_get_conversations(&ids).await?;
    let mut views: Vec<(Conversation, u64)> = Vec::new();
    for (id, member) in &members {
        match metas.iter().find(|meta| &meta.id == id) {
            // Deleted since: nothing of it is left to show.
            None => {
                left.insert(id.clone());
            }
            // Part of an add still being written: not the caller's yet (its key moves again once
            // the add commits and the conversation changes).
            Some(meta) if !meta.admits(member) => {}
            Some(meta) => views.push((
                Conversation::new(meta.clone(), member),
                meta.view_changed_at.unwrap_or(0),
            )),
        }
    }
    with_own_reactions(context, me, views.iter_mut().map(|(view, _)| view)).await?;
    let answered: Vec<Option<SyncedConversation>> = stream::iter(views)
        .map(|(view, view_changed_at)| async move {
            let synced = changed_messages(context, me, view, from_ms, limit).await?;
            // A key found inside its window says "may have changed": answered only if it did.
            let changed = !synced.messages.is_empty() || synced.limited || view_changed_at >= from_ms;
            Ok::<_, ApiError>(changed.then_some(synced))
        })
        .buffer_unordered(CONCURRENT_CONVERSATIONS)
        .try_collect()
        .await?;
    let mut conversations: Vec<SyncedConversation> = answered.into_iter().flatten().collect();
    conversations.sort_by_cached_key(|c| {
        let activity = c
            .conversation
            .last_message
            .as_ref()
            .map_or(&c.conversation.id, |m| &m.id);
        std::cmp::Reverse(activity_key(activity, &c.conversation.id))
    });
    Ok(SyncAnswer {
        next: seal(context, me, &next),
        conversations,
        removed: left.into_iter().collect(),
        more,
    })
}

/// The conversation's messages changed from `from_ms`: the lowest `limit` by `seq`, so that paging on
/// with `after=` from the last one reaches the rest.
async fn changed_messages(
    context: &AppContext,
    me: &str,
    conversation: Conversation,
    from_ms: u64,
    limit: usize,
) -> Result<SyncedConversation, ApiError> {
    // New messages by their ids' time (those committed late also have change items), changed ones
    // by their change items.
    let after = ulid::Ulid::from_parts(from_ms, 0).to_string();
    let (created, more_created) = context
        .store
        .messages_page(&conversation.id, &HistoryBound::After(after), limit)
        .await?;
    let (mut ids, overflow) = context
        .store
        .changed_message_ids(&conversation.id, from_ms, CHANGES_READ_CAP)
        .await?;
    ids.extend(created.into_iter().map(|m| m.id));
    // Ids grow with `seq`, so the lowest ids are the lowest positions; a new message not read has a
    // higher id than every one read.
    let limited = more_created || overflow || ids.len() > limit;
    let keys: Vec<(String, String)> = ids
        .into_iter()
        .take(limit)
        .map(|id| (conversation.id.clone(), id))
        .collect();
    let (mut records, mine) = context.store.messages_with_own_reactions(me, &keys).await?;
    records.sort_by_key(|r| r.seq);
    let messages = decorate_read(context, records, mine).await?;
    Ok(SyncedConversation {
        conversation,
        messages,
        limited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_position_round_trips() {
        for token in [
            Token {
                since_ms: 1_795_420_800_123,
                after: None,
            },
            Token {
                since_ms: 1_795_420_800_123,
                after: Some("1795420810000#01JCONVERSATION".to_owned()),
            },
        ] {
            assert_eq!(Token::parse(&token.position()), Some(token));
        }
        assert_eq!(Token::parse("v2:1"), None);
        assert_eq!(Token::parse("v1:soon"), None);
    }
}
