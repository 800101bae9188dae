//! The push worker: SQS batches of [`PushJob`]s in, pushes to devices out (see the module above).
//!
//! Per message job, one BatchGetItem reads, for every named member, their member item (still a member?
//! level, own mute), whether they blocked the sender, and their devices, with the sender's profile and
//! the conversation's META for the title. Each member who should be pushed and has a device claims the
//! conversation's collapse slot (one conditional write), and each of their devices gets the push.
//! A record whose reads or claims fail on DynamoDB is reported as a batch item failure and comes again;
//! the claims it made hold back a second push to those members for the window.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;

use super::sns::Published;
use super::webpush::{self, PushRequest};
use super::{cut_body, Payload, PushJob, COLLAPSE_WINDOW_MS, PUSH_ATTEMPTS};
use crate::error::ApiError;
use crate::kinds::ConversationKind;
use crate::store::{keys, subscriptions_key, subscriptions_of, Item, MemberRecord, PushSubscriptionRecord};
use crate::AppContext;

/// Pushes in flight at once from one invocation.
const CONCURRENT_PUSHES: usize = 32;
/// The longest `Retry-After` honoured; a service asking for more gets the push dropped sooner or later.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// What one push came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// 404 or 410 (or a disabled SNS endpoint): the subscription is removed.
    Gone,
    /// 429, 5xx or no answer: tried again after the delay (the service's `Retry-After` if it gave one).
    Retry(Option<Duration>),
    /// Any other refusal: dropped, and logged.
    Refused(u16),
}

/// The delay before attempt `attempt` (1-based) of a push: 2 s, 4 s, ...
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(2u64 << attempt.saturating_sub(1).min(5))
}

/// Handles one SQS batch; the records to retry are reported, the rest are done.
pub async fn handle(context: &AppContext, event: SqsEvent) -> SqsBatchResponse {
    let jobs = event.records.into_iter().map(|record| async move {
        let id = record.message_id.unwrap_or_default();
        let outcome = match record.body.as_deref().map(serde_json::from_str::<PushJob>) {
            Some(Ok(job)) => run(context, job).await,
            other => {
                tracing::error!(messageId = %id, problem = ?other.map(|r| r.err().map(|e| e.to_string())), "unreadable push record");
                Err(ApiError::internal("unreadable push record"))
            }
        };
        outcome.err().map(|e| {
            tracing::warn!(messageId = %id, error = %e, "push record failed; it will be retried");
            id
        })
    });
    let failed: Vec<String> = futures_util::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect();
    crate::batch_worker::sqs_failures(failed)
}

async fn run(context: &AppContext, job: PushJob) -> Result<(), ApiError> {
    match job {
        PushJob::Message {
            conversation_id,
            message_id,
            seq,
            sender_id,
            body,
            mentions,
            users,
        } => {
            let message = NewMessage {
                conversation_id,
                message_id,
                seq,
                sender_id,
                body,
                mentions,
            };
            Box::pin(push_message(context, &message, &users)).await
        }
        PushJob::Retry {
            user_id,
            subscription_id,
            conversation_id,
            payload,
            attempt,
        } => {
            Box::pin(push_again(
                context,
                &user_id,
                &subscription_id,
                &conversation_id,
                &payload,
                attempt,
            ))
            .await
        }
    }
}

struct NewMessage {
    conversation_id: String,
    message_id: String,
    seq: u64,
    sender_id: String,
    body: Option<String>,
    mentions: Vec<String>,
}

/// A member's notification settings, as the worker weighs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: String,
    pub level: String,
    pub muted_until_ms: Option<u64>,
    pub blocked_sender: bool,
}

/// Whether a member gets a push for a message (docs/API-GUIDE.md "Push notifications"): never the sender or
/// someone who blocked them; `none` or a mute in force: never; `mentions`: when mentioned, or in a
/// direct conversation; `all`: always.
pub fn wants_push(recipient: &Recipient, sender_id: &str, mentioned: bool, direct: bool, now_ms: u64) -> bool {
    if recipient.user_id == sender_id || recipient.blocked_sender {
        return false;
    }
    if recipient.muted_until_ms.is_some_and(|until| until > now_ms) {
        return false;
    }
    match recipient.level.as_str() {
        "none" => false,
        "mentions" => mentioned || direct,
        _ => true,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(rename = "type")]
    kind: ConversationKind,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

fn text(item: &Item, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

async fn push_message(context: &AppContext, message: &NewMessage, users: &[String]) -> Result<(), ApiError> {
    let users: BTreeSet<&String> = users.iter().filter(|u| **u != message.sender_id).collect();
    if users.is_empty() {
        return Ok(());
    }
    let conversation_pk = keys::conversation(&message.conversation_id);
    let mut wanted = vec![
        crate::store::key(conversation_pk.clone(), keys::META),
        crate::store::key(keys::user(&message.sender_id), keys::PROFILE),
    ];
    for user in &users {
        wanted.push(crate::store::key(conversation_pk.clone(), keys::member(user)));
        wanted.push(crate::store::key(keys::user(user), keys::block(&message.sender_id)));
        wanted.push(subscriptions_key(user));
    }
    let items = context.store.items(wanted).await?;
    let mut meta = None;
    let mut profile = None;
    let mut members: BTreeMap<String, MemberRecord> = BTreeMap::new();
    let mut blocked: BTreeSet<String> = BTreeSet::new();
    let mut devices: BTreeMap<String, Vec<PushSubscriptionRecord>> = BTreeMap::new();
    for item in items {
        let (pk, sk) = (text(&item, "PK"), text(&item, "SK"));
        if pk == conversation_pk && sk == keys::META {
            meta = Some(serde_dynamo::from_item::<_, Meta>(item)?);
        } else if pk == conversation_pk {
            let member: MemberRecord = serde_dynamo::from_item(item)?;
            members.insert(member.user_id.clone(), member);
        } else if sk == keys::PROFILE {
            profile = Some(serde_dynamo::from_item::<_, Profile>(item)?);
        } else if sk == keys::PUSH {
            let user = pk.trim_start_matches("USER#").to_owned();
            devices.insert(user, subscriptions_of(Some(item))?);
        } else if sk.starts_with(keys::BLOCK_PREFIX) {
            blocked.insert(pk.trim_start_matches("USER#").to_owned());
        }
    }
    let Some(meta) = meta else {
        return Ok(()); // the conversation was deleted meanwhile
    };
    let direct = meta.kind == ConversationKind::Direct;
    let sender_name = profile
        .and_then(|p| p.display_name.or(p.username))
        .unwrap_or_else(|| "Someone".to_owned());
    let title = match (&meta.name, direct) {
        (Some(name), false) => format!("{sender_name} in {name}"),
        _ => sender_name,
    };
    let payload = Payload {
        kind: "message".to_owned(),
        conversation_id: message.conversation_id.clone(),
        message_id: message.message_id.clone(),
        seq: message.seq,
        sender_id: message.sender_id.clone(),
        title,
        body: message.body.as_deref().map(cut_body),
    };
    let payload_json = serde_json::to_string(&payload).map_err(ApiError::internal)?;

    let now_ms = context.now_ms();
    let mut skipped = 0usize;
    let candidates: Vec<(&String, &Vec<PushSubscriptionRecord>)> = users
        .iter()
        .filter_map(|user| {
            let member = members.get(*user)?;
            let recipient = Recipient {
                user_id: (*user).clone(),
                level: member.notify_level.clone().unwrap_or_else(|| "all".to_owned()),
                muted_until_ms: member.notify_muted_until,
                blocked_sender: blocked.contains(*user),
            };
            let mentioned = message.mentions.iter().any(|m| m == *user);
            let subscriptions = devices.get(*user).filter(|d| !d.is_empty())?;
            if wants_push(&recipient, &message.sender_id, mentioned, direct, now_ms) {
                Some((*user, subscriptions))
            } else {
                skipped += 1;
                None
            }
        })
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let claims = futures_util::future::join_all(candidates.iter().map(|(user, _)| {
        context
            .store
            .claim_push(user, &message.conversation_id, now_ms, COLLAPSE_WINDOW_MS)
    }))
    .await;
    let mut sends = Vec::new();
    let mut collapsed = 0usize;
    for ((user, subscriptions), claim) in candidates.into_iter().zip(claims) {
        if claim? {
            sends.extend(subscriptions.iter().map(|s| (user.clone(), s.clone())));
        } else {
            collapsed += 1;
        }
    }
    let outcomes: Vec<(String, PushSubscriptionRecord, Outcome)> = stream::iter(sends)
        .map(|(user, subscription)| {
            let (payload, payload_json) = (&payload, &payload_json);
            async move {
                let outcome = send(context, &subscription, payload, payload_json).await;
                (user, subscription, outcome)
            }
        })
        .buffer_unordered(CONCURRENT_PUSHES)
        .collect()
        .await;
    tracing::info!(
        conversationId = %message.conversation_id,
        messageId = %message.message_id,
        candidates = users.len(),
        skipped,
        collapsed,
        pushes = outcomes.len(),
        "push"
    );
    crate::metrics::count("PushesCollapsed", collapsed as f64);
    settle(context, &message.conversation_id, &payload_json, outcomes, 0).await;
    Ok(())
}

/// Acts on the outcomes: counts them, removes gone subscriptions, queues retries.
async fn settle(
    context: &AppContext,
    conversation_id: &str,
    payload_json: &str,
    outcomes: Vec<(String, PushSubscriptionRecord, Outcome)>,
    attempt: u32,
) {
    let mut retries = Vec::new();
    let (mut sent, mut gone, mut dropped) = (0, 0, 0);
    for (user, subscription, outcome) in outcomes {
        match outcome {
            Outcome::Sent => sent += 1,
            Outcome::Gone => {
                gone += 1;
                remove(context, &user, &subscription).await;
            }
            Outcome::Retry(after) if attempt + 1 < PUSH_ATTEMPTS => {
                let delay = after.unwrap_or_else(|| backoff(attempt + 1)).min(MAX_RETRY_DELAY);
                retries.push((
                    PushJob::Retry {
                        user_id: user,
                        subscription_id: subscription.id.clone(),
                        conversation_id: conversation_id.to_owned(),
                        payload: payload_json.to_owned(),
                        attempt: attempt + 1,
                    },
                    delay,
                ));
            }
            Outcome::Retry(_) => {
                tracing::warn!(subscription = %subscription.id, attempt, "the push service kept failing; the push is dropped");
                dropped += 1;
            }
            Outcome::Refused(status) => {
                tracing::warn!(subscription = %subscription.id, status, "the push service refused the push; dropped");
                dropped += 1;
            }
        }
    }
    for (job, delay) in retries {
        if let Err(e) = queue(context, &[job], delay).await {
            tracing::warn!(error = %e, "could not queue a push retry; it is dropped");
            dropped += 1;
        }
    }
    crate::metrics::count("PushesSent", sent as f64);
    crate::metrics::count("PushSubscriptionsRemoved", gone as f64);
    crate::metrics::count("PushesDropped", dropped as f64);
}

async fn remove(context: &AppContext, user: &str, subscription: &PushSubscriptionRecord) {
    match context.store.delete_push_subscription(user, &subscription.id).await {
        Ok(_) => {
            tracing::info!(subscription = %subscription.id, "the push service says the subscription is gone; removed")
        }
        Err(e) => tracing::warn!(error = %e, "could not remove a gone push subscription"),
    }
    if let Some(arn) = &subscription.sns_endpoint_arn {
        context.push.delete_platform_endpoint(arn).await;
    }
}

async fn push_again(
    context: &AppContext,
    user: &str,
    subscription_id: &str,
    conversation_id: &str,
    payload_json: &str,
    attempt: u32,
) -> Result<(), ApiError> {
    let Some(subscription) = context
        .store
        .push_subscriptions(user)
        .await?
        .into_iter()
        .find(|s| s.id == subscription_id)
    else {
        return Ok(()); // removed meanwhile
    };
    let payload: Payload = serde_json::from_str(payload_json).map_err(ApiError::internal)?;
    let outcome = send(context, &subscription, &payload, payload_json).await;
    settle(
        context,
        conversation_id,
        payload_json,
        vec![(user.to_owned(), subscription, outcome)],
        attempt,
    )
    .await;
    Ok(())
}

/// Sends one push to one device.
async fn send(
    context: &AppContext,
    subscription: &PushSubscriptionRecord,
    payload: &Payload,
    payload_json: &str,
) -> Outcome {
    match subscription.kind {
        crate::kinds::DeviceKind::WebPush => send_web_push(context, subscription, payload_json).await,
        _ => match subscription.sns_endpoint_arn.as_deref() {
            Some(arn) => match context.push.publish_to_device(arn, payload).await {
                Published::Sent => Outcome::Sent,
                Published::Gone => Outcome::Gone,
                Published::Retry => Outcome::Retry(None),
                Published::Refused => Outcome::Refused(400),
            },
            None => Outcome::Gone,
        },
    }
}

async fn send_web_push(context: &AppContext, subscription: &PushSubscriptionRecord, payload_json: &str) -> Outcome {
    let (Some(endpoint), Some(p256dh), Some(auth)) = (&subscription.endpoint, &subscription.p256dh, &subscription.auth)
    else {
        return Outcome::Gone;
    };
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return Outcome::Gone;
    };
    let keys = match context.push.keys().await {
        Ok(keys) => keys,
        Err(_) => return Outcome::Retry(None),
    };
    // A subscription bound to a key we no longer hold cannot be pushed to any more.
    let Some(vapid) = keys.for_subscription(subscription.vapid_key.as_deref()) else {
        return Outcome::Gone;
    };
    let built = webpush::build(&PushRequest {
        endpoint: &uri,
        p256dh,
        auth,
        payload: payload_json.as_bytes(),
        topic: &subscription_topic(payload_json),
        vapid,
        contact: &context.push.settings.contact,
        now_secs: context.now_ms() / 1000,
    });
    let (body, headers) = match built {
        Ok(built) => built,
        Err(problem) => {
            tracing::warn!(subscription = %subscription.id, %problem, "could not build the push");
            return Outcome::Gone;
        }
    };
    let mut request = context.push.http().post(endpoint.as_str()).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match status {
                200..=299 => Outcome::Sent,
                404 | 410 => Outcome::Gone,
                429 | 500..=599 => Outcome::Retry(
                    response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs),
                ),
                other => Outcome::Refused(other),
            }
        }
        Err(e) => {
            tracing::warn!(subscription = %subscription.id, error = %e, "the push service did not answer");
            Outcome::Retry(None)
        }
    }
}

/// The conversation id, as the `Topic`: a newer push for the conversation replaces a queued one.
fn subscription_topic(payload_json: &str) -> String {
    serde_json::from_str::<Payload>(payload_json)
        .map(|p| p.conversation_id)
        .unwrap_or_default()
}

/// Puts jobs on the push queue, after `delay`.
pub async fn queue(context: &AppContext, jobs: &[PushJob], delay: Duration) -> Result<(), ApiError> {
    let Some(url) = &context.push.settings.queue_url else {
        return Ok(());
    };
    let bodies: Vec<String> = jobs
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    context.publisher.queue_bodies(url, &bodies, delay).await
}

/// Runs the worker as this process's Lambda function.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    crate::batch_worker::serve("SQS PushQueue", |context, event: SqsEvent| async move {
        Ok(handle(context, event).await)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient(level: &str) -> Recipient {
        Recipient {
            user_id: "u".into(),
            level: level.into(),
            muted_until_ms: None,
            blocked_sender: false,
        }
    }

    #[test]
    fn levels_mutes_and_blocks_decide() {
        assert!(wants_push(&recipient("all"), "s", false, false, 0));
        assert!(!wants_push(&recipient("all"), "u", false, false, 0), "never the sender");
        assert!(!wants_push(&recipient("none"), "s", true, true, 0));
        assert!(!wants_push(&recipient("mentions"), "s", false, false, 0));
        assert!(wants_push(&recipient("mentions"), "s", true, false, 0));
        assert!(
            wants_push(&recipient("mentions"), "s", false, true, 0),
            "direct conversations always"
        );
        let muted = Recipient {
            muted_until_ms: Some(1_000),
            ..recipient("all")
        };
        assert!(!wants_push(&muted, "s", true, true, 999));
        assert!(wants_push(&muted, "s", true, true, 1_000), "the mute is over");
        let blocker = Recipient {
            blocked_sender: true,
            ..recipient("all")
        };
        assert!(!wants_push(&blocker, "s", true, true, 0));
    }

    #[test]
    fn retries_back_off() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
    }
}
