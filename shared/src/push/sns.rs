//! APNs and FCM through Amazon SNS mobile push: a device token becomes a platform endpoint of the
//! deployment's platform application (`CreatePlatformEndpoint`, idempotent for the same token), and a
//! push is a `Publish` to it with a per-platform message (`MessageStructure: json`).

use aws_sdk_sns::error::ProvideErrorMetadata;
use serde_json::json;

use super::{Payload, Push};
use crate::error::ApiError;

/// What a publish came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Sent,
    /// The endpoint is disabled or gone (the app was uninstalled, the token expired): remove it.
    Gone,
    /// Throttled or failing: worth another attempt later.
    Retry,
    /// Refused for good (bad parameters): dropped.
    Refused,
}

impl Push {
    /// The platform endpoint of a device token.
    pub async fn create_platform_endpoint(&self, application_arn: &str, token: &str) -> Result<String, ApiError> {
        let out = self
            .sns()
            .create_platform_endpoint()
            .platform_application_arn(application_arn)
            .token(token)
            .send()
            .await
            .map_err(|e| {
                let code = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .unwrap_or_default()
                    .to_owned();
                tracing::warn!(error = %aws_sdk_sns::error::DisplayErrorContext(&e), "CreatePlatformEndpoint failed");
                if code == "InvalidParameter" {
                    ApiError::invalid("token", "is not a valid device token for this platform")
                } else {
                    ApiError::Unavailable {
                        message: "The push service is unavailable for a moment; try again.".to_owned(),
                        retry_after_secs: 5,
                    }
                }
            })?;
        out.endpoint_arn
            .ok_or_else(|| ApiError::internal("CreatePlatformEndpoint answered no EndpointArn"))
    }

    /// Deletes a platform endpoint (best effort: a failure is logged).
    pub async fn delete_platform_endpoint(&self, endpoint_arn: &str) {
        if let Err(e) = self.sns().delete_endpoint().endpoint_arn(endpoint_arn).send().await {
            tracing::warn!(error = %aws_sdk_sns::error::DisplayErrorContext(&e), "DeleteEndpoint failed");
        }
    }

    /// Publishes one notification to a platform endpoint.
    pub async fn publish_to_device(&self, endpoint_arn: &str, payload: &Payload) -> Published {
        let text = payload.body.clone().unwrap_or_else(|| "New message".to_owned());
        // FCM data values are strings; `type` as the Web Push payload has it.
        let mut data = serde_json::Map::new();
        data.insert("type".into(), payload.kind.clone().into());
        data.insert("conversationId".into(), payload.conversation_id.clone().into());
        data.insert("messageId".into(), payload.message_id.clone().into());
        data.insert("seq".into(), payload.seq.to_string().into());
        data.insert("senderId".into(), payload.sender_id.clone().into());
        let apns = json!({
            "aps": {"alert": {"title": payload.title, "body": text}, "thread-id": payload.conversation_id, "sound": "default"},
            "parley": data,
        });
        let fcm = json!({
            "notification": {"title": payload.title, "body": text, "tag": payload.conversation_id},
            "data": data,
        });
        let message = json!({
            "default": text,
            "APNS": apns.to_string(),
            "APNS_SANDBOX": apns.to_string(),
            "GCM": fcm.to_string(),
        });
        match self
            .sns()
            .publish()
            .target_arn(endpoint_arn)
            .message_structure("json")
            .message(message.to_string())
            .send()
            .await
        {
            Ok(_) => Published::Sent,
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .unwrap_or_default()
                    .to_owned();
                tracing::warn!(code, error = %aws_sdk_sns::error::DisplayErrorContext(&e), "SNS Publish failed");
                match code.as_str() {
                    "EndpointDisabled" | "NotFound" => Published::Gone,
                    "InvalidParameter" | "InvalidParameterValue" | "AuthorizationError" => Published::Refused,
                    _ => Published::Retry,
                }
            }
        }
    }
}
