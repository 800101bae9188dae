//! The keys that sign and verify what Parley hands out: access tokens (`tokens`) and refresh tokens
//! (`refresh`), from the token secret. A leaf below `auth`, so that `secrets`, which builds the keys
//! from the secret it reads, depends on no layer that needs the context.

pub mod refresh;
pub mod tokens;

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}
