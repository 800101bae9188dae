//! Key shapes of the single table (docs/ARCHITECTURE.md "Data model: one DynamoDB table"). Kept in
//! one place so that no two modules spell a key differently.

pub const PROFILE: &str = "PROFILE";
pub const CLAIM: &str = "CLAIM";
pub const SESSION: &str = "SESSION";

pub fn user(user_id: &str) -> String {
    format!("USER#{user_id}")
}

pub fn username(name: &str) -> String {
    format!("USERNAME#{name}")
}

pub fn wallet(address_lowercase: &str) -> String {
    format!("WALLET#{address_lowercase}")
}

pub fn wallet_challenge(address_lowercase: &str) -> String {
    format!("WALLETCHALLENGE#{address_lowercase}")
}

/// One pending challenge of an address, by its nonce: several can be pending at once.
pub fn challenge_nonce(nonce: &str) -> String {
    format!("{CHALLENGE_NONCE_PREFIX}{nonce}")
}

pub const CHALLENGE_NONCE_PREFIX: &str = "NONCE#";

pub fn session(session_id: &str) -> String {
    format!("SESSION#{session_id}")
}

/// GSI1 partition of a user's live sessions (sort key: the session id, a ULID, so newest last). A
/// revoked session leaves the index (its GSI1 keys are removed), so listing reads live ones only.
pub fn user_sessions(user_id: &str) -> String {
    format!("USERSESSIONS#{user_id}")
}

/// A username's failed-login streak from one source (see `store::rate_limits`): under `RATE#` like the
/// other counters. `source` is the client's IP address (empty when unknown).
pub fn login_failures(username: &str, source: &str) -> String {
    rate_counter(&format!("loginfail#{username}#{source}"))
}

pub const LOGIN_FAILURES: &str = "FAILS";

pub const META: &str = "META";
/// A conversation's position counter (see `store::positions`).
pub const SEQ: &str = "SEQ";

pub fn conversation(conversation_id: &str) -> String {
    format!("CONV#{conversation_id}")
}

pub fn member(user_id: &str) -> String {
    format!("MEMBER#{user_id}")
}

pub const MEMBER_PREFIX: &str = "MEMBER#";

pub fn message(message_id: &str) -> String {
    format!("MSG#{message_id}")
}

pub const MESSAGE_PREFIX: &str = "MSG#";

/// An attachment of a conversation (see `store::attachments`).
pub fn attachment(attachment_id: &str) -> String {
    format!("ATTACH#{attachment_id}")
}

pub const ATTACHMENT_PREFIX: &str = "ATTACH#";

/// `CONV#<id>` / `BAN#<userId>`: a user kept out of a group (`store::bans`).
pub fn ban(user_id: &str) -> String {
    format!("{BAN_PREFIX}{user_id}")
}

pub const BAN_PREFIX: &str = "BAN#";

/// `CONV#<id>` / `PIN#<messageId>`: a pinned message (`store::pins`).
pub fn pin(message_id: &str) -> String {
    format!("{PIN_PREFIX}{message_id}")
}

pub const PIN_PREFIX: &str = "PIN#";

/// `USER#<userId>` / `PRESENCE`: the user's presence throttle (`store::presence`).
pub const PRESENCE: &str = "PRESENCE";

/// `USER#<userId>` / `STORAGE`: the bytes of attachments the user has stored (`store::attachments`).
pub const STORAGE: &str = "STORAGE";

/// `USER#<uploader>` / `RELEASED#<attachmentId>`: that the attachment's bytes went back to its
/// uploader's quota (once, however often its removal is seen).
pub fn released(attachment_id: &str) -> String {
    format!("RELEASED#{attachment_id}")
}

/// `SRCH#<conversationId>` / `<messageId>`: the partition of a conversation's search index, one item
/// per indexed message (see `crate::search`).
pub fn search_index(conversation_id: &str) -> String {
    format!("SRCH#{conversation_id}")
}

pub fn client_message(sender_id: &str, client_message_id: &str) -> String {
    format!("CLIENTMSG#{sender_id}#{client_message_id}")
}

/// One direct conversation per pair: the ids in sorted order.
pub fn direct_pair(a: &str, b: &str) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("DIRECT#{low}#{high}")
}

/// GSI1 partition of a user's conversations (direct and group), sorted by last activity: every
/// member item carries `<activity>#<conversationId>` as its GSI1SK (see `store::conversations`).
pub fn user_conversations(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// The marker whose writes drive a deleted conversation's clean-up in rounds (see `domain::upkeep`).
pub const PURGE: &str = "PURGE";

/// The typing throttle's last-delivered time for one member of one conversation.
pub fn typing(user_id: &str) -> String {
    format!("TYPING#{user_id}")
}

/// `USER#<blocker>` / `BLOCK#<blocked>`: whom a user blocked (see `store::blocks`).
pub fn block(blocked: &str) -> String {
    format!("BLOCK#{blocked}")
}

pub const BLOCK_PREFIX: &str = "BLOCK#";

/// `USER#<blocked>` / `BLOCKEDBY#<blocker>`: who blocked a user, the mirror of [`block`].
pub fn blocked_by(blocker: &str) -> String {
    format!("BLOCKEDBY#{blocker}")
}

pub const BLOCKED_BY_PREFIX: &str = "BLOCKEDBY#";

pub const CONNS: &str = "CONNS";
pub const CONN: &str = "CONN";

pub fn connection(connection_id: &str) -> String {
    format!("CONN#{connection_id}")
}

/// A rate-limit counter: one item per subject (`ip#1.2.3.4`, `user#01H...`) and window start.
pub fn rate_counter(subject: &str) -> String {
    format!("RATE#{subject}")
}

pub fn rate_window(window_start_secs: u64) -> String {
    format!("W#{window_start_secs}")
}

/// One user's reactions to one message (a string set), under the conversation: `REACT#<userId>#<messageId>`,
/// so a history page's worth of them is one Query of a key range.
pub fn reactions_of(user_id: &str, message_id: &str) -> String {
    format!("REACT#{user_id}#{message_id}")
}

/// GSI1 partition of a thread's replies, sorted by id.
pub fn thread(parent_message_id: &str) -> String {
    format!("THREAD#{parent_message_id}")
}

/// GSI2 partition of a user's sync keys (see `store::sync`): each member item carries
/// `<stamp>#<conversationId>` as its GSI2SK once the conversation worker marked it changed, and each
/// conversation the user left has a [`left`] item there too.
pub fn user_sync(user_id: &str) -> String {
    format!("SYNC#{user_id}")
}

/// `<stamp>#<conversationId>`: a GSI2 sort key, the stamp in milliseconds zero-padded so keys sort by time.
pub fn sync_key(stamp_ms: u64, conversation_id: &str) -> String {
    format!("{stamp_ms:013}#{conversation_id}")
}

/// `USER#<userId>` / `LEFT#<conversationId>`: that the user left (or was removed from) a conversation,
/// for `GET /sync`'s `removed`.
pub fn left(conversation_id: &str) -> String {
    format!("LEFT#{conversation_id}")
}

/// `CONV#<id>` / `CHANGE#<stamp>#<unique>`: the ids of the conversation's messages that one batch of
/// the conversation worker saw created or changed, at `stamp` (milliseconds, zero-padded).
pub fn change(stamp_ms: u64, unique: &str) -> String {
    format!("CHANGE#{stamp_ms:013}#{unique}")
}

pub const CHANGE_PREFIX: &str = "CHANGE#";

/// `USER#<id>` / `PUSH`: the user's devices registered for push (`store::push`).
pub const PUSH: &str = "PUSH";

/// `USER#<id>` / `PUSHED#<conversationId>`: when the user was last pushed for the conversation.
pub fn pushed(conversation_id: &str) -> String {
    format!("PUSHED#{conversation_id}")
}

/// `USER#<invitee>` / `INVITATION#<id>`: a pending invitation to a group (`store::invitations`).
pub fn invitation(id: &str) -> String {
    format!("{INVITATION_PREFIX}{id}")
}

pub const INVITATION_PREFIX: &str = "INVITATION#";

/// `INVITE#<code>` / `INVITE`: an invite link (`store::invitations`).
pub fn invite(code: &str) -> String {
    format!("INVITE#{code}")
}

pub const INVITE: &str = "INVITE";

/// GSI1 partition of a group's invite links.
pub fn conversation_invites(conversation_id: &str) -> String {
    format!("INVITES#{conversation_id}")
}

/// `CONV#<id>` / `REPORT#<reportId>`: a report (`store::reports`).
pub fn report(report_id: &str) -> String {
    format!("{REPORT_PREFIX}{report_id}")
}

pub const REPORT_PREFIX: &str = "REPORT#";

/// GSI1 partition of every report, for the platform's admins.
pub const REPORTS: &str = "REPORTS";
