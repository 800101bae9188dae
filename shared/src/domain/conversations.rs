//! Conversations: direct (one per pair) and groups (owner, admins, members; up to 1000), the caller's
//! list by recent activity, membership changes and read markers. A caller who is not a member gets
//! `not_found` for the conversation and everything under it.

use serde::Serialize;

use super::messages::Message;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::{ConversationKind, MemberRole};
use crate::realtime::{events, Outgoing, Published, Skip};
use crate::store::{activity_key, ConversationRecord, CreateConversationError, MemberRecord};
use crate::time::rfc3339;
use crate::validate;

pub const MAX_GROUP_MEMBERS: u64 = 1000;
pub const NAME_LEN: std::ops::RangeInclusive<usize> = 1..=100;

/// The API's `conversation` (openapi.yaml `Conversation`), as the caller sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConversationKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message: Option<Message>,
    pub member_count: u64,
    /// The `seq` of the newest message.
    pub last_seq: u64,
    pub unread_count: u64,
    /// Unread messages that mention the caller.
    pub mention_count: u64,
    /// The caller's read position.
    pub read_seq: u64,
    pub my_role: MemberRole,
    /// Slow mode: a plain member's sends at least this many seconds apart (0: off).
    pub slow_mode_seconds: u64,
    /// In a group create's answer only: who was invited instead of added (`domain::invitations`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invited: Vec<String>,
}

impl Conversation {
    pub fn new(record: ConversationRecord, member: &MemberRecord) -> Self {
        Conversation {
            unread_count: record.last_seq.saturating_sub(member.read_seq),
            mention_count: member.mention_seqs.iter().filter(|s| **s > member.read_seq).count() as u64,
            // A member's read position can be ahead of the META's `lastSeq` for a moment (a member who
            // joins starts at the position counter; the META follows the sends from the stream): the
            // conversation has at least as many messages as its members have read.
            last_seq: record.last_seq.max(member.read_seq),
            read_seq: member.read_seq,
            id: record.id,
            kind: record.kind,
            name: record.name,
            created_by: record.created_by,
            created_at: record.created_at,
            updated_at: record.updated_at,
            last_message: record.last_message.map(Message::from),
            member_count: record.member_count,
            my_role: member.role,
            slow_mode_seconds: record.slow_mode_seconds,
            invited: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub role: MemberRole,
    pub joined_at: String,
    /// The member's read position (read receipts).
    pub read_seq: u64,
}

impl From<MemberRecord> for Member {
    fn from(m: MemberRecord) -> Self {
        Member {
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
            read_seq: m.read_seq,
        }
    }
}

/// `{items, nextCursor}`; `nextCursor` is `null` on the last page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub(crate) fn not_found() -> ApiError {
    ApiError::NotFound("There is no conversation with that id among yours.".to_owned())
}

/// The group's owner or an admin: who moderates it.
pub(crate) fn is_admin(member: &MemberRecord) -> bool {
    member.role.moderates()
}

/// The conversation and the caller's membership, or `not_found` for anyone else.
pub async fn membership(
    context: &AppContext,
    conversation_id: &str,
    user_id: &str,
) -> Result<(ConversationRecord, MemberRecord), ApiError> {
    match context.store.conversation_with_member(conversation_id, user_id).await? {
        (Some(conversation), Some(member)) if conversation.admits(&member) => Ok((conversation, member)),
        _ => Err(not_found()),
    }
}

/// Checks that every id names a user; the unknown ones are named in the error.
async fn require_users(context: &AppContext, field: &str, ids: &[String]) -> Result<(), ApiError> {
    // Accounts are never deleted, so a cached profile proves its user exists.
    let found = crate::domain::users::get_many(context, ids).await?;
    let missing: Vec<&String> = ids.iter().filter(|id| !found.iter().any(|u| u.id == **id)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Err(ApiError::invalid(field, format!("no user has the id {list}")))
}

fn unique_ids(field: &str, raw: &[String], exclude: &str) -> Result<Vec<String>, ApiError> {
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    for id in raw {
        let id = validate::ulid(field, id)?;
        if id != exclude && !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The direct conversation of the pair, created on first use: `(conversation, created)`. Neither side
/// of a block can open one (`forbidden`); a new one is announced to both with `conversation.created`.
pub async fn open_direct(
    context: &AppContext,
    me: &str,
    member_ids: &[String],
) -> Result<Published<(Conversation, bool)>, ApiError> {
    let [other] = member_ids else {
        return Err(ApiError::invalid(
            "memberIds",
            "a direct conversation takes exactly one other user",
        ));
    };
    let other = validate::ulid("memberIds", other)?;
    if other == me {
        return Err(ApiError::invalid(
            "memberIds",
            "a direct conversation is with someone else",
        ));
    }
    if crate::domain::blocks::either_blocked(context, me, &other).await? {
        return Err(ApiError::Forbidden(
            "You cannot open a conversation with this user.".to_owned(),
        ));
    }
    if let Some(existing) = context.store.direct_conversation_id(me, &other).await? {
        let (conversation, member) = membership(context, &existing, me).await?;
        return Ok(Published::quiet((Conversation::new(conversation, &member), false)));
    }
    require_users(context, "memberIds", std::slice::from_ref(&other)).await?;
    let created = rfc3339(context.now());
    let id = ulid::Ulid::generate().to_string();
    let record = ConversationRecord {
        id: id.clone(),
        kind: ConversationKind::Direct,
        name: None,
        created_by: me.to_owned(),
        created_at: created.clone(),
        updated_at: created.clone(),
        member_count: 2,
        members_version: 1,
        last_seq: 0,
        last_message: None,
        activity: id.clone(),
        direct_members: vec![me.to_owned(), other.clone()],
        pending_adds: Vec::new(),
        blocked_by: Vec::new(),
        listed_activity: None,
        synced_until: None,
        view_changed_at: None,
        slow_mode_seconds: 0,
        pin_count: 0,
    };
    let members = [
        MemberRecord::new(&record, me, MemberRole::Member, &created),
        MemberRecord::new(&record, &other, MemberRole::Member, &created),
    ];
    match context.store.create_direct(&record, &members).await {
        Ok(()) => {
            let mine = Conversation::new(record.clone(), &members[0]);
            let theirs = Conversation::new(record, &members[1]);
            let events = vec![
                Outgoing::to_users(vec![me.to_owned()], events::conversation_created(&mine)),
                Outgoing::to_users(vec![other], events::conversation_created(&theirs)),
            ];
            Ok(Published::new((mine, true), events))
        }
        // The other side opened it a moment ago: answer with theirs.
        Err(CreateConversationError::DirectExists) => {
            let existing = context
                .store
                .direct_conversation_id(me, &other)
                .await?
                .ok_or_else(not_found)?;
            let (conversation, member) = membership(context, &existing, me).await?;
            Ok(Published::quiet((Conversation::new(conversation, &member), false)))
        }
        Err(CreateConversationError::Store(e)) => Err(e),
    }
}

/// A new group with the caller as its owner; every member hears of it with `conversation.created`.
pub async fn create_group(
    context: &AppContext,
    me: &str,
    name: Option<&str>,
    member_ids: &[String],
) -> Result<Published<Conversation>, ApiError> {
    let mut problems = validate::Problems::default();
    let name = problems.check(match name {
        Some(name) => validate::name("name", name, NAME_LEN),
        None => Err(ApiError::invalid("name", "a group needs a name")),
    });
    let others = problems.check(unique_ids("memberIds", member_ids, me));
    problems.finish()?;
    let (name, named) = (name.unwrap_or_default(), others.unwrap_or_default());
    if named.len() as u64 + 1 > MAX_GROUP_MEMBERS {
        return Err(ApiError::invalid(
            "memberIds",
            format!("a group has at most {MAX_GROUP_MEMBERS} members"),
        ));
    }
    let (others, invited) = crate::domain::invitations::sort_by_consent(context, "memberIds", &named).await?;
    refuse_blockers(context, me, "memberIds", &named).await?;
    let created = rfc3339(context.now());
    let id = ulid::Ulid::generate().to_string();
    let record = ConversationRecord {
        id: id.clone(),
        kind: ConversationKind::Group,
        name: Some(name),
        created_by: me.to_owned(),
        created_at: created.clone(),
        updated_at: created.clone(),
        member_count: others.len() as u64 + 1,
        members_version: 1,
        last_seq: 0,
        last_message: None,
        activity: id,
        direct_members: Vec::new(),
        pending_adds: Vec::new(),
        blocked_by: Vec::new(),
        listed_activity: None,
        synced_until: None,
        view_changed_at: None,
        slow_mode_seconds: 0,
        pin_count: 0,
    };
    let mut members = vec![MemberRecord::new(&record, me, MemberRole::Owner, &created)];
    members.extend(
        others
            .iter()
            .map(|other| MemberRecord::new(&record, other, MemberRole::Member, &created)),
    );
    context.store.create_group(&record, &members).await?;
    let mut mine = Conversation::new(record.clone(), &members[0]);
    let mut events = vec![Outgoing::to_users(
        vec![me.to_owned()],
        events::conversation_created(&mine),
    )];
    events.extend(crate::domain::invitations::invite(context, me, &record, &invited).await?);
    mine.invited = invited;
    if let Some(first_other) = members.get(1) {
        // Every other member has the same view: role `member`, nothing unread.
        let theirs = Conversation::new(record, first_other);
        events.push(Outgoing::to_users(others, events::conversation_created(&theirs)));
    }
    Ok(Published::new(mine, events))
}

/// `forbidden` when any of `others` has blocked `me` (without saying who: the adder learns only that
/// the add was refused).
async fn refuse_blockers(context: &AppContext, me: &str, field: &str, others: &[String]) -> Result<(), ApiError> {
    if crate::domain::blocks::blocked_by(context, me, others).await?.is_empty() {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "{field}: one of these users does not accept being added by you; nothing was changed."
    )))
}

/// The caller's conversations, most recent activity first: one Query of `limit` member items on GSI1
/// and one BatchGetItem of their METAs, however many conversations the caller is in (see
/// `store::conversations`). A group's place can lag its last message by the listing granularity; the
/// page itself is ordered by each conversation's exact activity.
pub async fn list(
    context: &AppContext,
    me: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Conversation>, ApiError> {
    let scope = format!("CONVERSATIONS#{me}");
    let before = cursor
        .map(|c| context.cursors().open(&scope, c, "cursor"))
        .transpose()?;
    let (memberships, more) = context.store.memberships(me, before.as_deref(), limit).await?;
    let ids: Vec<String> = memberships.iter().map(|m| m.conversation_id.clone()).collect();
    let metas = context.store.batch_get_conversations(&ids).await?;
    let mut items: Vec<(String, Conversation)> = Vec::with_capacity(memberships.len());
    for member in &memberships {
        // A conversation being deleted, or an add still being written, is not listed.
        let Some(meta) = metas.iter().find(|c| c.id == member.conversation_id) else {
            continue;
        };
        if !meta.admits(member) {
            continue;
        }
        items.push((
            activity_key(&meta.activity, &meta.id),
            Conversation::new(meta.clone(), member),
        ));
    }
    items.sort_by(|a, b| b.0.cmp(&a.0));
    with_own_reactions(context, me, items.iter_mut().map(|(_, c)| c)).await?;
    let next_cursor = match (more, memberships.last()) {
        (true, Some(last)) => Some(context.cursors().seal(&scope, &last.gsi1_sk)),
        _ => None,
    };
    Ok(Page {
        items: items.into_iter().map(|(_, c)| c).collect(),
        next_cursor,
    })
}

pub async fn get(context: &AppContext, me: &str, conversation_id: &str) -> Result<Conversation, ApiError> {
    let (conversation, member) = membership(context, conversation_id, me).await?;
    as_read(context, me, Conversation::new(conversation, &member)).await
}

/// `view` as `GET` answers it: its last message as `me` reads it now (see [`with_own_reactions`]), for
/// the routes that answer with a conversation after writing (their events carry the plain view).
pub async fn as_read(context: &AppContext, me: &str, mut view: Conversation) -> Result<Conversation, ApiError> {
    with_own_reactions(context, me, std::iter::once(&mut view)).await?;
    Ok(view)
}

/// The conversations' last messages as they are now (the META's copy does not follow reactions and
/// replies) with the caller's own reactions: one BatchGetItem for all of them.
pub(crate) async fn with_own_reactions<'a>(
    context: &AppContext,
    me: &str,
    conversations: impl Iterator<Item = &'a mut Conversation>,
) -> Result<(), ApiError> {
    let mut lasts: Vec<&mut Message> = conversations.filter_map(|c| c.last_message.as_mut()).collect();
    let keys: Vec<(String, String)> = lasts
        .iter()
        .map(|m| (m.conversation_id.clone(), m.id.clone()))
        .collect();
    let (current, mut mine) = context.store.messages_with_own_reactions(me, &keys).await?;
    for message in lasts.iter_mut() {
        if let Some(now) = current.iter().find(|r| r.id == message.id) {
            // The copy can be older than the message in every field that changes after a send.
            **message = Message::from(now.clone());
        }
        let own = if message.deleted {
            Vec::new()
        } else {
            mine.remove(&message.id).unwrap_or_default()
        };
        message.my_reactions = Some(own.into_iter().filter(|r| message.reactions.contains_key(r)).collect());
        crate::domain::attachments::with_urls(context, &mut message.attachments).await?;
    }
    Ok(())
}

/// Renames a group (owner or admin); the members get `conversation.updated`.
/// The longest slow mode: an hour between a plain member's sends.
pub const MAX_SLOW_MODE_SECONDS: u64 = 3600;

/// `PATCH /conversations/{id}` `{name?, slowModeSeconds?}` (at least one): a group's owner or admins.
pub async fn rename(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    name: Option<&str>,
    slow_mode_seconds: Option<u64>,
) -> Result<Published<Conversation>, ApiError> {
    let mut problems = validate::Problems::default();
    let name = name.and_then(|name| problems.check(validate::name("name", name, NAME_LEN)));
    if let Some(seconds) = slow_mode_seconds {
        if seconds > MAX_SLOW_MODE_SECONDS {
            problems.check::<()>(Err(ApiError::invalid(
                "slowModeSeconds",
                format!("must be 0 (off) to {MAX_SLOW_MODE_SECONDS}"),
            )));
        }
    }
    problems.finish()?;
    if name.is_none() && slow_mode_seconds.is_none() {
        return Err(ApiError::invalid("name", "give a name or slowModeSeconds to change"));
    }
    let (conversation, member) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        let field = if name.is_some() { "name" } else { "slowModeSeconds" };
        return Err(ApiError::invalid(
            field,
            "a direct conversation has no name or slow mode to change",
        ));
    }
    if !is_admin(&member) {
        return Err(ApiError::Forbidden(
            "Only the group's owner or an admin can rename it or set its slow mode.".to_owned(),
        ));
    }
    let renamed = context
        .store
        .update_conversation(
            conversation_id,
            name.as_deref(),
            slow_mode_seconds,
            &rfc3339(context.now()),
        )
        .await?
        .ok_or_else(not_found)?;
    let view = Conversation::new(renamed.clone(), &member);
    let event = events::conversation_updated(&view);
    Ok(Published::new(view, vec![Outgoing::to_conversation(&renamed, event)]))
}

pub async fn members(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Member>, ApiError> {
    let (conversation, _) = membership(context, conversation_id, me).await?;
    let scope = format!("MEMBERS#{conversation_id}");
    let after = cursor
        .map(|c| context.cursors().open(&scope, c, "cursor"))
        .transpose()?;
    let (records, more) = context
        .store
        .members_page(conversation_id, after.as_deref(), limit)
        .await?;
    let next_cursor = if more {
        records.last().map(|m| context.cursors().seal(&scope, &m.user_id))
    } else {
        None
    };
    Ok(Page {
        items: records
            .into_iter()
            .filter(|m| conversation.admits(m))
            .map(Member::from)
            .collect(),
        next_cursor,
    })
}

/// Adds users to a group (owner or admin); those already in it are left out of `added`. Nobody who
/// blocked the caller can be added (`forbidden`, nothing added). All or nothing: the new members
/// appear in the list, the count, the fan-out and can read at one moment (`store::add_members`). The
/// members as they now are (the new ones included) get `member.added`.
/// What an add did: who was added, and who was invited instead (`whoCanAddMe` nobody).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Added {
    pub added: Vec<String>,
    pub invited: Vec<String>,
}

pub async fn add_members(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    user_ids: &[String],
) -> Result<Published<Added>, ApiError> {
    if user_ids.is_empty() || user_ids.len() as u64 > MAX_GROUP_MEMBERS {
        return Err(ApiError::invalid(
            "userIds",
            format!("list 1 to {MAX_GROUP_MEMBERS} user ids"),
        ));
    }
    let ids = unique_ids("userIds", user_ids, "")?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        return Err(ApiError::invalid(
            "userIds",
            "the members of a direct conversation cannot change",
        ));
    }
    if !is_admin(&member) {
        return Err(ApiError::Forbidden(
            "Only the group's owner or an admin can add members.".to_owned(),
        ));
    }
    let existing = context.store.members_of(conversation_id, &ids).await?;
    let named: Vec<String> = ids
        .into_iter()
        .filter(|id| !existing.iter().any(|m| m.user_id == *id && conversation.admits(m)))
        .collect();
    if named.is_empty() {
        return Ok(Published::quiet(Added::default()));
    }
    let too_many = || ApiError::invalid("userIds", format!("a group has at most {MAX_GROUP_MEMBERS} members"));
    if conversation.member_count + named.len() as u64 > MAX_GROUP_MEMBERS {
        return Err(too_many());
    }
    let (new, invited) = crate::domain::invitations::sort_by_consent(context, "userIds", &named).await?;
    refuse_blockers(context, me, "userIds", &named).await?;
    super::bans::refuse_banned(context, conversation_id, &named).await?;
    if new.is_empty() {
        let invitations = crate::domain::invitations::invite(context, me, &conversation, &invited).await?;
        return Ok(Published::new(Added { added: new, invited }, invitations));
    }
    let joined = rfc3339(context.now());
    // New members start with everything before them read: every position taken so far, as the
    // position counter has it (the META's `lastSeq` follows the sends a moment later, from the stream).
    let mut conversation = conversation;
    conversation.last_seq = conversation
        .last_seq
        .max(context.store.positions_taken(&conversation.id).await?);
    let records: Vec<MemberRecord> = new
        .iter()
        .map(|id| MemberRecord::new(&conversation, id, MemberRole::Member, &joined))
        .collect();
    if !context
        .store
        .add_members(conversation_id, &records, MAX_GROUP_MEMBERS, &joined)
        .await?
    {
        return Err(too_many());
    }
    let mut changed = conversation;
    changed.members_version += 1;
    changed.member_count += new.len() as u64;
    let event = events::members("member.added", conversation_id, &new);
    let mut events = vec![Outgoing::to_conversation(&changed, event)];
    // Only once the add stands: an add that fails leaves no invitations behind.
    events.extend(crate::domain::invitations::invite(context, me, &changed, &invited).await?);
    Ok(Published::new(Added { added: new, invited }, events))
}

/// The member item of `user_id` in the conversation `meta` describes, or `not_found`.
async fn target_member(
    context: &AppContext,
    meta: &ConversationRecord,
    user_id: &str,
) -> Result<MemberRecord, ApiError> {
    context
        .store
        .members_of(&meta.id, &[user_id.to_owned()])
        .await?
        .into_iter()
        .find(|m| meta.admits(m))
        .ok_or_else(|| ApiError::NotFound("That user is not a member of this conversation.".to_owned()))
}

fn roles_changed() -> ApiError {
    ApiError::Conflict("The group's members or roles changed meanwhile; please retry.".to_owned())
}

/// What a removal did: the user who left or was removed, or the conversation deleted with its last
/// member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed(String),
    Deleted,
}

/// Owners and admins remove members; anyone removes themself (leaves). Not for direct conversations.
/// Admins cannot remove the owner or other admins (`forbidden`); the owner cannot leave while others
/// remain (`conflict`: transfer ownership first); the last member leaving deletes the conversation
/// (what hangs off it is purged by the conversation worker). The remaining members and the removed
/// one (its last event of this conversation) hear of it.
pub async fn remove_member(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    user_id: &str,
) -> Result<Published<Removal>, ApiError> {
    let user_id = validate::ulid("userId", user_id)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        return Err(ApiError::invalid(
            "userId",
            "the members of a direct conversation cannot change",
        ));
    }
    let remover = if user_id == me {
        if conversation.member_count <= 1 {
            return delete_with_last_member(context, me, &conversation).await;
        }
        if member.role == MemberRole::Owner {
            return Err(ApiError::Conflict(
                "The owner cannot leave while others remain: transfer ownership first.".to_owned(),
            ));
        }
        None
    } else {
        if !is_admin(&member) {
            return Err(ApiError::Forbidden(
                "Only the group's owner or an admin can remove others.".to_owned(),
            ));
        }
        let target = target_member(context, &conversation, &user_id).await?;
        if target.role == MemberRole::Owner {
            return Err(ApiError::Forbidden("The group's owner cannot be removed.".to_owned()));
        }
        if target.role == MemberRole::Admin && member.role != MemberRole::Owner {
            return Err(ApiError::Forbidden("Only the owner can remove an admin.".to_owned()));
        }
        Some((me, member.role))
    };
    if !context
        .store
        .remove_member(conversation_id, &user_id, remover, &rfc3339(context.now()))
        .await?
    {
        return Err(roles_changed());
    }
    let mut changed = conversation;
    changed.members_version += 1;
    changed.member_count = changed.member_count.saturating_sub(1);
    let event = events::members("member.removed", conversation_id, std::slice::from_ref(&user_id));
    let events = vec![
        Outgoing::to_conversation(&changed, event.clone()),
        Outgoing::to_users(vec![user_id.clone()], event),
    ];
    Ok(Published::new(Removal::Removed(user_id), events))
}

async fn delete_with_last_member(
    context: &AppContext,
    me: &str,
    conversation: &ConversationRecord,
) -> Result<Published<Removal>, ApiError> {
    if !context.store.delete_with_last_member(&conversation.id, me).await? {
        return Err(roles_changed());
    }
    let event = events::conversation_deleted(&conversation.id);
    Ok(Published::new(
        Removal::Deleted,
        vec![Outgoing::to_users(vec![me.to_owned()], event)],
    ))
}

/// The group's owner makes a member an `admin` or a plain `member` again; the members get
/// `member.role`. Not on the owner themself (ownership passes with [`transfer_ownership`]).
pub async fn set_role(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    user_id: &str,
    role: &str,
) -> Result<Published<Member>, ApiError> {
    let user_id = validate::ulid("userId", user_id)?;
    let role = match role.parse::<MemberRole>() {
        Ok(role @ (MemberRole::Admin | MemberRole::Member)) => role,
        _ => {
            return Err(ApiError::invalid(
                "role",
                "must be \"admin\" or \"member\" (ownership passes with POST .../owner)",
            ))
        }
    };
    let (conversation, member) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        return Err(ApiError::invalid("userId", "a direct conversation has no roles"));
    }
    if member.role != MemberRole::Owner {
        return Err(ApiError::Forbidden(
            "Only the group's owner can change roles.".to_owned(),
        ));
    }
    if user_id == me {
        return Err(ApiError::invalid(
            "userId",
            "the owner's own role changes only by passing ownership to someone else",
        ));
    }
    let target = target_member(context, &conversation, &user_id).await?;
    if target.role == role {
        return Ok(Published::quiet(Member::from(target)));
    }
    let changed = context
        .store
        .set_member_role(conversation_id, me, &user_id, role)
        .await?
        .ok_or_else(roles_changed)?;
    let event = events::member_role(conversation_id, &user_id, role.as_str());
    Ok(Published::new(
        Member::from(changed),
        vec![Outgoing::to_conversation(&conversation, event)],
    ))
}

/// Ownership passes from the caller to another member; the caller becomes an admin. The members get
/// `member.role` for both.
pub async fn transfer_ownership(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    user_id: &str,
) -> Result<Published<Conversation>, ApiError> {
    let user_id = validate::ulid("userId", user_id)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    if conversation.kind != ConversationKind::Group {
        return Err(ApiError::invalid("userId", "a direct conversation has no owner"));
    }
    if member.role != MemberRole::Owner {
        return Err(ApiError::Forbidden(
            "Only the group's owner can pass ownership on.".to_owned(),
        ));
    }
    if user_id == me {
        return Err(ApiError::invalid("userId", "you are the owner already"));
    }
    target_member(context, &conversation, &user_id).await?;
    if !context.store.transfer_ownership(conversation_id, me, &user_id).await? {
        return Err(roles_changed());
    }
    let events = vec![
        Outgoing::to_conversation(
            &conversation,
            events::member_role(conversation_id, &user_id, MemberRole::Owner.as_str()),
        ),
        Outgoing::to_conversation(
            &conversation,
            events::member_role(conversation_id, me, MemberRole::Admin.as_str()),
        ),
    ];
    let demoted = MemberRecord {
        role: MemberRole::Admin,
        ..member
    };
    Ok(Published::new(Conversation::new(conversation, &demoted), events))
}

/// Moves the caller's read marker forward to `message_id` (never back); when it moved, the members (and
/// the reader's other devices, all but `skip`) get `read` with the message's `seq`. Returns the message id.
pub async fn mark_read(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    message_id: &str,
    skip: Skip,
) -> Result<Published<String>, ApiError> {
    let message_id = validate::ulid("messageId", message_id)?;
    let (conversation, member) = membership(context, conversation_id, me).await?;
    let message = context
        .store
        .get_message(conversation_id, &message_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("There is no message with that id in this conversation.".to_owned()))?;
    let moved = context
        .store
        .advance_read_marker(conversation_id, me, message.seq, &message.id)
        .await?;
    // A marker that did not move (already there or further) is no news to anyone.
    if !moved {
        return Ok(Published::quiet(message.id));
    }
    // Mentions now read leave the member's set (the count ignores them already; this keeps it small).
    let read: Vec<u64> = member
        .mention_seqs
        .iter()
        .copied()
        .filter(|s| *s <= message.seq)
        .collect();
    if let Err(e) = context.store.trim_mentions(conversation_id, me, &read).await {
        tracing::warn!(error = %e, "read mentions not trimmed; the next marker move trims them");
    }
    let event = events::read(conversation_id, me, &message.id, message.seq);
    let events = vec![Outgoing::to_conversation(&conversation, event).skipping(skip)];
    Ok(Published::new(message.id, events))
}

/// `typing` is delivered at most once per user per conversation in this interval (docs/API-GUIDE.md,
/// "Client actions").
pub const TYPING_INTERVAL_MS: u64 = 3000;

/// `typing` from a member: to the other members' connections (not the typist's own, nor anyone who
/// blocked the typist), at most once per [`TYPING_INTERVAL_MS`]; extra frames are dropped silently.
/// The throttle costs one conditional write per frame; the blockers one Query per delivered event.
pub async fn typing(context: &AppContext, me: &str, conversation_id: &str) -> Result<Published<()>, ApiError> {
    let (conversation, member) = membership(context, conversation_id, me).await?;
    super::mutes::refuse_if_muted(context, &member)?;
    if !context
        .store
        .claim_typing(conversation_id, me, context.now_ms(), TYPING_INTERVAL_MS)
        .await?
    {
        return Ok(Published::quiet(()));
    }
    let mut skipped = crate::domain::blocks::blockers_of(context, me).await?;
    skipped.push(me.to_owned());
    let event = events::typing(conversation_id, me);
    let events = vec![Outgoing::to_conversation(&conversation, event).skipping(Skip::Users(skipped))];
    Ok(Published::new((), events))
}

/// Everyone who shares a conversation with `user_id` (not the user): whom `presence` goes to.
pub async fn co_members(context: &AppContext, user_id: &str) -> Result<Vec<String>, ApiError> {
    let memberships = context.store.all_memberships(user_id).await?;
    let ids: Vec<String> = memberships.into_iter().map(|m| m.conversation_id).collect();
    let mut people = std::collections::BTreeSet::new();
    for conversation in context.store.batch_get_conversations(&ids).await? {
        if !conversation.direct_members.is_empty() {
            people.extend(conversation.direct_members.iter().cloned());
            continue;
        }
        people.extend(
            context
                .fanout
                .members(&context.store, &conversation.id, conversation.members_version)
                .await?
                .iter()
                .cloned(),
        );
    }
    people.remove(user_id);
    Ok(people.into_iter().collect())
}
