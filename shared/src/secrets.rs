//! The token-signing secret: where it comes from, and the keys made from it.
//!
//! Deployed functions read it from Secrets Manager at cold start (`TOKEN_SECRET_ARN`; the secret's JSON
//! keys `current` and `previous`), never from their environment, which anyone who may read a function's
//! configuration can see. The keys are cached for the process and the secret is read again once the
//! cached copy is older than `TOKEN_SECRET_TTL_SECS` (300 by default), so a rotation reaches every
//! container within that time without a Secrets Manager call per request. The check runs at the start
//! of an invocation, not in a background task, because Lambda freezes a process between invocations.
//!
//! In-process tests and local tools may still set `TOKEN_SECRET` (and `TOKEN_SECRET_PREVIOUS`)
//! directly; such a secret is fixed for the process.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::cursor::Cursors;
use crate::signing::tokens::TokenKeys;

/// Secrets shorter than this are refused: an HS256 key should be at least as long as its hash.
pub const MIN_SECRET_BYTES: usize = 32;

/// How long a container keeps the secret before reading it again, unless `TOKEN_SECRET_TTL_SECS` says.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// After a failed read the cached secret is served for this long (or the TTL, if shorter) before the
/// next attempt, so an outage of Secrets Manager costs one slow request per container per interval
/// rather than a call on every request.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The current secret and the one before the last rotation, whose tokens, refresh tokens and cursors
/// are still accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSecret")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Which half of the secret is wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    Current(String),
    Previous(String),
}

impl std::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretProblem::Current(problem) => write!(f, "current: {problem}"),
            SecretProblem::Previous(problem) => write!(f, "previous: {problem}"),
        }
    }
}

impl TokenSecret {
    /// `previous` may be absent, empty or the word `none` (what the secret holds before its first
    /// rotation): then there is none.
    pub fn new(current: &str, previous: Option<&str>) -> Result<Self, SecretProblem> {
        if current.len() < MIN_SECRET_BYTES {
            return Err(SecretProblem::Current(format!(
                "must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        let previous = previous.filter(|p| {
            let trimmed = p.trim();
            !trimmed.is_empty() && !trimmed.eq_ignore_ascii_case("none")
        });
        if let Some(previous) = previous {
            if previous.len() < MIN_SECRET_BYTES {
                return Err(SecretProblem::Previous(format!(
                    "must be at least {MIN_SECRET_BYTES} bytes (or `none`)"
                )));
            }
            if previous == current {
                return Err(SecretProblem::Previous(
                    "is the same as the current secret: a rotation needs a new current secret".to_owned(),
                ));
            }
        }
        Ok(TokenSecret {
            current: current.as_bytes().to_vec(),
            previous: previous.map(|p| p.as_bytes().to_vec()),
        })
    }

    /// The secret's `SecretString`: `{"current": "...", "previous": "..." | "none"}`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Stored {
            current: String,
            previous: Option<String>,
        }
        // serde's message would quote the text, which is the secret.
        let stored: Stored = serde_json::from_str(text)
            .map_err(|_| "the secret is not a JSON object with a string `current` (and `previous`)".to_owned())?;
        Self::new(&stored.current, stored.previous.as_deref()).map_err(|p| p.to_string())
    }

    pub fn current(&self) -> &[u8] {
        &self.current
    }

    pub fn previous(&self) -> Option<&[u8]> {
        self.previous.as_deref()
    }
}

/// Where a process gets its token secret (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSecretSource {
    /// `TOKEN_SECRET` and `TOKEN_SECRET_PREVIOUS`: fixed for the process (tests and local tools).
    Inline(TokenSecret),
    /// `TOKEN_SECRET_ARN`: read from Secrets Manager, again after `ttl`.
    SecretsManager { arn: String, ttl: Duration },
    /// Neither: fine for a function that neither signs nor verifies anything.
    Absent,
}

/// One read of the secret. A trait so the cache can be tested without Secrets Manager.
pub trait FetchSecret: Send + Sync {
    fn fetch(&self) -> BoxFuture<'_, Result<TokenSecret, String>>;
}

/// `GetSecretValue` on the secret's ARN.
pub struct SecretsManagerFetch {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
}

impl SecretsManagerFetch {
    pub fn new(sdk: &aws_config::SdkConfig, arn: &str) -> Self {
        SecretsManagerFetch {
            client: aws_sdk_secretsmanager::Client::new(sdk),
            arn: arn.to_owned(),
        }
    }
}

impl FetchSecret for SecretsManagerFetch {
    fn fetch(&self) -> BoxFuture<'_, Result<TokenSecret, String>> {
        Box::pin(async move {
            let output = self
                .client
                .get_secret_value()
                .secret_id(&self.arn)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "GetSecretValue: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                    )
                })?;
            let text = output
                .secret_string()
                .ok_or_else(|| "GetSecretValue: the secret has no SecretString".to_owned())?;
            TokenSecret::from_json(text)
        })
    }
}

/// What is made from one version of the secret.
struct Loaded {
    secret: TokenSecret,
    tokens: Arc<TokenKeys>,
    cursors: Arc<Cursors>,
    /// When the secret should next be read (never, for a fixed secret).
    next_check: Option<Instant>,
}

struct Refresh {
    fetch: Box<dyn FetchSecret>,
    ttl: Duration,
    /// Held by the one invocation reading the secret; the others keep serving the cached keys.
    in_flight: tokio::sync::Mutex<()>,
}

/// The process's token and cursor keys, made from the cached secret.
pub struct TokenSecrets {
    access_token_ttl: Duration,
    loaded: RwLock<Option<Loaded>>,
    refresh: Option<Refresh>,
}

impl TokenSecrets {
    /// A secret that never changes for this process.
    pub fn fixed(secret: &TokenSecret, access_token_ttl: Duration) -> Self {
        TokenSecrets {
            access_token_ttl,
            loaded: RwLock::new(Some(Self::load(secret, access_token_ttl, None))),
            refresh: None,
        }
    }

    /// No secret: [`Self::tokens`] and [`Self::cursors`] panic.
    pub fn absent(access_token_ttl: Duration) -> Self {
        TokenSecrets {
            access_token_ttl,
            loaded: RwLock::new(None),
            refresh: None,
        }
    }

    /// Reads the secret now (cold start: a function that cannot read it cannot serve, so this fails),
    /// and again at the first invocation after `ttl`.
    pub async fn fetched(
        fetch: Box<dyn FetchSecret>,
        ttl: Duration,
        access_token_ttl: Duration,
    ) -> Result<Self, String> {
        let secret = fetch.fetch().await?;
        let loaded = Self::load(&secret, access_token_ttl, Some(Instant::now() + ttl));
        Ok(TokenSecrets {
            access_token_ttl,
            loaded: RwLock::new(Some(loaded)),
            refresh: Some(Refresh {
                fetch,
                ttl,
                in_flight: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn load(secret: &TokenSecret, access_token_ttl: Duration, next_check: Option<Instant>) -> Loaded {
        Loaded {
            secret: secret.clone(),
            tokens: Arc::new(TokenKeys::with_previous(
                secret.current(),
                secret.previous(),
                access_token_ttl,
            )),
            cursors: Arc::new(Cursors::with_previous(secret.current(), secret.previous())),
            next_check,
        }
    }

    fn is_stale(&self) -> bool {
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
        loaded
            .as_ref()
            .and_then(|l| l.next_check)
            .is_some_and(|next| Instant::now() >= next)
    }

    /// Reads the secret again when the cached copy is older than its TTL. Called at the start of every
    /// invocation: without a stale copy it only compares two instants. At most one read is in flight;
    /// an invocation that finds one running goes on with the cached keys. A failed read keeps them too
    /// (a rotation keeps the old current as `previous`, so they still verify what is in circulation)
    /// and is retried after [`RETRY_AFTER_FAILURE`].
    pub async fn refresh_if_stale(&self) {
        let Some(refresh) = &self.refresh else {
            return;
        };
        if !self.is_stale() {
            return;
        }
        let Ok(_reading) = refresh.in_flight.try_lock() else {
            return;
        };
        // Another invocation may have refreshed between the check and the lock.
        if !self.is_stale() {
            return;
        }
        let outcome = refresh.fetch.fetch().await;
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        let Some(current) = loaded.as_mut() else {
            return;
        };
        match outcome {
            Ok(secret) if secret == current.secret => {
                current.next_check = Some(Instant::now() + refresh.ttl);
            }
            Ok(secret) => {
                tracing::info!("the token secret changed: new tokens are signed with its new current value");
                *current = Self::load(&secret, self.access_token_ttl, Some(Instant::now() + refresh.ttl));
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the token secret again; keeping the cached one");
                current.next_check = Some(Instant::now() + RETRY_AFTER_FAILURE.min(refresh.ttl));
            }
        }
    }

    fn loaded<T>(&self, pick: impl FnOnce(&Loaded) -> T) -> T {
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
        pick(loaded.as_ref().expect(
            "this function was started without the token secret (AppContext::from_env_without_token_secret), \
             yet signs or verifies something",
        ))
    }

    /// The access-token keys of the cached secret.
    pub fn tokens(&self) -> Arc<TokenKeys> {
        self.loaded(|l| Arc::clone(&l.tokens))
    }

    /// The cursor keys of the cached secret.
    pub fn cursors(&self) -> Arc<Cursors> {
        self.loaded(|l| Arc::clone(&l.cursors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::SystemTime;

    const A: &str = "secret-a-secret-a-secret-a-secret-a";
    const B: &str = "secret-b-secret-b-secret-b-secret-b";
    const ACCESS_TTL: Duration = Duration::from_secs(900);
    const TTL: Duration = Duration::from_secs(60);

    /// Hands out the scripted answers in turn (the last one forever), counting the calls.
    #[derive(Clone)]
    struct Scripted {
        answers: Arc<Mutex<VecDeque<Result<TokenSecret, String>>>>,
        calls: Arc<AtomicUsize>,
    }

    impl Scripted {
        fn new(answers: Vec<Result<TokenSecret, String>>) -> Self {
            Scripted {
                answers: Arc::new(Mutex::new(answers.into())),
                calls: Arc::new(AtomicUsize::new(0)),
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl FetchSecret for Scripted {
        fn fetch(&self) -> BoxFuture<'_, Result<TokenSecret, String>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut answers = self.answers.lock().unwrap();
            let answer = if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                answers.front().cloned().unwrap()
            };
            Box::pin(async move { answer })
        }
    }

    fn secret(current: &str, previous: &str) -> TokenSecret {
        TokenSecret::new(current, Some(previous)).unwrap()
    }

    fn signed_with(keys: &TokenKeys) -> String {
        keys.issue("U1", "S1", SystemTime::now()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_secret_is_read_again_after_its_ttl_and_not_before() {
        let source = Scripted::new(vec![Ok(secret(A, "none")), Ok(secret(B, A))]);
        let secrets = TokenSecrets::fetched(Box::new(source.clone()), TTL, ACCESS_TTL)
            .await
            .unwrap();
        assert_eq!(source.calls(), 1, "read once at start");
        let before = signed_with(&secrets.tokens());
        let cursor = secrets.cursors().seal("scope", "position");

        tokio::time::advance(TTL - Duration::from_secs(1)).await;
        for _ in 0..10 {
            secrets.refresh_if_stale().await;
            secrets.tokens().verify(&before).unwrap();
        }
        assert_eq!(source.calls(), 1, "no call per request while fresh");

        tokio::time::advance(Duration::from_secs(1)).await;
        secrets.refresh_if_stale().await;
        assert_eq!(source.calls(), 2, "read again once stale");
        secrets.refresh_if_stale().await;
        assert_eq!(source.calls(), 2, "and fresh again for another TTL");

        let after = signed_with(&secrets.tokens());
        assert!(
            TokenKeys::new(B.as_bytes(), ACCESS_TTL).verify(&after).is_ok(),
            "signed with B"
        );
        assert!(
            TokenKeys::new(A.as_bytes(), ACCESS_TTL).verify(&after).is_err(),
            "not with A"
        );
        secrets.tokens().verify(&before).expect("A's token still verifies");
        secrets
            .cursors()
            .open("scope", &cursor, "cursor")
            .expect("A's cursor still opens");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_keeps_the_cached_secret_and_is_retried_later() {
        let source = Scripted::new(vec![
            Ok(secret(A, "none")),
            Err("Secrets Manager is down".to_owned()),
            Ok(secret(B, A)),
        ]);
        let ttl = Duration::from_secs(600);
        let secrets = TokenSecrets::fetched(Box::new(source.clone()), ttl, ACCESS_TTL)
            .await
            .unwrap();
        let before = signed_with(&secrets.tokens());

        tokio::time::advance(ttl).await;
        secrets.refresh_if_stale().await;
        assert_eq!(source.calls(), 2);
        secrets.tokens().verify(&before).expect("the cached keys still serve");
        let during = signed_with(&secrets.tokens());
        assert!(
            TokenKeys::new(A.as_bytes(), ACCESS_TTL).verify(&during).is_ok(),
            "still A"
        );

        secrets.refresh_if_stale().await;
        tokio::time::advance(RETRY_AFTER_FAILURE - Duration::from_secs(1)).await;
        secrets.refresh_if_stale().await;
        assert_eq!(source.calls(), 2, "no call per request during the outage");

        tokio::time::advance(Duration::from_secs(1)).await;
        secrets.refresh_if_stale().await;
        assert_eq!(source.calls(), 3, "retried after the interval");
        let after = signed_with(&secrets.tokens());
        assert!(TokenKeys::new(B.as_bytes(), ACCESS_TTL).verify(&after).is_ok(), "now B");
        secrets.tokens().verify(&before).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn one_read_at_a_time() {
        /// Never answers: an invocation stuck reading the secret.
        struct Hanging(Arc<AtomicUsize>);
        impl FetchSecret for Hanging {
            fn fetch(&self) -> BoxFuture<'_, Result<TokenSecret, String>> {
                if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Box::pin(async { Ok(secret(A, "none")) });
                }
                Box::pin(std::future::pending())
            }
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let secrets: &'static TokenSecrets = Box::leak(Box::new(
            TokenSecrets::fetched(Box::new(Hanging(Arc::clone(&calls))), TTL, ACCESS_TTL)
                .await
                .unwrap(),
        ));
        let token = signed_with(&secrets.tokens());
        tokio::time::advance(TTL).await;
        let stuck = tokio::spawn(secrets.refresh_if_stale());
        tokio::task::yield_now().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The other invocations neither wait for it nor start another read.
        secrets.refresh_if_stale().await;
        secrets.refresh_if_stale().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        secrets.tokens().verify(&token).unwrap();
        stuck.abort();
    }

    #[test]
    fn previous_may_be_none_and_the_json_is_checked_without_echoing_it() {
        for previous in [None, Some(""), Some(" "), Some("none"), Some("NONE")] {
            assert_eq!(TokenSecret::new(A, previous).unwrap().previous(), None, "{previous:?}");
        }
        let parsed = TokenSecret::from_json(&format!(r#"{{"current":"{B}","previous":"none"}}"#)).unwrap();
        assert_eq!((parsed.current(), parsed.previous()), (B.as_bytes(), None));
        let rotated = TokenSecret::from_json(&format!(r#"{{"current":"{B}","previous":"{A}"}}"#)).unwrap();
        assert_eq!(rotated.previous(), Some(A.as_bytes()));
        assert!(TokenSecret::from_json(&format!(r#"{{"current":"{A}"}}"#)).is_ok());

        assert!(matches!(
            TokenSecret::new("short", None),
            Err(SecretProblem::Current(_))
        ));
        assert!(matches!(
            TokenSecret::new(A, Some("short")),
            Err(SecretProblem::Previous(_))
        ));
        assert!(matches!(TokenSecret::new(A, Some(A)), Err(SecretProblem::Previous(_))));
        let garbled = TokenSecret::from_json(&format!("{A} is not JSON")).unwrap_err();
        assert!(!garbled.contains("secret-a"), "{garbled}");
        assert!(!format!("{rotated:?}").contains("secret-"));
    }

    #[test]
    fn a_fixed_secret_is_never_read_again() {
        let secrets = TokenSecrets::fixed(&secret(A, B), ACCESS_TTL);
        let token = signed_with(&TokenKeys::new(B.as_bytes(), ACCESS_TTL));
        secrets.tokens().verify(&token).expect("the previous secret verifies");
        futures_util::FutureExt::now_or_never(secrets.refresh_if_stale()).expect("nothing to wait for");
    }
}
