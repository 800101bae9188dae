//! Work that follows a write but need not delay its reply (docs/ARCHITECTURE.md, "After the commit: the
//! table's stream"), done by the conversation worker from the table's stream. Every step is idempotent:
//! a record seen twice changes nothing the second time.
//!
//! - Listing: a group's newest activity is copied onto every member's list key (GSI1SK, see
//!   `store::conversations`), so the conversation list reads a bounded page. It costs one conditional
//!   UpdateItem per member (about 1 WCU for the item plus 2 for moving its GSI1 entry), done at most
//!   once per conversation per listing granularity however many messages arrive in between: a
//!   1000-member group costs at most 3,000 WCU per granularity window, a quiet one that cost per
//!   message. The senders' own keys move with the "Sent" step below, message by message.
//! - Sent: what follows a stored message but need not delay its send (issue 21's "work per message"),
//!   from the message's INSERT record: the conversation's `lastSeq`, `lastMessage` and activity (the
//!   newest message of the batch only), each sender's read marker and list key (their newest message),
//!   a direct conversation's two list keys, threads' `lastReplyAt` and mentions. Every write is
//!   conditional and only moves forward, so a record applied twice, or out of order, changes nothing.
//!   Cost: one GetItem of the META (a direct conversation's members), then per batch of a
//!   conversation's messages: the META (1 to 2 WCU, `lastMessage` in it), each sender's member item
//!   (read marker and list key in one update: 1 WCU and 2 for moving its GSI1 entry), a direct
//!   conversation's other member's list key (3), and 1 per mention and per thread.
//! - Changes (for `GET /sync`, `store::sync`): per conversation and batch, the members who left get
//!   their left items; if the conversation's previous sync window has ended, every member's sync
//!   key moves to the end of a new one (one conditional UpdateItem per member, at most once per
//!   sync window, `SYNC_WINDOW_MS`: 1 WCU and 2 for moving its GSI2 entry), else only new members' keys
//!   do; then one change item names the batch's changed messages and those created late (1 to 3
//!   WCU; none for a batch of new messages that arrived in time, which a sync finds by id).
//! - Purge: a deleted conversation's remaining items (messages, send claims, its position counter,
//!   throttle items) are deleted in rounds of at most [`PURGE_ROUND_ITEMS`]; a round that leaves
//!   more writes the `PURGE` marker, whose stream record starts the next round, so no invocation does
//!   unbounded work.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::ConversationKind;
use crate::store::{ConversationRecord, MessageRecord};
use crate::time::{epoch_ms, now};

/// Items one purge round deletes at most (40 BatchWriteItem calls).
pub const PURGE_ROUND_ITEMS: usize = 1000;
/// Member list keys updated at once.
const CONCURRENT_LISTINGS: usize = 32;

fn ulid_ms(id: &str) -> u64 {
    ulid::Ulid::from_string(id).map(|u| u.timestamp_ms()).unwrap_or(0)
}

/// Whether the group's activity is due to be copied onto its members' list keys.
pub fn listing_due(conversation: &ConversationRecord, granularity_ms: u64) -> bool {
    if conversation.kind != ConversationKind::Group {
        return false;
    }
    let listed = conversation.listed_activity.as_deref().unwrap_or(&conversation.id);
    conversation.activity.as_str() > listed && ulid_ms(&conversation.activity) >= ulid_ms(listed) + granularity_ms
}

/// Copies the group's activity onto every member's list key, then records that it did (members first,
/// so a failure part-way is retried in full).
pub async fn list_activity(context: &AppContext, conversation: &ConversationRecord) -> Result<(), ApiError> {
    if !listing_due(conversation, context.config.listing_granularity_ms) {
        return Ok(());
    }
    let members = context
        .fanout
        .members(&context.store, &conversation.id, conversation.members_version)
        .await?;
    // Owned ids: a closure over borrowed ones is not general enough for the worker's Send future.
    stream::iter(members.iter().cloned())
        .map(|member| async move {
            context
                .store
                .advance_listing(&conversation.id, &member, &conversation.activity)
                .await
        })
        .buffer_unordered(CONCURRENT_LISTINGS)
        .try_collect::<Vec<bool>>()
        .await?;
    context
        .store
        .mark_listed(&conversation.id, &conversation.activity)
        .await?;
    Ok(())
}

/// Records what follows the stored `messages` of one conversation (see the module's "Sent"); placeholders
/// (deleted at birth: a position a send gave up) move nothing, as they never did. Returns the META it
/// read, for the batch's [`record_changes`] of the same conversation to use rather than read again.
pub async fn record_sent(
    context: &AppContext,
    conversation_id: &str,
    messages: &[MessageRecord],
) -> Result<Option<ConversationRecord>, ApiError> {
    let sent: Vec<&MessageRecord> = messages.iter().filter(|m| !m.deleted).collect();
    let Some(newest) = sent.iter().max_by_key(|m| m.seq) else {
        return Ok(None);
    };
    // A conversation deleted meanwhile has nothing left to move.
    let Some(conversation) = context.store.get_conversation(conversation_id).await? else {
        return Ok(None);
    };
    let store = &context.store;
    // Each sender's newest message: its read marker, and in a group its own list key.
    let mut by_sender: BTreeMap<&str, &MessageRecord> = BTreeMap::new();
    for message in &sent {
        let slot = by_sender.entry(message.sender_id.as_str()).or_insert(message);
        if message.seq > slot.seq {
            *slot = message;
        }
    }
    // The members whose list keys a message moves directly: every sender's (with its read marker, one
    // write), and in a direct conversation the other member's too (a group's other members follow from
    // the META's record: `list_activity`).
    let listings: Vec<(&str, &str)> = conversation
        .direct_members
        .iter()
        .filter(|member| !by_sender.contains_key(member.as_str()))
        .map(|member| (member.as_str(), newest.id.as_str()))
        .collect();
    let mut threads: BTreeMap<&str, &str> = BTreeMap::new();
    for message in &sent {
        if let Some(parent) = &message.parent_message_id {
            let at = threads.entry(parent.as_str()).or_insert(message.created_at.as_str());
            if message.created_at.as_str() > *at {
                *at = message.created_at.as_str();
            }
        }
    }
    let mentions: Vec<(&str, u64)> = sent
        .iter()
        .flat_map(|m| {
            m.mentions
                .iter()
                .filter(move |user| **user != m.sender_id)
                .map(move |user| (user.as_str(), m.seq))
        })
        .collect();
    let meta = store.advance_conversation(newest);
    let reads = futures_util::future::try_join_all(by_sender.iter().map(|(sender, m)| {
        // A direct conversation's members are listed at its newest message, a group's sender
        // at its own (the group's newest reaches every member through `list_activity`).
        let activity = match conversation.direct_members.is_empty() {
            true => m.id.as_str(),
            false => newest.id.as_str(),
        };
        store.advance_sender(conversation_id, sender, m.seq, &m.id, activity)
    }));
    let lists = futures_util::future::try_join_all(
        listings
            .into_iter()
            .map(|(member, id)| store.advance_listing(conversation_id, member, id)),
    );
    let replies = futures_util::future::try_join_all(
        threads
            .into_iter()
            .map(|(parent, at)| store.advance_last_reply(conversation_id, parent, at)),
    );
    let mentioned = futures_util::future::try_join_all(
        mentions
            .into_iter()
            .map(|(user, seq)| store.add_mention(conversation_id, user, seq)),
    );
    futures_util::future::try_join5(meta, reads, lists, replies, mentioned).await?;
    Ok(Some(conversation))
}

/// What one batch of stream records changed in one conversation, for `GET /sync`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Messages changed (edited, deleted, reacted to, replied to).
    pub message_ids: BTreeSet<String>,
    /// Messages created: a sync finds them by their ids' time, so only those committed late need a
    /// change item (see [`LATE_INSERT_MS`]).
    pub created: BTreeSet<String>,
    /// Members whose item appeared.
    pub joined: BTreeSet<String>,
    /// Members whose item was removed.
    pub left: BTreeSet<String>,
    /// The conversation's own view changed (a rename, a new conversation).
    pub conversation: bool,
}

impl Changes {
    /// Whether the conversation's view changed other than by its messages.
    pub fn view_changed(&self) -> bool {
        self.conversation || !self.joined.is_empty() || !self.left.is_empty()
    }
}

/// A created message whose stream record reaches the worker this long after its id's time gets a
/// change item: a sync reads new messages by id from `SYNC_OVERLAP_MS` before its token, which holds
/// only for messages visible within that overlap of their id's time (a send slowed for seconds
/// between reserving its position and committing). Half the overlap leaves room for the worker's
/// clock and the read's eventual consistency.
pub const LATE_INSERT_MS: u64 = crate::domain::sync::SYNC_OVERLAP_MS / 2;

/// Records `changes` where `GET /sync` finds them (see the module's "Changes"): left items first,
/// then sync keys, then the change item stamped after the keys, so a key always says a time at or
/// after the change items it leads to. `known`: the META as this batch already read it (its window
/// and members version are what this needs; a member who joined since has a record of their own).
pub async fn record_changes(
    context: &AppContext,
    conversation_id: &str,
    changes: &Changes,
    known: Option<ConversationRecord>,
) -> Result<(), ApiError> {
    let store = &context.store;
    let stamp = || epoch_ms(now());
    let at = stamp();
    futures_util::future::try_join_all(
        changes
            .left
            .iter()
            .map(|user| store.record_left(user, conversation_id, at)),
    )
    .await?;
    // Deleted: every member's left item says so.
    let conversation = match known {
        Some(conversation) => conversation,
        None => match store.get_conversation(conversation_id).await? {
            Some(conversation) => conversation,
            None => return Ok(()),
        },
    };
    let window_end = conversation.synced_until.unwrap_or(0);
    let (keyed, until): (Vec<String>, u64) = if at >= window_end {
        let until = at + context.config.sync_window_ms;
        let mut members = context
            .fanout
            .members(store, conversation_id, conversation.members_version)
            .await?
            .to_vec();
        members.extend(changes.joined.iter().cloned());
        members.sort();
        members.dedup();
        (members, until)
    } else {
        (changes.joined.iter().cloned().collect(), window_end)
    };
    stream::iter(keyed)
        .map(|member| async move { store.advance_sync_key(conversation_id, &member, until).await })
        .buffer_unordered(CONCURRENT_LISTINGS)
        .try_collect::<Vec<bool>>()
        .await?;
    let until = (until > window_end).then_some(until);
    let view_changed = changes.view_changed().then_some(at);
    store.mark_synced(conversation_id, until, view_changed).await?;
    let mut recorded = changes.message_ids.clone();
    recorded.extend(
        changes
            .created
            .iter()
            .filter(|id| ulid_ms(id) + LATE_INSERT_MS < at)
            .cloned(),
    );
    store.record_changes(conversation_id, stamp(), &recorded).await
}

/// One round of a deleted conversation's clean-up (`round` 0 follows the META's removal).
pub async fn purge(context: &AppContext, conversation_id: &str, round: u64) -> Result<(), ApiError> {
    if context.store.purge_round(conversation_id, PURGE_ROUND_ITEMS).await? {
        context.store.mark_purge_round(conversation_id, round + 1).await
    } else {
        context.store.delete_purge_marker(conversation_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, activity: &str, listed: Option<&str>) -> ConversationRecord {
        ConversationRecord {
            id: id.to_owned(),
            kind: ConversationKind::Group,
            name: Some("g".to_owned()),
            created_by: "u".to_owned(),
            created_at: String::new(),
            updated_at: String::new(),
            member_count: 2,
            members_version: 1,
            last_seq: 1,
            last_message: None,
            activity: activity.to_owned(),
            direct_members: Vec::new(),
            pending_adds: Vec::new(),
            blocked_by: Vec::new(),
            listed_activity: listed.map(str::to_owned),
            synced_until: None,
            view_changed_at: None,
            slow_mode_seconds: 0,
            pin_count: 0,
        }
    }

    fn ulid_at(ms: u64) -> String {
        ulid::Ulid::from_parts(ms, 7).to_string()
    }

    #[test]
    fn listing_waits_for_the_granularity() {
        let created = ulid_at(1_000_000);
        assert!(!listing_due(&group(&created, &created, None), 0), "nothing new yet");
        assert!(listing_due(&group(&created, &ulid_at(1_000_001), None), 0));
        assert!(!listing_due(&group(&created, &ulid_at(1_004_000), None), 5000));
        assert!(listing_due(&group(&created, &ulid_at(1_005_000), None), 5000));
        let listed = ulid_at(1_010_000);
        assert!(
            !listing_due(&group(&created, &listed, Some(&listed)), 0),
            "already listed"
        );
        let mut direct = group(&created, &ulid_at(2_000_000), None);
        direct.kind = ConversationKind::Direct;
        assert!(
            !listing_due(&direct, 0),
            "a send moves both keys of a direct conversation itself"
        );
    }
}
