//! Accounts and sessions: registration, password and wallet sign-in, refresh-token rotation, logout.

use serde::Serialize;

use super::users::User;
use crate::auth::refresh::RefreshToken;
use crate::auth::tokens::AccessClaims;
use crate::auth::wallet::{self, Address};
use crate::auth::{password, random_bytes};
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::{ChallengeRecord, CreateUserError, SessionRecord, UserRecord};
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
    };
    match context.store.create_user(&record).await {
        Ok(()) => {}
        Err(CreateUserError::UsernameTaken) => {
            return Err(ApiError::Conflict("That username is already taken.".to_owned()))
        }
        Err(CreateUserError::WalletTaken) => return Err(ApiError::internal("wallet claim on a password account")),
        Err(CreateUserError::Store(e)) => return Err(e),
    }
    start_session(context, record).await
}

/// Unknown usernames, wallet-only accounts and wrong passwords all get the same answer in about the
/// same time.
pub async fn login(context: &AppContext, username: &str, password_given: &str) -> Result<SignedIn, ApiError> {
    let user_id = match validate::username(username) {
        Ok(name) => context.store.user_id_by_username(&name).await?,
        Err(_) => None,
    };
    let user = match user_id {
        Some(id) => context.store.get_user(&id).await?,
        None => None,
    };
    let Some((user, stored_hash)) = user.and_then(|u| u.password_hash.clone().map(|h| (u, h))) else {
        password::verify_against_dummy(password_given);
        return Err(bad_credentials());
    };
    if !password::verify(password_given, &stored_hash) {
        return Err(bad_credentials());
    }
    start_session(context, user).await
}

async fn start_session(context: &AppContext, user: UserRecord) -> Result<SignedIn, ApiError> {
    let issued = now();
    let session_id = ulid::Ulid::generate().to_string();
    let refresh = RefreshToken::generate(&session_id, 0);
    context
        .store
        .put_session(&SessionRecord {
            id: session_id.clone(),
            user_id: user.id.clone(),
            generation: 0,
            token_hash: refresh.secret_hash(),
            created_at: rfc3339(issued),
            expires_at: epoch_secs(issued + context.config.refresh_token_ttl),
            revoked_at: None,
            revoked_reason: None,
        })
        .await?;
    Ok(SignedIn {
        tokens: Tokens {
            access_token: context.tokens.issue(&user.id, &session_id, issued)?,
            refresh_token: refresh.encode(),
            expires_in: context.tokens.ttl_secs(),
        },
        user: user.into(),
    })
}

/// Rotates the refresh token. A token that was already rotated away is a stolen or replayed one: the
/// whole session is revoked, so the newer tokens stop working too.
pub async fn refresh(context: &AppContext, raw_token: &str) -> Result<Tokens, ApiError> {
    let token = RefreshToken::parse(raw_token).ok_or_else(refresh_rejected)?;
    let session = context
        .store
        .get_session(&token.session_id)
        .await?
        .ok_or_else(refresh_rejected)?;
    let issued = now();
    if session.revoked_at.is_some() || session.expires_at <= epoch_secs(issued) {
        return Err(refresh_rejected());
    }
    if token.generation < session.generation {
        return Err(revoke_for_reuse(context, &session.id).await);
    }
    if token.generation != session.generation || !token.matches_hash(&session.token_hash) {
        return Err(refresh_rejected());
    }
    let next = RefreshToken::generate(&session.id, session.generation + 1);
    let expires_at = epoch_secs(issued + context.config.refresh_token_ttl);
    if !context
        .store
        .rotate_session(&session, &next.secret_hash(), expires_at)
        .await?
    {
        // Another request rotated this same token a moment ago: it was used twice.
        return Err(revoke_for_reuse(context, &session.id).await);
    }
    Ok(Tokens {
        access_token: context.tokens.issue(&session.user_id, &session.id, issued)?,
        refresh_token: next.encode(),
        expires_in: context.tokens.ttl_secs(),
    })
}

async fn revoke_for_reuse(context: &AppContext, session_id: &str) -> ApiError {
    tracing::warn!(sessionId = %session_id, "rotated refresh token reused; revoking the session");
    if let Err(e) = context
        .store
        .revoke_session(session_id, "refresh token reuse", &rfc3339(now()))
        .await
    {
        return e;
    }
    ApiError::Unauthorized(
        "This refresh token was already used, so the session has been ended for safety; sign in again.".to_owned(),
    )
}

pub async fn logout(context: &AppContext, claims: &AccessClaims) -> Result<(), ApiError> {
    context
        .store
        .revoke_session(&claims.sid, "logout", &rfc3339(now()))
        .await
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

/// Checks the signature over the pending challenge, uses the challenge up (once), and signs the wallet's
/// user in, creating the user on first sign-in.
pub async fn wallet_verify(context: &AppContext, address: &str, signature: &str) -> Result<SignedIn, ApiError> {
    let mut problems = validate::Problems::default();
    let address = problems.check(Address::parse(address));
    let signature = problems.check(wallet::parse_signature(signature));
    problems.finish()?;
    let (Some(address), Some((signature, recovery_id))) = (address, signature) else {
        return Err(ApiError::internal("validated input missing"));
    };
    let challenge = context
        .store
        .get_challenge(address.as_lowercase())
        .await?
        .ok_or_else(challenge_rejected)?;
    let now_secs = epoch_secs(now());
    if challenge.expires_at <= now_secs {
        return Err(challenge_rejected());
    }
    if wallet::recover_signer(&challenge.message, &signature, recovery_id).as_ref() != Some(&address) {
        return Err(ApiError::Unauthorized(
            "The signature was not made by this address over its sign-in challenge.".to_owned(),
        ));
    }
    if !context.store.consume_challenge(&challenge, now_secs).await? {
        return Err(challenge_rejected());
    }
    let user = wallet_user(context, &address).await?;
    start_session(context, user).await
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
