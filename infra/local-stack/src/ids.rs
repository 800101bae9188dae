//! Identifiers and timestamps in the shapes API Gateway and Lambda use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

/// An API Gateway request id, e.g. `Jk2R4gZfoAMEVxg=`.
pub fn request_id() -> String {
    STANDARD.encode(random::<11>())
}

/// A WebSocket connection id, e.g. `L0SM9cOFvHcCIhw=`.
pub fn connection_id() -> String {
    STANDARD.encode(random::<11>())
}

/// A Lambda invocation id (a UUID v4).
pub fn invocation_id() -> String {
    let mut b = random::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// An X-Ray trace header as Lambda passes it.
pub fn trace_id() -> String {
    let epoch = epoch_millis(SystemTime::now()) / 1000;
    let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "Root=1-{epoch:08x}-{};Parent={};Sampled=0",
        hex(&random::<12>()),
        hex(&random::<8>())
    )
}

pub fn epoch_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

/// `25/Nov/2026:20:00:00 +0000`, the `requestContext.time` format.
pub fn clf_time(at: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = humantime::format_rfc3339_seconds(at).to_string(); // 2026-11-25T20:00:00Z
    let month: usize = iso[5..7].parse().unwrap_or(1);
    format!(
        "{}/{}/{}:{} +0000",
        &iso[8..10],
        MONTHS[month - 1],
        &iso[0..4],
        &iso[11..19]
    )
}

pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
}

/// A table stream's ARN; the label is the stream's creation time, as DynamoDB Local named it.
pub fn stream_arn(table: &str, label: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}/stream/{label}")
}

pub fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
}

/// A queue's URL on the local SQS endpoint, shaped as SQS's own: `<endpoint>/<account>/<name>`.
pub fn queue_url(endpoint: &str, name: &str) -> String {
    format!("{}/{ACCOUNT_ID}/{name}", endpoint.trim_end_matches('/'))
}

/// The ARN of a local secret. Secrets Manager ends an ARN with `-` and 6 random characters; locally
/// they come from the name, so a secret's ARN is the same in every run.
pub fn secret_arn(name: &str) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::digest(name.as_bytes());
    let suffix: String = digest[..6]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}-{suffix}")
}

/// The secret name in a Secrets Manager ARN (full, or without the random suffix when `suffixed` is
/// false); None for anything else.
pub fn name_in_secret_arn(arn: &str, suffixed: bool) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:secretsmanager:")?;
    let (_, name) = rest.split_once(":secret:")?;
    if !suffixed {
        return Some(name);
    }
    let (name, suffix) = name.rsplit_once('-')?;
    (suffix.len() == 6).then_some(name)
}

/// The secret a `{{resolve:secretsmanager:<id>:...}}` reference names: its name, or the one in its ARN.
pub fn secret_name(id: &str) -> &str {
    name_in_secret_arn(id, true).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(request_id().len(), 16);
        assert_eq!(invocation_id().len(), 36);
        let at = UNIX_EPOCH + Duration::from_secs(1_795_636_800);
        assert_eq!(clf_time(at), "25/Nov/2026:20:00:00 +0000");
        assert!(trace_id().starts_with("Root=1-"));
    }
}
