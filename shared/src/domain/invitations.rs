//! Consent to be added, invitations and invite links (docs/API-GUIDE.md "Invitations and invite
//! links").
//!
//! A user whose `whoCanAddMe` is `nobody` is never put into a group by someone else: a group add that
//! names them invites them instead (`invitation.new` reaches them; the adder learns only that they
//! were invited). An invitation lasts 7 days; accepting it joins the group, declining removes it.
//! Invite links are made by a group's owner and admins, expire (a day by default, a week at most) and
//! may have a use limit; joining by one is refused while the user is banned. Every way in (an add, an
//! invitation, a link) checks the ban in the transaction that adds the member.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::conversations::{is_admin, membership, Conversation, MAX_GROUP_MEMBERS};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::{ConversationKind, MemberRole};
use crate::realtime::{events, Outgoing, Published};
use crate::store::{ConversationRecord, InvitationRecord, InviteRecord, Joined, MemberRecord};
use crate::time::{epoch_secs, rfc3339};

/// How long an invitation waits for an answer.
pub const INVITATION_SECS: u64 = 7 * 24 * 3600;
/// An invite link's lifetime: a day unless the creator says otherwise, at most a week.
pub const DEFAULT_INVITE_SECS: u64 = 24 * 3600;
pub const MIN_INVITE_SECS: u64 = 60;
pub const MAX_INVITE_SECS: u64 = 7 * 24 * 3600;
/// The largest use limit (a group holds at most 1,000 members anyway).
pub const MAX_INVITE_USES: u64 = 1000;
/// Characters of an invite code: 12 of 62 symbols, about 71 bits, so codes cannot be guessed.
const CODE_LEN: usize = 12;
const CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `whoCanAddMe`: who may put the user into a group.
pub const ADD_EVERYONE: &str = "everyone";
pub const ADD_NOBODY: &str = "nobody";

/// The users an add names, sorted by consent: those who may be added, and those to invite instead.
/// Read fresh (not from the profile cache): a user who just said `nobody` is not added a moment later.
/// Unknown ids are refused, naming them.
pub async fn sort_by_consent(
    context: &AppContext,
    field: &str,
    ids: &[String],
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    if ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let found = context.store.batch_get_users(ids).await?;
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| !found.iter().any(|u| u.id == **id))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("no user has the id {}", missing.join(", ")),
        ));
    }
    let (mut addable, mut invited) = (Vec::new(), Vec::new());
    for id in ids {
        let nobody = found
            .iter()
            .any(|u| u.id == *id && u.who_can_add_me.as_deref() == Some(ADD_NOBODY));
        if nobody {
            invited.push(id.clone());
        } else {
            addable.push(id.clone());
        }
    }
    Ok((addable, invited))
}

/// An invitation's id: one per group and invitee, so inviting again refreshes it.
fn invitation_id(conversation_id: &str, invitee: &str) -> String {
    let digest = Sha256::new()
        .chain_update(conversation_id)
        .chain_update([0])
        .chain_update(invitee)
        .finalize();
    hex::encode(&digest[..16])
}

/// An invitation as the invitee sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: String,
    /// The group, as every member sees it (`SharedConversation`).
    pub conversation: Value,
    pub invited_by: String,
    pub created_at: String,
}

/// The group as everyone sees it (no per-member fields).
fn shared_view(record: &ConversationRecord) -> Value {
    let anyone = MemberRecord::new(record, "", MemberRole::Member, &record.created_at);
    events::shared_conversation(&Conversation::new(record.clone(), &anyone))
}

/// Invites `invitees` to the group; their `invitation.new` events.
pub async fn invite(
    context: &AppContext,
    inviter: &str,
    conversation: &ConversationRecord,
    invitees: &[String],
) -> Result<Vec<Outgoing>, ApiError> {
    if invitees.is_empty() {
        return Ok(Vec::new());
    }
    let now = context.now();
    let created_at = rfc3339(now);
    let records: Vec<(String, InvitationRecord)> = invitees
        .iter()
        .map(|invitee| {
            (
                invitee.clone(),
                InvitationRecord {
                    id: invitation_id(&conversation.id, invitee),
                    conversation_id: conversation.id.clone(),
                    invited_by: inviter.to_owned(),
                    created_at: created_at.clone(),
                    expires_at: epoch_secs(now) + INVITATION_SECS,
                },
            )
        })
        .collect();
    context.store.put_invitations(&records).await?;
    let shared = shared_view(conversation);
    Ok(records
        .into_iter()
        .map(|(invitee, record)| {
            let invitation = Invitation {
                id: record.id,
                conversation: shared.clone(),
                invited_by: record.invited_by,
                created_at: record.created_at,
            };
            Outgoing::to_users(vec![invitee], events::invitation_new(&invitation))
        })
        .collect())
}

/// `GET /users/me/invitations`: the caller's pending invitations, newest first (expired ones and those
/// to groups that are gone left out).
pub async fn list(context: &AppContext, me: &str) -> Result<Vec<Invitation>, ApiError> {
    let now = epoch_secs(context.now());
    let mut pending: Vec<InvitationRecord> = context
        .store
        .invitations_of(me)
        .await?
        .into_iter()
        .filter(|i| i.expires_at > now)
        .collect();
    pending.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let ids: Vec<String> = pending.iter().map(|i| i.conversation_id.clone()).collect();
    let conversations = context.store.batch_get_conversations(&ids).await?;
    Ok(pending
        .into_iter()
        .filter_map(|record| {
            let conversation = conversations.iter().find(|c| c.id == record.conversation_id)?;
            Some(Invitation {
                id: record.id,
                conversation: shared_view(conversation),
                invited_by: record.invited_by,
                created_at: record.created_at,
            })
        })
        .collect())
}

/// An id [`invitation_id`] could have made: anything else names no invitation (and would otherwise
/// reach DynamoDB as a key it refuses, such as one over its 1 KB sort-key limit).
fn valid_invitation_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn no_invitation() -> ApiError {
    ApiError::NotFound("You have no invitation with that id (it may have expired).".to_owned())
}

/// The new member's record: everything before them read (see `conversations::add_members`).
async fn newcomer(
    context: &AppContext,
    conversation: &ConversationRecord,
    me: &str,
) -> Result<(ConversationRecord, MemberRecord), ApiError> {
    let mut conversation = conversation.clone();
    conversation.last_seq = conversation
        .last_seq
        .max(context.store.positions_taken(&conversation.id).await?);
    let member = MemberRecord::new(&conversation, me, MemberRole::Member, &rfc3339(context.now()));
    Ok((conversation, member))
}

/// What a join answers and announces: the newcomer's view; `member.added` to the group.
fn joined(conversation: ConversationRecord, member: &MemberRecord) -> Published<Conversation> {
    let mut changed = conversation;
    changed.members_version += 1;
    changed.member_count += 1;
    let event = events::members("member.added", &changed.id, std::slice::from_ref(&member.user_id));
    let view = Conversation::new(changed.clone(), member);
    Published::new(view, vec![Outgoing::to_conversation(&changed, event)])
}

/// The caller's view of a group they are in already.
async fn already_in(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
) -> Result<Published<Conversation>, ApiError> {
    let (conversation, member) = membership(context, conversation_id, me).await?;
    Ok(Published::quiet(Conversation::new(conversation, &member)))
}

fn full() -> ApiError {
    ApiError::Conflict(format!(
        "The group has {MAX_GROUP_MEMBERS} members, the most it can have."
    ))
}

fn banned() -> ApiError {
    ApiError::Forbidden("You are banned from this group.".to_owned())
}

/// `POST /invitations/{id}/accept`: the caller joins the group.
pub async fn accept(context: &AppContext, me: &str, id: &str) -> Result<Published<Conversation>, ApiError> {
    if !valid_invitation_id(id) {
        return Err(no_invitation());
    }
    let invitation = context
        .store
        .get_invitation(me, id)
        .await?
        .filter(|i| i.expires_at > epoch_secs(context.now()))
        .ok_or_else(no_invitation)?;
    let Some(conversation) = context.store.get_conversation(&invitation.conversation_id).await? else {
        context.store.delete_invitation(me, id).await?;
        return Err(ApiError::NotFound("That group no longer exists.".to_owned()));
    };
    let (conversation, member) = newcomer(context, &conversation, me).await?;
    let now = rfc3339(context.now());
    match context
        .store
        .accept_invitation(me, &invitation, &member, MAX_GROUP_MEMBERS, &now)
        .await?
    {
        Joined::Joined => Ok(joined(conversation, &member)),
        Joined::AlreadyMember => {
            context.store.delete_invitation(me, id).await?;
            already_in(context, me, &conversation.id).await
        }
        Joined::Banned => Err(banned()),
        Joined::Spent => Err(no_invitation()),
        Joined::Full => Err(full()),
    }
}

/// `DELETE /invitations/{id}`: declined.
pub async fn decline(context: &AppContext, me: &str, id: &str) -> Result<(), ApiError> {
    if valid_invitation_id(id) && context.store.delete_invitation(me, id).await? {
        Ok(())
    } else {
        Err(no_invitation())
    }
}

/// An invite link as its group's owner and admins see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteLink {
    pub code: String,
    pub expires_at: String,
    /// `None`: no limit.
    pub max_uses: Option<u64>,
    pub uses: u64,
    pub created_by: String,
    pub created_at: String,
}

impl From<&InviteRecord> for InviteLink {
    fn from(record: &InviteRecord) -> Self {
        InviteLink {
            code: record.code.clone(),
            expires_at: rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(record.expires_at_ms)),
            max_uses: record.max_uses,
            uses: record.uses,
            created_by: record.created_by.clone(),
            created_at: record.created_at.clone(),
        }
    }
}

/// The group, if the caller is its owner or an admin.
async fn moderated_group(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
) -> Result<ConversationRecord, ApiError> {
    let (conversation, member) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        return Err(ApiError::Forbidden("Invite links are for groups.".to_owned()));
    }
    if !is_admin(&member) {
        return Err(ApiError::Forbidden(
            "Only the group's owner and admins manage its invite links.".to_owned(),
        ));
    }
    Ok(conversation)
}

fn new_code() -> String {
    let mut bytes = [0u8; 32];
    let mut code = String::with_capacity(CODE_LEN);
    while code.len() < CODE_LEN {
        getrandom::fill(&mut bytes).expect("the system's random source works");
        // 248 = 4 * 62: rejecting the rest keeps every symbol equally likely.
        for b in bytes.iter().filter(|b| **b < 248) {
            if code.len() == CODE_LEN {
                break;
            }
            code.push(CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char);
        }
    }
    code
}

/// `POST /conversations/{id}/invites`.
pub async fn create_invite(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    max_uses: Option<u64>,
    expires_in_seconds: Option<u64>,
) -> Result<InviteLink, ApiError> {
    let mut problems = crate::validate::Problems::default();
    if let Some(uses) = max_uses {
        if !(1..=MAX_INVITE_USES).contains(&uses) {
            problems.check::<()>(Err(ApiError::invalid(
                "maxUses",
                format!("must be 1 to {MAX_INVITE_USES} (leave it out for no limit)"),
            )));
        }
    }
    let lifetime = expires_in_seconds.unwrap_or(DEFAULT_INVITE_SECS);
    if !(MIN_INVITE_SECS..=MAX_INVITE_SECS).contains(&lifetime) {
        problems.check::<()>(Err(ApiError::invalid(
            "expiresInSeconds",
            format!("must be {MIN_INVITE_SECS} to {MAX_INVITE_SECS} (a week)"),
        )));
    }
    problems.finish()?;
    let conversation = moderated_group(context, me, conversation_id).await?;
    let now_ms = context.now_ms();
    let expires_at_ms = now_ms + lifetime * 1000;
    let code = new_code();
    let record = InviteRecord {
        code: code.clone(),
        conversation_id: conversation.id.clone(),
        created_by: me.to_owned(),
        created_at: rfc3339(context.now()),
        expires_at_ms,
        max_uses,
        uses: 0,
        revoked: false,
        gsi1_pk: crate::store::keys::conversation_invites(&conversation.id),
        gsi1_sk: code,
        expires_at: expires_at_ms / 1000 + 24 * 3600,
    };
    context.store.put_invite(&record).await?;
    Ok((&record).into())
}

/// `GET /conversations/{id}/invites`: the live links (not revoked, expired or used up), newest first.
pub async fn invites(context: &AppContext, me: &str, conversation_id: &str) -> Result<Vec<InviteLink>, ApiError> {
    moderated_group(context, me, conversation_id).await?;
    let now_ms = context.now_ms();
    let mut live: Vec<InviteRecord> = context
        .store
        .invites_of(conversation_id)
        .await?
        .into_iter()
        .filter(|i| !i.revoked && i.expires_at_ms > now_ms && i.max_uses.is_none_or(|max| i.uses < max))
        .collect();
    live.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(live.iter().map(InviteLink::from).collect())
}

/// `DELETE /conversations/{id}/invites/{code}`.
pub async fn revoke_invite(context: &AppContext, me: &str, conversation_id: &str, code: &str) -> Result<(), ApiError> {
    moderated_group(context, me, conversation_id).await?;
    if valid_code(code) && context.store.revoke_invite(conversation_id, code).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(
            "This group has no invite link with that code.".to_owned(),
        ))
    }
}

fn valid_code(code: &str) -> bool {
    code.len() == CODE_LEN && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn unknown_code() -> ApiError {
    ApiError::NotFound("There is no invite link with that code.".to_owned())
}

fn spent(invite: &InviteRecord, now_ms: u64) -> ApiError {
    let why = if invite.revoked {
        "was revoked"
    } else if invite.expires_at_ms <= now_ms {
        "has expired"
    } else {
        "has been used as many times as it allows"
    };
    ApiError::Gone(format!("This invite link {why}."))
}

/// `POST /invites/{code}/join`: the caller joins the link's group (a member already: the group, and no
/// use is taken).
pub async fn join(context: &AppContext, me: &str, code: &str) -> Result<Published<Conversation>, ApiError> {
    if !valid_code(code) {
        return Err(unknown_code());
    }
    let invite = context.store.get_invite(code).await?.ok_or_else(unknown_code)?;
    let now_ms = context.now_ms();
    let used_up = invite.max_uses.is_some_and(|max| invite.uses >= max);
    if invite.revoked || invite.expires_at_ms <= now_ms || used_up {
        return Err(spent(&invite, now_ms));
    }
    let Some(conversation) = context.store.get_conversation(&invite.conversation_id).await? else {
        return Err(ApiError::Gone("This invite link's group no longer exists.".to_owned()));
    };
    let (conversation, member) = newcomer(context, &conversation, me).await?;
    let now = rfc3339(context.now());
    match context
        .store
        .join_by_invite(&invite, &member, MAX_GROUP_MEMBERS, &now, now_ms)
        .await?
    {
        Joined::Joined => Ok(joined(conversation, &member)),
        Joined::AlreadyMember => already_in(context, me, &conversation.id).await,
        Joined::Banned => Err(banned()),
        Joined::Spent => {
            // Used up (or revoked) between the read and the join: say which, from the link as it is now.
            let as_now = context.store.get_invite(code).await?.unwrap_or(invite);
            Err(spent(&as_now, now_ms))
        }
        Joined::Full => Err(full()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_long_and_of_the_alphabet() {
        let a = new_code();
        assert_eq!(a.len(), CODE_LEN);
        assert!(valid_code(&a));
        assert_ne!(a, new_code());
        assert!(!valid_code("short"));
        assert!(!valid_code("abc-def-ghij"));
    }

    #[test]
    fn one_invitation_per_group_and_invitee() {
        assert!(valid_invitation_id(&invitation_id("c", "u")));
        assert!(!valid_invitation_id("x".repeat(2000).as_str()));
        assert!(!valid_invitation_id("not-an-id"));
        assert_eq!(invitation_id("c", "u"), invitation_id("c", "u"));
        assert_ne!(invitation_id("c", "u"), invitation_id("c", "v"));
        assert_ne!(invitation_id("c", "u"), invitation_id("d", "u"));
    }
}
