//! Accounts and sessions: registration, password and wallet sign-in, refresh-token rotation, logout,
//! listing and revoking sessions, and the per-username back-off of failed logins.

use std::time::Duration;

use serde::Serialize;

use super::users::User;
use crate::auth::refresh::{self, RefreshToken};
use crate::auth::session_state;
use crate::auth::tokens::AccessClaims;
use crate::auth::wallet::{self, Address};
use crate::auth::{password, random_bytes};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{ChallengeRecord, CreateUserError, LoginCharge, SessionRecord, UserRecord};
use crate::time::{epoch_secs, now, rfc3339};
use crate::validate;

/// A fresh access token and the refresh token that replaces the last one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// What a successful sign-in answers: `{user, accessToken, refreshToken, expiresIn}`.
#[derive(Debug, Clone, Serialize)]
pub struct SignedIn {
    pub user: User,
    #[serde(flatten)]
    pub tokens: Tokens,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletChallenge {
    pub message: String,
    pub expires_at: String,
}

pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    /// The client's User-Agent, recorded on the session.
    pub user_agent: Option<String>,
}

/// One of the caller's sessions, as `GET /auth/sessions` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_used_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The session of the access token that asked.
    pub current: bool,
}

/// `{items: [...]}`
#[derive(Debug, Clone, Serialize)]
pub struct SessionList {
    pub items: Vec<SessionView>,
}

/// Failed logins per username and source IP: from the [`LOGIN_BACKOFF_AFTER`]th failure in a streak on,
/// the username is refused from that source (429, without checking any password) for a while that
/// doubles with every further failure, from [`LOGIN_BACKOFF_FIRST`] up to [`LOGIN_BACKOFF_MAX`]. A
/// streak ends with a successful login, or when [`LOGIN_FAILURE_WINDOW`] passes without a failure.
/// Refused attempts are not failures, so one attempt per back-off period is all a guesser gets from one
/// source, however many it sends at once: each attempt is counted by a conditional write before its
/// password is checked (`Store::charge_login_attempt`).
///
/// Why per source: a streak per username alone let anyone keep anyone locked out, one guess every
/// 15 minutes from anywhere. Per source, a guesser locks out only their own address; the owner signs
/// in from theirs. The trade: a guesser with many addresses gets [`LOGIN_BACKOFF_AFTER`] guesses from
/// each (and then one per back-off period each); every address is also held to the per-IP limit on
/// sign-in routes (`RateLimitSensitivePerMinute`), and passwords are at least 8 characters and hashed
/// with argon2.
pub const LOGIN_BACKOFF_AFTER: u64 = 5;
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const LOGIN_BACKOFF_FIRST: Duration = Duration::from_secs(30);
pub const LOGIN_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// How long a streak of `fails` failures keeps the username refused after the last one.
pub fn login_backoff(fails: u64) -> Duration {
    if fails < LOGIN_BACKOFF_AFTER {
        return Duration::ZERO;
    }
    let doublings = (fails - LOGIN_BACKOFF_AFTER).min(16) as u32;
    (LOGIN_BACKOFF_FIRST * 2u32.pow(doublings)).min(LOGIN_BACKOFF_MAX)
}

const INITIAL_STATUS: &str = "online";

fn bad_credentials() -> ApiError {
    ApiError::Unauthorized("Wrong username or password.".to_owned())
}

fn refresh_rejected() -> ApiError {
    ApiError::Unauthorized("The refresh token is invalid or has expired; sign in again.".to_owned())
}

fn challenge_rejected() -> ApiError {
    ApiError::Unauthorized(
        "There is no unused, unexpired sign-in challenge for this address; request a new one and sign it.".to_owned(),
    )
}

pub async fn register(context: &AppContext, input: Registration) -> Result<SignedIn, ApiError> {
    let mut problems = validate::Problems::default();
    let username = problems.check(validate::username(&input.username));
    problems.check(validate::password(&input.password));
    let display_name = match &input.display_name {
        Some(name) => problems.check(validate::display_name(name)),
        None => None,
    };
    problems.finish()?;
    let username = username.unwrap_or_default();
    let created = now();
    let record = UserRecord {
        id: ulid::Ulid::generate().to_string(),
        display_name: display_name.unwrap_or_else(|| username.clone()),
        username,
        status: INITIAL_STATUS.to_owned(),
        status_text: None,
        wallet_address: None,
        password_hash: Some(password::hash(&input.password)?),
        last_seen_at: Some(rfc3339(created)),
        created_at: rfc3339(created),
        role: None,
        who_can_add_me: None,
    };
    match context.store.create_user(&record).await {
        Ok(()) => {}
        Err(CreateUserError::UsernameTaken) => {
            return Err(ApiError::Conflict("That username is already taken.".to_owned()))
        }
        Err(CreateUserError::WalletTaken) => return Err(ApiError::internal("wallet claim on a password account")),
        Err(CreateUserError::Store(e)) => return Err(e),
    }
    start_session(context, record, input.user_agent).await
}

/// Unknown usernames, wallet-only accounts and wrong passwords all get the same answer in about the
/// same time. A username in back-off from the caller's address (see [`LOGIN_BACKOFF_AFTER`]) is
/// answered 429 before any password is checked, known or not, so the back-off does not tell which
/// usernames exist either.
pub async fn login(
    context: &AppContext,
    username: &str,
    password_given: &str,
    source: Option<&str>,
    user_agent: Option<String>,
) -> Result<SignedIn, ApiError> {
    let name = validate::username(username).ok();
    let source = source.unwrap_or_default();
    let now_secs = epoch_secs(now());
    // Counted as a failure before the password is checked, so parallel guesses are counted too.
    let charged = match &name {
        Some(name) => Some(
            context
                .store
                .charge_login_attempt(name, source, now_secs, LOGIN_FAILURE_WINDOW.as_secs(), |fails| {
                    login_backoff(fails).as_secs()
                })
                .await?,
        ),
        None => None,
    };
    match charged {
        Some(LoginCharge::Refused { fails, blocked_until }) => {
            let retry_after_secs = blocked_until.saturating_sub(now_secs).max(1);
            return Err(ApiError::RateLimited {
                message: format!(
                    "Too many failed sign-ins for this username from your address ({fails} in a row). Retry in {retry_after_secs} s."
                ),
                retry_after_secs,
            });
        }
        Some(LoginCharge::Allowed { fails }) if fails >= LOGIN_BACKOFF_AFTER => {
            tracing::warn!(
                fails,
                "failed logins in a row for one username from one source; backing off"
            );
        }
        _ => {}
    }
    let user_id = match &name {
        Some(name) => context.store.user_id_by_username(name).await?,
        None => None,
    };
    let user = match user_id {
        Some(id) => context.store.get_user(&id).await?,
        None => None,
    };
    let verified = match user.and_then(|u| u.password_hash.clone().map(|h| (u, h))) {
        Some((user, stored_hash)) => password::verify(password_given, &stored_hash).then_some(user),
        None => {
            password::verify_against_dummy(password_given);
            None
        }
    };
    let Some(user) = verified else {
        return Err(bad_credentials());
    };
    if let Some(name) = &name {
        context.store.clear_login_failures(name, source).await?;
    }
    start_session(context, user, user_agent).await
}

async fn start_session(
    context: &AppContext,
    user: UserRecord,
    user_agent: Option<String>,
) -> Result<SignedIn, ApiError> {
    let issued = now();
    let session_id = ulid::Ulid::generate().to_string();
    let salt = refresh::new_salt();
    let refresh = RefreshToken::derive(context.tokens().refresh_key(), &session_id, 0, &salt);
    context
        .store
        .put_session(&SessionRecord {
            id: session_id.clone(),
            user_id: user.id.clone(),
            generation: 0,
            token_hash: refresh.secret_hash(),
            salt: Some(salt),
            created_at: rfc3339(issued),
            last_used_at: Some(rfc3339(issued)),
            user_agent,
            expires_at: epoch_secs(issued + context.config.refresh_token_ttl),
            revoked_at: None,
            revoked_reason: None,
        })
        .await?;
    session_state::remember(&session_id, true);
    Ok(SignedIn {
        tokens: Tokens {
            access_token: context.tokens().issue(&user.id, &session_id, issued)?,
            refresh_token: refresh.encode(),
            expires_in: context.tokens().ttl_secs(),
        },
        user: super::users::as_own(user),
    })
}

/// Rotates the refresh token. A token that was already rotated away, and whose secret is the one the
/// server issued for its generation, is a stolen or replayed one: the whole session is revoked (and its
/// connections closed), so the newer tokens stop working too. A secret that does not verify is only a
/// 401: guessing at a session id and an old generation revokes nothing.
///
/// One exception: the token the last rotation replaced, presented again within
/// `Config::refresh_retry_grace` of that rotation, is a client retrying after it lost the answer (a
/// dropped connection, a timed-out request), and gets that answer again ([`answer_again`]). What it
/// trades: a thief replaying a just-rotated token within the grace is not caught by that replay, only
/// by the next use of any older token or by the owner's next refresh after the thief's.
pub async fn refresh(context: &AppContext, raw_token: &str) -> Result<Tokens, ApiError> {
    let token = RefreshToken::parse(raw_token).ok_or_else(refresh_rejected)?;
    let session = context
        .store
        .get_session(&token.session_id)
        .await?
        .ok_or_else(refresh_rejected)?;
    let issued = now();
    if !session.is_live(epoch_secs(issued)) {
        return Err(refresh_rejected());
    }
    let tokens = context.tokens();
    let key = tokens.refresh_key();
    if token.generation < session.generation {
        // Sessions from before salts cannot prove an old secret authentic: never a reason to revoke.
        let authentic = session
            .salt
            .as_deref()
            .is_some_and(|salt| token.is_authentic(key, salt));
        if !authentic {
            return Err(refresh_rejected());
        }
        if let Some(tokens) = answer_again(context, &session, &token, issued)? {
            return Ok(tokens);
        }
        return Err(revoke_for_reuse(context, &session).await);
    }
    // The current generation must also be derived with a key still held: once a rotation drops the
    // secret a session's token was made with, that session signs in again (README "Rotating the
    // token secret"). Sessions from before salts have only the hash to go by.
    let derived_with_a_held_key = session.salt.as_deref().is_none_or(|salt| token.is_authentic(key, salt));
    if token.generation != session.generation || !token.matches_hash(&session.token_hash) || !derived_with_a_held_key {
        return Err(refresh_rejected());
    }
    let salt = session.salt.clone().unwrap_or_else(refresh::new_salt);
    let next = RefreshToken::derive(key, &session.id, session.generation + 1, &salt);
    let expires_at = epoch_secs(issued + context.config.refresh_token_ttl);
    if !context
        .store
        .rotate_session(&session, &next.secret_hash(), &salt, expires_at, &rfc3339(issued))
        .await?
    {
        // Another request rotated this same (authentic) token a moment ago: a retry racing its first try
        // gets the same answer; anything else used it twice.
        if let Some(rotated) = context.store.get_session(&session.id).await? {
            if let Some(tokens) = answer_again(context, &rotated, &token, now())? {
                return Ok(tokens);
            }
        }
        return Err(revoke_for_reuse(context, &session).await);
    }
    session_state::remember(&session.id, true);
    Ok(Tokens {
        access_token: context.tokens().issue(&session.user_id, &session.id, issued)?,
        refresh_token: next.encode(),
        expires_in: context.tokens().ttl_secs(),
    })
}

/// The answer the last rotation gave, again, when `token` is the one it replaced and the rotation was
/// at most `Config::refresh_retry_grace` before `at`: the same refresh token (derived, as every
/// generation is, from the key, the session and its salt) and the same access token (issued at the
/// rotation's time, so byte for byte the one first sent). `None` otherwise, and for a session from
/// before salts or whose current token no key held now derives.
fn answer_again(
    context: &AppContext,
    session: &SessionRecord,
    token: &RefreshToken,
    at: std::time::SystemTime,
) -> Result<Option<Tokens>, ApiError> {
    let (Some(salt), Some(rotated_at)) = (session.salt.as_deref(), session.last_used_at.as_deref()) else {
        return Ok(None);
    };
    let Ok(rotated_at) = humantime::parse_rfc3339(rotated_at) else {
        return Ok(None);
    };
    let within_grace = at
        .duration_since(rotated_at)
        .is_ok_and(|since| since <= context.config.refresh_retry_grace);
    let tokens = context.tokens();
    let key = tokens.refresh_key();
    if !session.is_live(epoch_secs(at))
        || token.generation + 1 != session.generation
        || !within_grace
        || !token.is_authentic(key, salt)
    {
        return Ok(None);
    }
    let current = RefreshToken::derive(key, &session.id, session.generation, salt);
    if !current.matches_hash(&session.token_hash) {
        return Ok(None);
    }
    tracing::info!(sessionId = %session.id, "a refresh retried within the grace; answered again");
    Ok(Some(Tokens {
        access_token: tokens.issue(&session.user_id, &session.id, rotated_at)?,
        refresh_token: current.encode(),
        expires_in: tokens.ttl_secs(),
    }))
}

async fn revoke_for_reuse(context: &AppContext, session: &SessionRecord) -> ApiError {
    tracing::warn!(sessionId = %session.id, "rotated refresh token reused; revoking the session");
    if let Err(e) = revoke(context, &session.id, "refresh token reuse").await {
        return e;
    }
    ApiError::Unauthorized(
        "This refresh token was already used, so the session has been ended for safety; sign in again.".to_owned(),
    )
}

/// Revokes a session, however it ends (logout, `DELETE /auth/sessions/{id}`, refresh-token reuse):
/// marks it revoked (idempotent), tells this container at once (others within
/// `session_state::LIVE_TTL`), and closes the session's open WebSocket connections through the
/// management API, removing them from the store. Finding them costs one GetItem of the user's
/// connection set and one BatchGetItem of its (at most 20) connection items; closing, one
/// `DeleteConnection` and two writes per connection of the session. Returns the session as it now is
/// (`None`: unknown).
pub async fn revoke(context: &AppContext, session_id: &str, reason: &str) -> Result<Option<SessionRecord>, ApiError> {
    let revoked = context
        .store
        .revoke_session(session_id, reason, &rfc3339(now()))
        .await?;
    let Some(session) = revoked else {
        return Ok(None);
    };
    session_state::remember(session_id, false);
    let connections = context.store.session_connections(&session.user_id, session_id).await?;
    let user_id = session.user_id.as_str();
    let closing = connections.iter().map(|connection_id| async move {
        context.fanout.close_connection(connection_id).await;
        // `$disconnect` would remove it too; removing it here means no event is posted to it meanwhile.
        context.store.remove_connection(user_id, connection_id).await
    });
    for removed in futures_util::future::join_all(closing).await {
        removed?;
    }
    if !connections.is_empty() {
        tracing::info!(sessionId = %session_id, closed = connections.len(), "closed the revoked session's connections");
    }
    Ok(Some(session))
}

/// `POST /auth/logout`: revokes the token's session. Harmless when it is already revoked (204 again).
pub async fn logout(context: &AppContext, claims: &AccessClaims) -> Result<(), ApiError> {
    revoke(context, &claims.sid, "logout").await.map(|_| ())
}

/// The caller's live sessions, newest first (at most `store::MAX_LISTED_SESSIONS`): one Query of GSI1.
pub async fn list_sessions(context: &AppContext, claims: &AccessClaims) -> Result<SessionList, ApiError> {
    let sessions = context.store.user_sessions(&claims.sub, epoch_secs(now())).await?;
    Ok(SessionList {
        items: sessions
            .into_iter()
            .map(|session| SessionView {
                current: session.id == claims.sid,
                last_used_at: session.last_used_at.unwrap_or_else(|| session.created_at.clone()),
                id: session.id,
                created_at: session.created_at,
                user_agent: session.user_agent,
            })
            .collect(),
    })
}

/// `DELETE /auth/sessions/{id}`: revokes one of the caller's own sessions (the current one included).
/// Another user's session and an unknown id are the same 404, and nothing is revoked; a session of the
/// caller's that is already revoked or expired is 204 again (idempotent).
pub async fn delete_session(context: &AppContext, claims: &AccessClaims, session_id: &str) -> Result<(), ApiError> {
    let not_found = || ApiError::NotFound("There is no session of yours with this id.".to_owned());
    let session = context.store.get_session(session_id).await?.ok_or_else(not_found)?;
    if session.user_id != claims.sub {
        return Err(not_found());
    }
    revoke(context, session_id, "revoked by the user").await.map(|_| ())
}

pub async fn wallet_challenge(context: &AppContext, address: &str) -> Result<WalletChallenge, ApiError> {
    let address = Address::parse(address)?;
    let issued = now();
    let expires = issued + context.config.wallet_challenge_ttl;
    let nonce = hex::encode(random_bytes::<16>());
    let message = wallet::challenge_message(
        &context.config.wallet_signin_domain,
        &address,
        &nonce,
        &rfc3339(issued),
        &rfc3339(expires),
    );
    context
        .store
        .put_challenge(&ChallengeRecord {
            address: address.as_lowercase().to_owned(),
            nonce,
            message: message.clone(),
            expires_at: epoch_secs(expires),
        })
        .await?;
    Ok(WalletChallenge {
        message,
        expires_at: rfc3339(expires),
    })
}

/// Checks the signature over one of the address's pending challenges (the one whose `message` the
/// client names, else any of the newest it has), uses that challenge up (once), and signs the wallet's
/// user in, creating the user on first sign-in. Several challenges of one address can be pending
/// (several devices, or someone else asking for challenges for it): none cancels another.
pub async fn wallet_verify(
    context: &AppContext,
    address: &str,
    signature: &str,
    message: Option<&str>,
    user_agent: Option<String>,
) -> Result<SignedIn, ApiError> {
    let mut problems = validate::Problems::default();
    let address = problems.check(Address::parse(address));
    let signature = problems.check(wallet::parse_signature(signature));
    problems.finish()?;
    let (Some(address), Some((signature, recovery_id))) = (address, signature) else {
        return Err(ApiError::internal("validated input missing"));
    };
    let now_secs = epoch_secs(now());
    let candidates = match message {
        // The message names its nonce: exactly that challenge, if it is this message.
        Some(message) => match wallet::nonce_of(message) {
            Some(nonce) => context
                .store
                .get_challenge(address.as_lowercase(), nonce)
                .await?
                .filter(|c| c.message == message && c.expires_at > now_secs)
                .into_iter()
                .collect(),
            None => Vec::new(),
        },
        None => {
            context
                .store
                .pending_challenges(address.as_lowercase(), now_secs)
                .await?
        }
    };
    if candidates.is_empty() {
        return Err(challenge_rejected());
    }
    let Some(challenge) = candidates
        .into_iter()
        .find(|c| wallet::recover_signer(&c.message, &signature, recovery_id).as_ref() == Some(&address))
    else {
        return Err(ApiError::Unauthorized(
            "The signature was not made by this address over its sign-in challenge.".to_owned(),
        ));
    };
    if !context.store.consume_challenge(&challenge, now_secs).await? {
        return Err(challenge_rejected());
    }
    let user = wallet_user(context, &address).await?;
    start_session(context, user, user_agent).await
}

/// The user that owns `address`, created on its first sign-in.
async fn wallet_user(context: &AppContext, address: &Address) -> Result<UserRecord, ApiError> {
    let lower = address.as_lowercase();
    // Up to three tries: the default username may be taken, or another first sign-in may win the race.
    for attempt in 0..3 {
        if let Some(id) = context.store.user_id_by_wallet(lower).await? {
            return context
                .store
                .get_user(&id)
                .await?
                .ok_or_else(|| ApiError::internal("wallet claim without a user"));
        }
        let created = now();
        let checksummed = address.checksummed();
        let username = if attempt == 0 {
            lower[..32].to_owned()
        } else {
            format!("{}_{}", &lower[..21], &hex::encode(random_bytes::<5>()))
        };
        let record = UserRecord {
            id: ulid::Ulid::generate().to_string(),
            username,
            display_name: format!("{}…{}", &checksummed[..6], &checksummed[38..]),
            status: INITIAL_STATUS.to_owned(),
            status_text: None,
            wallet_address: Some(lower.to_owned()),
            password_hash: None,
            last_seen_at: Some(rfc3339(created)),
            created_at: rfc3339(created),
            role: None,
            who_can_add_me: None,
        };
        match context.store.create_user(&record).await {
            Ok(()) => return Ok(record),
            Err(CreateUserError::UsernameTaken | CreateUserError::WalletTaken) => continue,
            Err(CreateUserError::Store(e)) => return Err(e),
        }
    }
    Err(ApiError::Conflict(
        "Could not create an account for this wallet; please try again.".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_backoff_grows_and_is_bounded() {
        assert_eq!(login_backoff(0), Duration::ZERO);
        assert_eq!(login_backoff(LOGIN_BACKOFF_AFTER - 1), Duration::ZERO);
        assert_eq!(login_backoff(LOGIN_BACKOFF_AFTER), LOGIN_BACKOFF_FIRST);
        assert_eq!(login_backoff(LOGIN_BACKOFF_AFTER + 1), LOGIN_BACKOFF_FIRST * 2);
        assert_eq!(login_backoff(LOGIN_BACKOFF_AFTER + 2), LOGIN_BACKOFF_FIRST * 4);
        assert_eq!(login_backoff(LOGIN_BACKOFF_AFTER + 100), LOGIN_BACKOFF_MAX);
        assert_eq!(login_backoff(u64::MAX), LOGIN_BACKOFF_MAX);
        assert!(LOGIN_BACKOFF_MAX <= LOGIN_FAILURE_WINDOW, "a streak always ends");
    }
}
