//! Push notification routes (`domain::push`): the VAPID key, the caller's devices, and a conversation's
//! notification settings.

use serde::{Deserialize, Serialize};

use super::conversations::conversation_id;
use crate::domain::push::{self as domain, NewSubscription};
use crate::error::ApiError;
use crate::http::{ApiRequest, Reply};
use crate::kinds::DeviceKind;
use crate::AppContext;

/// `GET /push/vapid-public-key` (no token): `200 {publicKey}`.
pub async fn vapid_public_key(context: &'static AppContext, _request: ApiRequest) -> Result<Reply, ApiError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Key {
        public_key: String,
    }
    let keys = context.push.keys().await?;
    Reply::ok(&Key {
        public_key: keys.current.public_key().to_owned(),
    })
}

#[derive(Deserialize)]
struct KeysBody {
    #[serde(default, deserialize_with = "super::not_null")]
    p256dh: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    auth: Option<String>,
}

#[derive(Deserialize)]
struct SubscriptionBody {
    #[serde(rename = "type", default, deserialize_with = "super::not_null")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    endpoint: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    keys: Option<KeysBody>,
    #[serde(default, deserialize_with = "super::not_null")]
    token: Option<String>,
}

/// The body as one kind of subscription, every problem named.
fn new_subscription(body: SubscriptionBody) -> Result<NewSubscription, ApiError> {
    let mut problems = crate::validate::Problems::default();
    let only_for =
        |field: &str, kind: &str| Err::<(), _>(ApiError::invalid(field, format!("is only for {kind} subscriptions")));
    let new = match body.kind.as_deref().map(str::parse::<DeviceKind>) {
        Some(Ok(DeviceKind::WebPush)) => {
            if body.token.is_some() {
                problems.check(only_for("token", "apns and fcm"));
            }
            let endpoint = problems.check(
                body.endpoint
                    .ok_or_else(|| ApiError::invalid("endpoint", "is required")),
            );
            let keys = problems.check(body.keys.ok_or_else(|| ApiError::invalid("keys", "is required")));
            let (p256dh, auth) = match keys {
                Some(keys) => (
                    problems.check(
                        keys.p256dh
                            .ok_or_else(|| ApiError::invalid("keys.p256dh", "is required")),
                    ),
                    problems.check(keys.auth.ok_or_else(|| ApiError::invalid("keys.auth", "is required"))),
                ),
                None => (None, None),
            };
            match (endpoint, p256dh, auth) {
                (Some(endpoint), Some(p256dh), Some(auth)) => Some(NewSubscription::WebPush { endpoint, p256dh, auth }),
                _ => None,
            }
        }
        Some(Ok(kind)) => {
            if body.endpoint.is_some() {
                problems.check(only_for("endpoint", "webpush"));
            }
            if body.keys.is_some() {
                problems.check(only_for("keys", "webpush"));
            }
            problems
                .check(body.token.ok_or_else(|| ApiError::invalid("token", "is required")))
                .map(|token| NewSubscription::Device { kind, token })
        }
        Some(Err(())) => problems.check(Err(ApiError::invalid("type", "must be webpush, apns or fcm"))),
        None => problems.check(Err(ApiError::invalid("type", "is required (webpush, apns or fcm)"))),
    };
    problems.finish()?;
    new.ok_or_else(|| ApiError::internal("a subscription without problems and without a value"))
}

/// `POST /users/me/push-subscriptions`: `201` when new, `200` with the same id when known.
pub async fn create(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let new = new_subscription(request.json()?)?;
    let (subscription, created) = domain::subscribe(context, &me, new).await?;
    if created {
        Reply::created(&subscription)
    } else {
        Reply::ok(&subscription)
    }
}

/// `GET /users/me/push-subscriptions`: `200 {items}`.
pub async fn list(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    #[derive(Serialize)]
    struct Items {
        items: Vec<domain::Subscription>,
    }
    let me = request.authenticate(context)?.sub;
    Reply::ok(&Items {
        items: domain::subscriptions(context, &me).await?,
    })
}

/// `DELETE /users/me/push-subscriptions/{subscriptionId}`: 204.
pub async fn delete(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    domain::unsubscribe(context, &me, request.path_param("subscriptionId")?).await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationsBody {
    #[serde(default, deserialize_with = "super::not_null")]
    level: Option<String>,
    /// `null` lifts the mute, as leaving it out does.
    #[serde(default)]
    muted_until: Option<String>,
}

/// `PUT /conversations/{conversationId}/notifications`: `200 {level, mutedUntil}`.
pub async fn put_notifications(context: &'static AppContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let me = request.authenticate(context)?.sub;
    let id = conversation_id(&request)?;
    let body: NotificationsBody = request.json()?;
    let settings =
        domain::set_notifications(context, &me, &id, body.level.as_deref(), body.muted_until.as_deref()).await?;
    Reply::ok(&settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<NewSubscription, ApiError> {
        new_subscription(serde_json::from_str(json).unwrap())
    }

    fn fields(error: ApiError) -> Vec<String> {
        match error {
            ApiError::Validation { details, .. } => details.into_iter().map(|d| d.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_type_takes_its_own_fields() {
        assert!(matches!(
            parse(
                r#"{"type":"webpush","endpoint":"https://x.example/p","keys":{"p256dh":"a","auth":"b"},"expirationTime":null}"#
            ),
            Ok(NewSubscription::WebPush { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"fcm","token":"t"}"#),
            Ok(NewSubscription::Device { .. })
        ));
        assert_eq!(
            fields(parse(r#"{"type":"webpush"}"#).unwrap_err()),
            ["endpoint", "keys"]
        );
        assert_eq!(
            fields(parse(r#"{"type":"webpush","endpoint":"e","keys":{}}"#).unwrap_err()),
            ["keys.p256dh", "keys.auth"]
        );
        assert_eq!(
            fields(parse(r#"{"type":"apns","endpoint":"e","token":"t"}"#).unwrap_err()),
            ["endpoint"]
        );
        assert_eq!(fields(parse(r#"{"type":"sms"}"#).unwrap_err()), ["type"]);
        assert_eq!(fields(parse(r#"{}"#).unwrap_err()), ["type"]);
    }
}
