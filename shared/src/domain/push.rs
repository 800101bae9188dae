//! Push subscriptions and notification settings (docs/API-GUIDE.md "Push notifications"); the pushes
//! themselves are the push worker's (`push::worker`).

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::conversations::membership;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::kinds::DeviceKind;
use crate::push::{webpush, MAX_SUBSCRIPTIONS};
use crate::store::{PushSubscriptionRecord, Subscribed};
use crate::time::{now, rfc3339};

/// The furthest ahead a conversation's notifications can be muted: a year (`none` is for ever).
pub const MAX_NOTIFICATION_MUTE_SECS: u64 = 366 * 24 * 3600;
/// The longest device token accepted (APNs tokens are 64 hex characters, FCM's about 160).
pub const MAX_TOKEN_CHARS: usize = 512;

/// A subscription as its owner sees it: never its endpoint, keys or token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: DeviceKind,
    pub created_at: String,
}

impl From<&PushSubscriptionRecord> for Subscription {
    fn from(record: &PushSubscriptionRecord) -> Self {
        Subscription {
            id: record.id.clone(),
            kind: record.kind,
            created_at: record.created_at.clone(),
        }
    }
}

/// What a client registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewSubscription {
    WebPush {
        endpoint: String,
        p256dh: String,
        auth: String,
    },
    /// `apns` or `fcm`, and the device token.
    Device { kind: DeviceKind, token: String },
}

/// A device's id: the same device (type and endpoint or token) always gets the same one.
fn subscription_id(kind: DeviceKind, address: &str) -> String {
    let digest = Sha256::new()
        .chain_update(kind.as_str())
        .chain_update([0])
        .chain_update(address)
        .finalize();
    hex::encode(&digest[..16])
}

/// `POST /users/me/push-subscriptions`: the subscription, and whether it is new.
pub async fn subscribe(context: &AppContext, me: &str, new: NewSubscription) -> Result<(Subscription, bool), ApiError> {
    let created_at = rfc3339(now());
    let record = match new {
        NewSubscription::WebPush { endpoint, p256dh, auth } => {
            webpush::check_endpoint(&endpoint, context.push.settings.endpoints)
                .map_err(|problem| ApiError::invalid("endpoint", problem))?;
            webpush::decode_keys(&p256dh, &auth).map_err(|(field, problem)| ApiError::invalid(field, problem))?;
            let keys = context.push.keys().await?;
            PushSubscriptionRecord {
                id: subscription_id(DeviceKind::WebPush, &endpoint),
                kind: DeviceKind::WebPush,
                created_at,
                endpoint: Some(endpoint),
                p256dh: Some(p256dh),
                auth: Some(auth),
                vapid_key: Some(keys.current.public_key().to_owned()),
                token: None,
                sns_endpoint_arn: None,
            }
        }
        NewSubscription::Device { kind, token } => {
            if token.is_empty() || token.len() > MAX_TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::invalid(
                    "token",
                    format!("must be 1 to {MAX_TOKEN_CHARS} printable characters without spaces"),
                ));
            }
            let application = context.push.platform_application(kind).ok_or_else(|| {
                ApiError::invalid(
                    "type",
                    format!("{kind} push is not set up on this server (it has no platform application for it)"),
                )
            })?;
            let arn = context.push.create_platform_endpoint(application, &token).await?;
            PushSubscriptionRecord {
                id: subscription_id(kind, &token),
                kind,
                created_at,
                endpoint: None,
                p256dh: None,
                auth: None,
                vapid_key: None,
                token: Some(token),
                sns_endpoint_arn: Some(arn),
            }
        }
    };
    match context
        .store
        .put_push_subscription(me, &record, MAX_SUBSCRIPTIONS)
        .await?
    {
        Subscribed::Created(stored) => Ok(((&stored).into(), true)),
        Subscribed::Existing(stored) => Ok(((&stored).into(), false)),
        Subscribed::Full => Err(ApiError::Conflict(format!(
            "You have {MAX_SUBSCRIPTIONS} push subscriptions, the most allowed; delete one first."
        ))),
    }
}

/// `GET /users/me/push-subscriptions`.
pub async fn subscriptions(context: &AppContext, me: &str) -> Result<Vec<Subscription>, ApiError> {
    Ok(context
        .store
        .push_subscriptions(me)
        .await?
        .iter()
        .map(Subscription::from)
        .collect())
}

/// `DELETE /users/me/push-subscriptions/{id}`: `404` unless it is one of the caller's.
pub async fn unsubscribe(context: &AppContext, me: &str, id: &str) -> Result<(), ApiError> {
    let not_found = || ApiError::NotFound("You have no push subscription with that id.".to_owned());
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_found());
    }
    let removed = context
        .store
        .delete_push_subscription(me, id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(arn) = &removed.sns_endpoint_arn {
        context.push.delete_platform_endpoint(arn).await;
    }
    Ok(())
}

/// A member's notification settings for one conversation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSettings {
    pub level: String,
    pub muted_until: Option<String>,
}

impl NotificationSettings {
    /// As a member item holds them (a mute that is over reads as none).
    pub fn of(level: Option<&str>, muted_until_ms: Option<u64>, now_ms: u64) -> Self {
        NotificationSettings {
            level: level.unwrap_or("all").to_owned(),
            muted_until: muted_until_ms
                .filter(|until| *until > now_ms)
                .map(|until| rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(until))),
        }
    }
}

/// `PUT /conversations/{id}/notifications`.
pub async fn set_notifications(
    context: &AppContext,
    me: &str,
    conversation_id: &str,
    level: Option<&str>,
    muted_until: Option<&str>,
) -> Result<NotificationSettings, ApiError> {
    let mut problems = crate::validate::Problems::default();
    let level = problems.check(match level {
        Some(level @ ("all" | "mentions" | "none")) => Ok(level),
        Some(_) => Err(ApiError::invalid("level", "must be all, mentions or none")),
        None => Err(ApiError::invalid("level", "is required")),
    });
    let now_ms = context.now_ms();
    let until_ms = problems.check(match muted_until {
        None => Ok(None),
        Some(text) => match humantime::parse_rfc3339_weak(text) {
            Err(_) => Err(ApiError::invalid(
                "mutedUntil",
                "must be an RFC 3339 time in UTC, like 2026-12-07T18:00:00Z",
            )),
            Ok(at) => {
                let ms = crate::time::epoch_ms(at);
                if ms <= now_ms {
                    Err(ApiError::invalid(
                        "mutedUntil",
                        "must be in the future (null lifts the mute)",
                    ))
                } else if ms > now_ms + MAX_NOTIFICATION_MUTE_SECS * 1000 {
                    Err(ApiError::invalid(
                        "mutedUntil",
                        "must be at most a year ahead (level none is for ever)",
                    ))
                } else {
                    Ok(Some(ms))
                }
            }
        },
    });
    problems.finish()?;
    let (level, until_ms) = (level.unwrap_or("all"), until_ms.flatten());
    membership(context, conversation_id, me).await?;
    if !context
        .store
        .set_notifications(conversation_id, me, level, until_ms)
        .await?
    {
        return Err(ApiError::NotFound("Conversation not found.".to_owned()));
    }
    Ok(NotificationSettings::of(Some(level), until_ms, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_device_one_id() {
        let a = subscription_id(DeviceKind::WebPush, "https://push.example.com/a");
        assert_eq!(a, subscription_id(DeviceKind::WebPush, "https://push.example.com/a"));
        assert_ne!(a, subscription_id(DeviceKind::WebPush, "https://push.example.com/b"));
        assert_ne!(
            subscription_id(DeviceKind::Apns, "t"),
            subscription_id(DeviceKind::Fcm, "t")
        );
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn a_mute_that_is_over_reads_as_none() {
        let s = NotificationSettings::of(Some("mentions"), Some(1_000), 2_000);
        assert_eq!(s.level, "mentions");
        assert_eq!(s.muted_until, None);
        let s = NotificationSettings::of(None, Some(3_000), 2_000);
        assert_eq!(s.level, "all");
        assert_eq!(s.muted_until.as_deref(), Some("1970-01-01T00:00:03.000Z"));
    }
}
