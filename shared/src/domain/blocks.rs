//! Blocks (docs/API-GUIDE.md "Conversations and members"): a user may block anyone else. A user who blocked you
//! - cannot be sent into a direct conversation or a group by you (`403 forbidden`): see
//!   [`blocked_by`], which opening a direct conversation and adding group members call;
//! - gets no `typing` and no `presence` from you: see [`blockers_of`], which those fan-outs leave out;
//! - no longer takes your sends in a direct conversation you already had (`403 forbidden`): [`block`]
//!   records itself in that conversation's META (`blockedBy`), which the send reads anyway.
//!
//! The rule is symmetric for direct conversations: a blocker cannot open a direct conversation with
//! someone they blocked either (unblock first), so a block never leaves one side able to reach the
//! other through a new direct conversation. [`either_blocked`] answers that in one read.
//!
//! A block is private: it shows only in the blocker's own list, never in the blocked user's.
//! The list is in the blocked users' id order (ULIDs, so roughly by when those users signed up), which
//! keeps its cursor a plain key; each item carries the block's `createdAt`.

use serde::Serialize;

use super::conversations::Page;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::BlockOutcome;
use crate::time::{now, rfc3339};

/// An item of `GET /users/me/blocks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    pub user_id: String,
    pub created_at: String,
}

fn not_yourself(me: &str, other: &str) -> Result<(), ApiError> {
    if me == other {
        return Err(ApiError::invalid("userId", "you cannot block or unblock yourself"));
    }
    Ok(())
}

/// Blocks `other` (a canonical ULID); blocking again changes nothing. `not_found` for an unknown user.
/// A direct conversation between the two gets the block in its META, so `other` can no longer send
/// there (done again by a repeated block, so a block whose marking failed is completed by its retry).
pub async fn block(context: &AppContext, me: &str, other: &str) -> Result<(), ApiError> {
    not_yourself(me, other)?;
    match context.store.put_block(me, other, &rfc3339(now())).await? {
        BlockOutcome::Blocked | BlockOutcome::AlreadyBlocked => {
            mark_direct_conversation(context, me, other, true).await
        }
        BlockOutcome::NoSuchUser => Err(ApiError::NotFound("There is no user with that id.".to_owned())),
    }
}

/// Lifts a block; lifting one that does not exist (or of an unknown user) changes nothing. Their direct
/// conversation, if any, takes sends from `other` again.
pub async fn unblock(context: &AppContext, me: &str, other: &str) -> Result<(), ApiError> {
    not_yourself(me, other)?;
    context.store.delete_block(me, other).await?;
    mark_direct_conversation(context, me, other, false).await
}

/// Two calls, on the block routes only (rare): the pair's claim names their direct conversation.
async fn mark_direct_conversation(context: &AppContext, me: &str, other: &str, blocked: bool) -> Result<(), ApiError> {
    match context.store.direct_conversation_id(me, other).await? {
        Some(conversation_id) => context.store.mark_direct_block(&conversation_id, me, blocked).await,
        None => Ok(()),
    }
}

/// The caller's blocks, in user-id order.
pub async fn list(context: &AppContext, me: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Block>, ApiError> {
    let scope = format!("BLOCKS#{me}");
    let after = cursor
        .map(|c| context.cursors().open(&scope, c, "cursor"))
        .transpose()?
        // Sealed by us, so always an id; checked anyway, since it becomes a key.
        .map(|position| crate::validate::ulid("cursor", &position))
        .transpose()?;
    let (records, more) = context.store.blocks_page(me, after.as_deref(), limit).await?;
    let next_cursor = if more {
        records.last().map(|b| context.cursors().seal(&scope, &b.user_id))
    } else {
        None
    };
    Ok(Page {
        items: records
            .into_iter()
            .map(|b| Block {
                user_id: b.user_id,
                created_at: b.created_at,
            })
            .collect(),
        next_cursor,
    })
}

/// Which of `others` have blocked `me`, in the order of `others` (each once; `me` never). One
/// strongly consistent BatchGetItem per 100 of them, so a block made a moment ago counts.
pub async fn blocked_by(context: &AppContext, me: &str, others: &[String]) -> Result<Vec<String>, ApiError> {
    let asked = distinct_others(me, others);
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let found = context.store.blocked_by(me, &asked).await?;
    Ok(asked.into_iter().filter(|other| found.contains(other)).collect())
}

/// Everyone who blocked `me`: one strongly consistent Query (every page) of `me`'s mirror items.
pub async fn blockers_of(context: &AppContext, me: &str) -> Result<Vec<String>, ApiError> {
    context.store.blockers_of(me).await
}

/// True when `a` blocked `b` or `b` blocked `a`: one BatchGetItem of both keys. For the rule that
/// neither side of a block can open a direct conversation with the other.
pub async fn either_blocked(context: &AppContext, a: &str, b: &str) -> Result<bool, ApiError> {
    if a == b {
        return Ok(false);
    }
    context.store.block_between(a, b).await
}

/// `others` without repeats and without `me`, in their first order.
fn distinct_others(me: &str, others: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(others.len());
    others
        .iter()
        .filter(|other| other.as_str() != me && seen.insert(other.as_str()))
        .cloned()
        .collect()
}

/// `users` without anyone who blocked `me`: for the fan-outs a blocker must not get (`presence`,
/// `typing`).
pub async fn without_blockers(context: &AppContext, me: &str, users: Vec<String>) -> Result<Vec<String>, ApiError> {
    let blockers = blockers_of(context, me).await?;
    if blockers.is_empty() {
        return Ok(users);
    }
    Ok(users.into_iter().filter(|u| !blockers.contains(u)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asked_are_distinct_and_never_the_caller() {
        let others: Vec<String> = ["B", "C", "B", "ME", "D", "C"].iter().map(|s| s.to_string()).collect();
        assert_eq!(distinct_others("ME", &others), vec!["B", "C", "D"]);
        assert!(distinct_others("ME", &["ME".to_owned()]).is_empty());
    }

    #[test]
    fn nobody_blocks_themself() {
        assert!(not_yourself("A", "A").is_err());
        assert!(not_yourself("A", "B").is_ok());
    }
}
