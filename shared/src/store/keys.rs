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
