//! Invitations and invite links (`domain::invitations`):
//! - `USER#<invitee>` / `INVITATION#<id>` `{id, conversationId, invitedBy, createdAt, expiresAt}`: a
//!   pending invitation to a group, made when an add named someone whose `whoCanAddMe` is `nobody`.
//!   Its id is a hash of the group and the invitee, so inviting again refreshes the one invitation.
//!   The table's TTL removes it after 7 days (and reads ignore an expired one before that).
//! - `INVITE#<code>` / `INVITE`: an invite link `{code, conversationId, createdBy, createdAt,
//!   expiresAtMs, maxUses?, uses, revoked}`, listed per group through GSI1 (`INVITES#<conversation>`).
//!   Its `uses` moves in the transaction that adds the member, on the condition that the link is live
//!   and not used up: however many join at once, `uses` never passes `maxUses`.
//!
//! Joining by either is one transaction: the META's member count, the member item, a check that the
//! user is not banned, and the invitation's removal or the link's use. A ban or a full group that
//! comes between the checks and the write fails the whole join.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ReturnConsumedCapacity, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use super::{item_with_key, key, keys, n, records, s, MemberRecord, Store};
use crate::error::ApiError;

/// A pending invitation, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationRecord {
    pub id: String,
    pub conversation_id: String,
    pub invited_by: String,
    pub created_at: String,
    /// Epoch seconds (the table's TTL attribute).
    pub expires_at: u64,
}

/// An invite link, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteRecord {
    pub code: String,
    pub conversation_id: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u64>,
    #[serde(default)]
    pub uses: u64,
    #[serde(default)]
    pub revoked: bool,
    #[serde(rename = "GSI1PK")]
    pub gsi1_pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1_sk: String,
    /// Epoch seconds: a day after the link expires, for the table's TTL.
    pub expires_at: u64,
}

/// How a join ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Joined,
    /// The user is a member already: nothing was written.
    AlreadyMember,
    /// The group is full, or gone.
    Full,
    Banned,
    /// The invitation is gone, or the link is expired, revoked or used up.
    Spent,
}

impl Store {
    /// Writes invitations (a new one, or the same one again with a new time).
    pub async fn put_invitations(&self, invitees: &[(String, InvitationRecord)]) -> Result<(), ApiError> {
        let requests = invitees
            .iter()
            .map(|(user, invitation)| {
                let item = item_with_key(keys::user(user), &keys::invitation(&invitation.id), invitation)?;
                Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .map_err(ApiError::internal)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        self.batch_write(requests).await
    }

    /// A user's invitations (expired ones included: the caller filters by time).
    pub async fn invitations_of(&self, user_id: &str) -> Result<Vec<InvitationRecord>, ApiError> {
        let mut found = Vec::new();
        self.query_prefix(keys::user(user_id), keys::INVITATION_PREFIX, false, None, |items| {
            found.extend(records::<InvitationRecord>(items)?);
            Ok(true)
        })
        .await?;
        Ok(found)
    }

    pub async fn get_invitation(&self, user_id: &str, id: &str) -> Result<Option<InvitationRecord>, ApiError> {
        self.get_record(keys::user(user_id), keys::invitation(id)).await
    }

    /// Removes an invitation; `false` when there was none.
    pub async fn delete_invitation(&self, user_id: &str, id: &str) -> Result<bool, ApiError> {
        self.delete_if(key(keys::user(user_id), keys::invitation(id))).await
    }

    async fn delete_if(&self, item_key: super::Item) -> Result<bool, ApiError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .condition_expression("attribute_exists(PK)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.usage.record(true, out.consumed_capacity());
                Ok(true)
            }
            Err(e) if super::is_condition_failure(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Accepts an invitation: the member added and the invitation removed, all or nothing.
    pub async fn accept_invitation(
        &self,
        user_id: &str,
        invitation: &InvitationRecord,
        member: &MemberRecord,
        max_members: u64,
        now: &str,
    ) -> Result<Joined, ApiError> {
        let remove = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::invitation(&invitation.id))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        self.join(
            member,
            max_members,
            now,
            TransactWriteItem::builder().delete(remove).build(),
        )
        .await
    }

    /// Joins by an invite link: the member added and one use of the link taken, all or nothing, on the
    /// condition that the link is live at `now_ms` and not used up.
    pub async fn join_by_invite(
        &self,
        invite: &InviteRecord,
        member: &MemberRecord,
        max_members: u64,
        now: &str,
        now_ms: u64,
    ) -> Result<Joined, ApiError> {
        let take = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::invite(&invite.code), keys::INVITE)))
            .update_expression("SET uses = uses + :one")
            .condition_expression(
                "attribute_exists(PK) AND revoked = :no AND expiresAtMs > :now AND (attribute_not_exists(maxUses) OR uses < maxUses)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now_ms))
            .build()
            .map_err(ApiError::internal)?;
        self.join(
            member,
            max_members,
            now,
            TransactWriteItem::builder().update(take).build(),
        )
        .await
    }

    /// One member in, with `ticket` (the invitation's removal or the link's use) in the same
    /// transaction, and a check that the member is not banned.
    async fn join(
        &self,
        member: &MemberRecord,
        max_members: u64,
        now: &str,
        ticket: TransactWriteItem,
    ) -> Result<Joined, ApiError> {
        let not_banned = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(&member.conversation_id),
                keys::ban(&member.user_id),
            )))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        let mut writes = self.member_joins(member, max_members, now)?;
        writes.push(TransactWriteItem::builder().condition_check(not_banned).build());
        writes.push(ticket);
        match self.transact(writes).await {
            Ok(()) => Ok(Joined::Joined),
            Err(super::WriteConflict::Conditions(failed)) => Ok(if failed.contains(&1) {
                Joined::AlreadyMember
            } else if failed.contains(&2) {
                Joined::Banned
            } else if failed.contains(&3) {
                Joined::Spent
            } else {
                Joined::Full
            }),
            Err(super::WriteConflict::Other(e)) => Err(e),
        }
    }

    pub async fn put_invite(&self, invite: &InviteRecord) -> Result<(), ApiError> {
        let created = self
            .put_if(
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item_with_key(keys::invite(&invite.code), keys::INVITE, invite)?))
                    .condition_expression("attribute_not_exists(PK)"),
            )
            .await?;
        if created {
            Ok(())
        } else {
            Err(ApiError::internal("an invite code was drawn twice"))
        }
    }

    pub async fn get_invite(&self, code: &str) -> Result<Option<InviteRecord>, ApiError> {
        self.get_record(keys::invite(code), keys::INVITE.to_owned()).await
    }

    /// A group's invite links, through GSI1 (newest last).
    pub async fn invites_of(&self, conversation_id: &str) -> Result<Vec<InviteRecord>, ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::conversation_invites(conversation_id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        self.usage.record(false, out.consumed_capacity());
        records(out.items.unwrap_or_default())
    }

    /// Revokes a link of the group; `false` when the group has no link with that code.
    pub async fn revoke_invite(&self, conversation_id: &str, code: &str) -> Result<bool, ApiError> {
        self.update_if(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(keys::invite(code), keys::INVITE)))
                .update_expression("SET revoked = :yes")
                .condition_expression("conversationId = :conversation")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":conversation", s(conversation_id)),
        )
        .await
    }
}
