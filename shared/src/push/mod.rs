//! Push notifications for people who are offline (docs/API-GUIDE.md "Push notifications").
//!
//! The delivery worker knows, for each `message.new`, which members had a connection that took it;
//! the others (never the sender) go to the push queue as one [`PushJob`] per piece. The push worker
//! ([`worker`]) reads each of them once with one BatchGetItem (membership with its notification
//! settings, a block of the sender, the devices), honours levels, mutes and blocks, claims the one push
//! per member per conversation per [`COLLAPSE_WINDOW_MS`], and posts: Web Push ([`webpush`], signed
//! with [`vapid`]) to the browser's push service, APNs and FCM through SNS platform endpoints
//! ([`sns`]). Nothing of this runs on the sender's request path, and a push is best effort, at most
//! once: a push service's 429 or 5xx is tried again with backoff a few times, then dropped; a 404 or 410
//! removes the subscription at once.

pub mod sns;
pub mod vapid;
pub mod webpush;
pub mod worker;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::secrets::{FetchSecret, SecretsManagerFetch, TokenSecretSource};
use vapid::VapidKeys;

/// At most one push per member per conversation in this long; later messages in the window are
/// collapsed into it (the push service also replaces a queued one with the same `Topic`).
pub const COLLAPSE_WINDOW_MS: u64 = 10_000;
/// Devices one user may register.
pub const MAX_SUBSCRIPTIONS: usize = 20;
/// A push's `body`: the message's text cut to this many characters.
pub const BODY_CHARS: usize = 200;
/// Attempts per push to a service answering 429 or 5xx before it is dropped.
pub const PUSH_ATTEMPTS: u32 = 3;

/// What the push queue carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PushJob {
    /// A new message and the members none of whose connections took it.
    Message {
        conversation_id: String,
        message_id: String,
        seq: u64,
        sender_id: String,
        /// `None` for an `encrypted` message: its text never leaves the server in a push.
        body: Option<String>,
        #[serde(default)]
        mentions: Vec<String>,
        users: Vec<String>,
    },
    /// One push a service answered 429 or 5xx, to try again.
    Retry {
        user_id: String,
        subscription_id: String,
        conversation_id: String,
        /// The JSON payload, as first sent.
        payload: String,
        attempt: u32,
    },
}

impl PushJob {
    /// The job for a `message.new` event's message and the users to consider; `None` for a message
    /// that is not a live one (deleted, or not a message at all).
    pub fn for_new_message(message: &serde_json::Value, users: Vec<String>) -> Option<PushJob> {
        if message["deleted"].as_bool() == Some(true) {
            return None;
        }
        let encrypted = message["encrypted"].as_bool() == Some(true);
        Some(PushJob::Message {
            conversation_id: message["conversationId"].as_str()?.to_owned(),
            message_id: message["id"].as_str()?.to_owned(),
            seq: message["seq"].as_u64()?,
            sender_id: message["senderId"].as_str()?.to_owned(),
            body: if encrypted {
                None
            } else {
                message["body"].as_str().map(cut_body)
            },
            mentions: message["mentions"]
                .as_array()
                .map(|m| m.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            users,
        })
    }
}

/// The JSON a device receives (docs/API-GUIDE.md "Push notifications").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: String,
    pub conversation_id: String,
    pub message_id: String,
    pub seq: u64,
    pub sender_id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// The text of a push: at most [`BODY_CHARS`] characters (whole grapheme clusters), with an ellipsis
/// when cut.
pub fn cut_body(text: &str) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    if text.chars().count() <= BODY_CHARS {
        return text.to_owned();
    }
    let mut out = String::new();
    for grapheme in text.graphemes(true) {
        if out.chars().count() + grapheme.chars().count() > BODY_CHARS - 1 {
            break;
        }
        out.push_str(grapheme);
    }
    out.push('…');
    out
}

/// Push settings from the environment (defined in `config`, which reads them).
pub use crate::config::PushSettings as Settings;

/// What a process keeps for push: the settings, the VAPID keys (read on first use, again after the
/// secret's TTL) and the clients, each built on first use so only the push functions link them.
pub struct Push {
    pub settings: Settings,
    sdk: aws_config::SdkConfig,
    keys: tokio::sync::Mutex<Option<(Arc<VapidKeys>, Option<Instant>)>>,
    sns: OnceLock<aws_sdk_sns::Client>,
    http: OnceLock<reqwest::Client>,
}

impl Push {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings) -> Self {
        Push {
            settings,
            sdk: sdk.clone(),
            keys: tokio::sync::Mutex::new(None),
            sns: OnceLock::new(),
            http: OnceLock::new(),
        }
    }

    /// The VAPID keys: from `VAPID_SECRET` for the process, or from Secrets Manager, read again once
    /// the cached copy is older than the secret's TTL (a failed read keeps the cached keys).
    pub async fn keys(&self) -> Result<Arc<VapidKeys>, ApiError> {
        let mut cached = self.keys.lock().await;
        if let Some((keys, next_check)) = cached.as_ref() {
            if next_check.is_none_or(|next| Instant::now() < next) {
                return Ok(Arc::clone(keys));
            }
        }
        let (secret, ttl) = match &self.settings.secret {
            TokenSecretSource::Inline(secret) => (Ok(secret.clone()), None),
            TokenSecretSource::SecretsManager { arn, ttl } => {
                (SecretsManagerFetch::new(&self.sdk, arn).fetch().await, Some(*ttl))
            }
            TokenSecretSource::Absent => {
                return Err(ApiError::internal("no VAPID secret is configured (VAPID_SECRET_ARN)"))
            }
        };
        match secret {
            Ok(secret) => {
                let keys = Arc::new(VapidKeys::new(secret.current(), secret.previous()));
                *cached = Some((Arc::clone(&keys), ttl.map(|ttl| Instant::now() + ttl)));
                Ok(keys)
            }
            Err(error) => match cached.as_mut() {
                Some((keys, next_check)) => {
                    tracing::warn!(%error, "could not read the VAPID secret again; keeping the cached keys");
                    *next_check = Some(Instant::now() + crate::secrets::RETRY_AFTER_FAILURE);
                    Ok(Arc::clone(keys))
                }
                None => {
                    tracing::error!(%error, "could not read the VAPID secret");
                    Err(ApiError::Unavailable {
                        message: "Push notifications are unavailable for a moment; try again.".to_owned(),
                        retry_after_secs: 5,
                    })
                }
            },
        }
    }

    pub fn sns(&self) -> &aws_sdk_sns::Client {
        self.sns.get_or_init(|| aws_sdk_sns::Client::new(&self.sdk))
    }

    /// The client that posts to push services: short timeouts (a push service that does not answer
    /// in seconds gets the push again later), no redirects (a push endpoint does not move).
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(8))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the push HTTP client builds")
        })
    }

    /// The SNS platform application for a device type, if this deployment has one.
    pub fn platform_application(&self, kind: crate::kinds::DeviceKind) -> Option<&str> {
        match kind {
            crate::kinds::DeviceKind::Apns => self.settings.apns_application.as_deref(),
            crate::kinds::DeviceKind::Fcm => self.settings.fcm_application.as_deref(),
            crate::kinds::DeviceKind::WebPush => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_to_200_characters_on_grapheme_boundaries() {
        assert_eq!(cut_body("hello"), "hello");
        let exact = "a".repeat(200);
        assert_eq!(cut_body(&exact), exact);
        let long = "b".repeat(300);
        let cut = cut_body(&long);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with('…'));
        let flags = "🇫🇷".repeat(150);
        let cut = cut_body(&flags);
        assert!(cut.chars().count() <= 200);
        assert_eq!((cut.chars().count() - 1) % 2, 0, "no flag is split");
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let job = PushJob::Message {
            conversation_id: "c".into(),
            message_id: "m".into(),
            seq: 3,
            sender_id: "s".into(),
            body: None,
            mentions: vec![],
            users: vec!["u".into()],
        };
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains(r#""kind":"message""#), "{text}");
        assert!(text.contains(r#""conversationId":"c""#), "{text}");
        assert_eq!(serde_json::from_str::<PushJob>(&text).unwrap(), job);
    }
}
