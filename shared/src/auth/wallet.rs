//! Ethereum wallet sign-in: EIP-55 addresses and EIP-191 `personal_sign` signatures.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::error::ApiError;

/// A validated address, kept as lowercase `0x` + 40 hex (the form stored and compared).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(String);

impl Address {
    /// Accepts all-lowercase (or all-uppercase) hex, or mixed case that carries a valid EIP-55 checksum.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let hex_part = raw
            .strip_prefix("0x")
            .filter(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| ApiError::invalid("address", "must be 0x followed by 40 hexadecimal digits"))?;
        let lower = format!("0x{}", hex_part.to_ascii_lowercase());
        let mixed_case =
            hex_part.bytes().any(|b| b.is_ascii_lowercase()) && hex_part.bytes().any(|b| b.is_ascii_uppercase());
        if mixed_case && checksummed(&lower) != raw {
            return Err(ApiError::invalid("address", "has an invalid EIP-55 checksum"));
        }
        Ok(Address(lower))
    }

    pub fn as_lowercase(&self) -> &str {
        &self.0
    }

    /// The EIP-55 mixed-case form, for showing to people.
    pub fn checksummed(&self) -> String {
        checksummed(&self.0)
    }
}

fn checksummed(lower: &str) -> String {
    let hex_part = &lower[2..];
    let hash = Keccak256::digest(hex_part.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in hex_part.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        out.push(if nibble >= 8 { c.to_ascii_uppercase() } else { c });
    }
    out
}

/// The digest `personal_sign` signs: keccak256("\x19Ethereum Signed Message:\n" + len + message).
fn personal_message_hash(message: &str) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    hasher.update(message.as_bytes());
    hasher.finalize().into()
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_sec1_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    Address(format!("0x{}", hex::encode(&hash[12..])))
}

/// Parses a 65-byte `r || s || v` signature (hex, `0x` optional; `v` as 27/28 or 0/1).
pub fn parse_signature(raw: &str) -> Result<(Signature, RecoveryId), ApiError> {
    let bad = || ApiError::invalid("signature", "must be a 65-byte hexadecimal signature (r, s, v)");
    let bytes = hex::decode(raw.strip_prefix("0x").unwrap_or(raw)).map_err(|_| bad())?;
    if bytes.len() != 65 {
        return Err(bad());
    }
    let v = match bytes[64] {
        27 | 28 => bytes[64] - 27,
        0 | 1 => bytes[64],
        _ => return Err(bad()),
    };
    let signature = Signature::from_slice(&bytes[..64]).map_err(|_| bad())?;
    let recovery_id = RecoveryId::from_byte(v).ok_or_else(bad)?;
    Ok((signature, recovery_id))
}

/// The address whose key signed `message` with `personal_sign`, or `None` if nothing can be recovered.
pub fn recover_signer(message: &str, signature: &Signature, recovery_id: RecoveryId) -> Option<Address> {
    let hash = personal_message_hash(message);
    // Wallets emit low-s signatures (EIP-2); accept a high-s one by normalising it and flipping the parity.
    let normalized = signature.normalize_s();
    let recovery_id = if normalized != *signature {
        RecoveryId::new(!recovery_id.is_y_odd(), recovery_id.is_x_reduced())
    } else {
        recovery_id
    };
    VerifyingKey::recover_from_prehash(&hash, &normalized, recovery_id)
        .ok()
        .map(|key| address_of(&key))
}

/// Signs `message` as a wallet's `personal_sign` does: 65 bytes hex with `v` in {27, 28}.
/// Used by tests and tools that play the wallet.
pub fn personal_sign(key: &SigningKey, message: &str) -> String {
    let (signature, recovery_id) = key.sign_prehash_recoverable(&personal_message_hash(message));
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery_id.to_byte());
    format!("0x{}", hex::encode(bytes))
}

pub fn address_of_key(key: &SigningKey) -> Address {
    address_of(key.verifying_key())
}

/// The chain a sign-in names (EIP-4361 `Chain ID`): Ethereum mainnet. Signing in sends no
/// transaction; wallets show the chain and warn when it is not the one they are on.
pub const SIGNIN_CHAIN_ID: u64 = 1;

/// The one-time message a wallet signs: an EIP-4361 (Sign-In with Ethereum) message, whose domain and
/// URI let the wallet warn when the page asking is not `domain`.
pub fn challenge_message(domain: &str, address: &Address, nonce: &str, issued_at: &str, expires_at: &str) -> String {
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\nSign in to Parley. This request will not trigger a blockchain transaction or cost any gas.\n\nURI: https://{domain}\nVersion: 1\nChain ID: {SIGNIN_CHAIN_ID}\nNonce: {nonce}\nIssued At: {issued_at}\nExpiration Time: {expires_at}",
        address = address.checksummed()
    )
}

/// The `Nonce:` of an EIP-4361 message, if it has one of the shape this server gives out.
pub fn nonce_of(message: &str) -> Option<&str> {
    message
        .lines()
        .find_map(|line| line.strip_prefix("Nonce: "))
        .filter(|nonce| nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The key and address of the go-ethereum / ethers test vectors.
    const PRIVATE_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    const ADDRESS: &str = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";

    fn key() -> SigningKey {
        SigningKey::from_slice(&hex::decode(PRIVATE_KEY).unwrap()).unwrap()
    }

    #[test]
    fn derives_the_known_address_and_checksum() {
        assert_eq!(address_of_key(&key()).checksummed(), ADDRESS);
        assert_eq!(
            Address::parse(ADDRESS).unwrap(),
            Address::parse(&ADDRESS.to_lowercase()).unwrap()
        );
        // EIP-55's own examples.
        for good in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        ] {
            assert_eq!(Address::parse(good).unwrap().checksummed(), good);
        }
        assert!(
            Address::parse("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err(),
            "bad checksum"
        );
        assert!(Address::parse("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_err());
        assert!(Address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea").is_err());
    }

    #[test]
    fn matches_a_known_personal_sign_signature() {
        // eth-account (Python): Account.sign_message(encode_defunct(text="hello world"), PRIVATE_KEY)
        let expected = "0x0d5df3f9681b000a5b3a1d4252803318136714deba10c578f9b33718ad9c816e5520a6f19168136aa11e38d691d28a422bce4be3bf290fdb8efe45cdaefb20251c";
        assert_eq!(personal_sign(&key(), "hello world"), expected);
        let (sig, rid) = parse_signature(expected).unwrap();
        assert_eq!(recover_signer("hello world", &sig, rid).unwrap().checksummed(), ADDRESS);
    }

    #[test]
    fn another_message_or_key_recovers_another_address() {
        let signature = personal_sign(&key(), "message one");
        let (sig, rid) = parse_signature(&signature).unwrap();
        let recovered = recover_signer("message two", &sig, rid);
        assert_ne!(recovered, Some(address_of_key(&key())));
        let other = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let (sig, rid) = parse_signature(&personal_sign(&other, "message one")).unwrap();
        assert_ne!(recover_signer("message one", &sig, rid), Some(address_of_key(&key())));
    }

    #[test]
    fn rejects_malformed_signatures() {
        assert!(parse_signature("0x1234").is_err());
        assert!(parse_signature(&format!("0x{}", "zz".repeat(65))).is_err());
        assert!(parse_signature(&format!("0x{}1d", "11".repeat(64))).is_err(), "v = 29");
    }
}
