//! The cryptography of sign-in: password hashes, access tokens, refresh tokens, wallet signatures.

pub mod password;
pub mod refresh;
pub mod session_state;
pub mod tokens;
pub mod wallet;

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}
