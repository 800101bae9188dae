//! Key shapes of the single table (DESIGN.md "Data"). Kept in one place so that no two modules
//! spell a key differently.

pub const PROFILE: &str = "PROFILE";
pub const CLAIM: &str = "CLAIM";
pub const SESSION: &str = "SESSION";
pub const CHALLENGE: &str = "CHALLENGE";

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

pub fn session(session_id: &str) -> String {
    format!("SESSION#{session_id}")
}

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

pub fn client_message(sender_id: &str, client_message_id: &str) -> String {
    format!("CLIENTMSG#{sender_id}#{client_message_id}")
}

/// One direct conversation per pair: the ids in sorted order.
pub fn direct_pair(a: &str, b: &str) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("DIRECT#{low}#{high}")
}

/// GSI1 partition of a user's direct conversations, sorted by last activity.
pub fn user_directs(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// GSI1 partition of a user's groups (their order lives on each group's META).
pub fn user_groups(user_id: &str) -> String {
    format!("USERGROUPS#{user_id}")
}

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
