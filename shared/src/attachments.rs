//! The attachments bucket (docs/API-GUIDE.md "Attachments"): presigned upload and download
//! URLs, HeadObject of what was uploaded, and deletes. Bytes never pass through a function: clients
//! `PUT` to and `GET` from S3 with the URLs made here.
//!
//! The S3 client is built on first use from the process's one `SdkConfig` (`AppContext::sdk`), so
//! only the functions that call into this module link and build it.
//!
//! Object keys: `uploads/<conversationId>/<attachmentId>`. Every upload carries the tag
//! `parley-unattached=1` (a signed header of its URL), which the bucket's lifecycle rule expires
//! after a day; attaching removes the tag, so an attached object stays until its message is deleted.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;

use crate::config_error::ConfigError;
use crate::error::ApiError;

/// The tag an upload carries until it is attached (the lifecycle rule's filter).
pub const UNATTACHED_TAG: &str = "parley-unattached=1";
/// 25 MiB (docs/API-GUIDE.md "Limits").
pub const MAX_SIZE: u64 = 26_214_400;

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `ATTACHMENTS_BUCKET`; without it the attachment routes answer 503.
    pub bucket: Option<String>,
    /// `AWS_ENDPOINT_URL_S3`: a local S3-compatible server, addressed path-style.
    pub endpoint: Option<String>,
    /// How long an upload URL is valid (`ATTACHMENT_UPLOAD_URL_SECONDS`, 900).
    pub upload_url_ttl: Duration,
    /// How long a download URL is valid (`ATTACHMENT_DOWNLOAD_URL_SECONDS`, 900).
    pub download_url_ttl: Duration,
    /// How long an upload that is never attached is kept (`ATTACHMENT_UPLOAD_TTL_SECONDS`, 86400):
    /// the record's `expiresAt`; after it the attachment is gone for every route.
    pub upload_ttl: Duration,
    /// How many bytes of attachments one user may have stored at once, uploads not yet sent included
    /// (`ATTACHMENT_QUOTA_BYTES`, 1 GiB).
    pub quota_bytes: u64,
}

/// The default per-user attachment quota: 1 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 1 << 30;

impl Settings {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let seconds = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=604_800).contains(s))
                    .map(Duration::from_secs)
                    .ok_or_else(|| ConfigError::Invalid {
                        name,
                        problem: format!("{v:?} is not a number of seconds from 1 to 604800"),
                    }),
            }
        };
        Ok(Settings {
            bucket: lookup("ATTACHMENTS_BUCKET").filter(|v| !v.is_empty()),
            endpoint: lookup("AWS_ENDPOINT_URL_S3").filter(|v| !v.is_empty()),
            upload_url_ttl: seconds("ATTACHMENT_UPLOAD_URL_SECONDS", 900)?,
            download_url_ttl: seconds("ATTACHMENT_DOWNLOAD_URL_SECONDS", 900)?,
            upload_ttl: seconds("ATTACHMENT_UPLOAD_TTL_SECONDS", 86_400)?,
            quota_bytes: match lookup("ATTACHMENT_QUOTA_BYTES").filter(|v| !v.trim().is_empty()) {
                None => DEFAULT_QUOTA_BYTES,
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|bytes| *bytes >= 1)
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "ATTACHMENT_QUOTA_BYTES",
                        problem: format!("{v:?} is not a number of bytes of at least 1"),
                    })?,
            },
        })
    }
}

/// What HeadObject found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    pub content_type: Option<String>,
}

/// The bucket, with its client built once per process on first use.
pub struct Storage {
    sdk: aws_config::SdkConfig,
    pub settings: Settings,
    client: OnceLock<aws_sdk_s3::Client>,
}

pub fn object_key(conversation_id: &str, attachment_id: &str) -> String {
    format!("uploads/{conversation_id}/{attachment_id}")
}

fn unavailable() -> ApiError {
    ApiError::Unavailable {
        message: "Attachments are not available right now; please retry.".to_owned(),
        retry_after_secs: 1,
    }
}

impl Storage {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings) -> Self {
        Storage {
            sdk: sdk.clone(),
            settings,
            client: OnceLock::new(),
        }
    }

    fn bucket(&self) -> Result<&str, ApiError> {
        self.settings.bucket.as_deref().ok_or_else(|| {
            tracing::error!("ATTACHMENTS_BUCKET is not set");
            unavailable()
        })
    }

    fn client(&self) -> &aws_sdk_s3::Client {
        self.client.get_or_init(|| {
            let mut config = aws_sdk_s3::config::Builder::from(&self.sdk);
            if let Some(endpoint) = &self.settings.endpoint {
                config = config.endpoint_url(endpoint).force_path_style(true);
            }
            aws_sdk_s3::Client::from_conf(config.build())
        })
    }

    fn presigning(expires_in: Duration, now: SystemTime) -> Result<PresigningConfig, ApiError> {
        PresigningConfig::builder()
            .start_time(now)
            .expires_in(expires_in)
            .build()
            .map_err(ApiError::internal)
    }

    /// A presigned `PUT` bound to the size, type and tag (all signed headers), and the headers the
    /// client must send with it.
    pub async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        now: SystemTime,
    ) -> Result<(String, Vec<(String, String)>), ApiError> {
        let request = self
            .client()
            .put_object()
            .bucket(self.bucket()?)
            .key(key)
            .content_type(content_type)
            .content_length(size as i64)
            // Signed, so the URL can only create the object: once uploaded (and so before it can be
            // sent) nothing can replace it through this URL (S3 conditional writes: 412).
            .if_none_match("*")
            .tagging(UNATTACHED_TAG)
            .presigned(Self::presigning(self.settings.upload_url_ttl, now)?);
        // Boxed, as every SDK future here: in a debug build they would make their callers' futures
        // too large for a 2 MiB thread stack.
        let request = Box::pin(request)
            .await
            .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        let headers = request
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Ok((request.uri().to_owned(), headers))
    }

    /// A presigned `GET` that downloads (`Content-Disposition: attachment`) with the stored type.
    pub async fn download_url(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let request = self
            .client()
            .get_object()
            .bucket(self.bucket()?)
            .key(key)
            .response_content_disposition(content_disposition(file_name))
            .response_content_type(content_type)
            .presigned(Self::presigning(self.settings.download_url_ttl, now)?);
        let request = Box::pin(request)
            .await
            .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(request.uri().to_owned())
    }

    /// The stored object's size and type; `None` when nothing was uploaded.
    pub async fn head(&self, key: &str) -> Result<Option<Stored>, ApiError> {
        match Box::pin(self.client().head_object().bucket(self.bucket()?).key(key).send()).await {
            Ok(out) => Ok(Some(Stored {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "HeadObject failed");
                Err(unavailable())
            }
        }
    }

    /// Takes the unattached tag off an attached object, so the lifecycle rule keeps it.
    pub async fn keep(&self, key: &str) -> Result<(), ApiError> {
        match Box::pin(
            self.client()
                .delete_object_tagging()
                .bucket(self.bucket()?)
                .key(key)
                .send(),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "DeleteObjectTagging failed");
                Err(unavailable())
            }
        }
    }

    /// Deletes an object; deleting one that is gone succeeds (idempotent).
    pub async fn delete(&self, key: &str) -> Result<(), ApiError> {
        match Box::pin(self.client().delete_object().bucket(self.bucket()?).key(key).send()).await {
            Ok(_) => Ok(()),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "DeleteObject failed");
                Err(unavailable())
            }
        }
    }
}

/// `attachment; filename="..."; filename*=UTF-8''...`: an ASCII fallback and the exact name.
fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_disposition_is_an_attachment_with_a_safe_fallback() {
        assert_eq!(
            super::content_disposition("a \"b\".png"),
            "attachment; filename=\"a _b_.png\"; filename*=UTF-8''a%20%22b%22.png"
        );
    }
}
