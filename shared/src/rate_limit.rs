//! Rate limits enforced across all containers: per user for authenticated requests, per source IP for
//! the rest, and a tighter per-IP limit on sign-in and registration, where guessing happens.
//!
//! Fixed windows in DynamoDB (one conditional UpdateItem per limit checked): a refused request writes
//! nothing and never reaches its handler. Authenticated requests are counted per user only, so many
//! people behind one NAT do not share a budget; but the sign-in routes are always counted per source
//! IP, whatever token a request carries (a stolen or throw-away account's token must not buy a
//! password guesser a fresh budget). Failed logins also back off per username (`domain::accounts`).

use std::time::SystemTime;

use crate::config::RateLimits;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::http::ApiRequest;
use crate::time::epoch_secs;

const HOUR: u64 = 3600;
const MINUTE: u64 = 60;

/// Routes where a caller could guess passwords or mass-register accounts.
const SENSITIVE_ROUTES: &[&str] = &[
    "POST /auth/login",
    "POST /auth/register",
    "POST /auth/wallet/challenge",
    "POST /auth/wallet/verify",
];

/// Routes that sign in (or renew a sign-in): never counted per user, whatever token they carry, and
/// their bearer token's session is not looked up (they do not use it).
const SIGN_IN_ROUTES: &[&str] = &[
    "POST /auth/login",
    "POST /auth/register",
    "POST /auth/wallet/challenge",
    "POST /auth/wallet/verify",
    "POST /auth/refresh",
];

/// Routes a load balancer or monitor polls; counting them would cost a write per probe.
const EXEMPT_ROUTES: &[&str] = &["GET /health"];

/// One counter a request is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub subject: String,
    pub window_secs: u64,
    pub max_requests: u64,
}

impl Limit {
    fn window_start(&self, now_secs: u64) -> u64 {
        now_secs - now_secs % self.window_secs
    }

    /// Seconds until the current window ends: what `Retry-After` says.
    fn retry_after(&self, now_secs: u64) -> u64 {
        (self.window_start(now_secs) + self.window_secs - now_secs).max(1)
    }
}

/// The limits `request` counts against, most specific first. `user_id` is the caller when the request
/// carries a valid access token; it is ignored on the sign-in routes, which always count per IP.
pub fn limits_for(limits: &RateLimits, route_key: &str, source_ip: Option<&str>, user_id: Option<&str>) -> Vec<Limit> {
    if EXEMPT_ROUTES.contains(&route_key) {
        return Vec::new();
    }
    let user_id = user_id.filter(|_| !SIGN_IN_ROUTES.contains(&route_key));
    let mut checks = Vec::new();
    if let Some(ip) = source_ip {
        if SENSITIVE_ROUTES.contains(&route_key) && limits.sensitive_per_minute > 0 {
            checks.push(Limit {
                subject: format!("sensitive#{ip}"),
                window_secs: MINUTE,
                max_requests: limits.sensitive_per_minute,
            });
        }
    }
    match (user_id, source_ip) {
        (Some(user), _) if limits.user_per_hour > 0 => checks.push(Limit {
            subject: format!("user#{user}"),
            window_secs: HOUR,
            max_requests: limits.user_per_hour,
        }),
        (None, Some(ip)) if limits.ip_per_hour > 0 => checks.push(Limit {
            subject: format!("ip#{ip}"),
            window_secs: HOUR,
            max_requests: limits.ip_per_hour,
        }),
        _ => {}
    }
    checks
}

/// Admits `request` before its handler runs: first looks up whether its bearer token's session is
/// still live (so that `ApiRequest::authenticate` refuses a revoked session's token; skipped on the
/// sign-in routes and `/health`, which do not use a token), then counts it against its limits, in order,
/// stopping at the first that is full.
pub async fn admit(context: &AppContext, request: &ApiRequest) -> Result<(), ApiError> {
    let route_key = request.route_key.as_str();
    let sign_in = SIGN_IN_ROUTES.contains(&route_key);
    if !sign_in && !EXEMPT_ROUTES.contains(&route_key) {
        request.check_session(context).await;
    }
    if context.config.rate_limits == RateLimits::OFF {
        return Ok(());
    }
    let user_id = if sign_in {
        None
    } else {
        request.authenticate(context).ok().map(|claims| claims.sub)
    };
    let checks = limits_for(
        &context.config.rate_limits,
        &request.route_key,
        request.source_ip.as_deref(),
        user_id.as_deref(),
    );
    count(context, checks).await
}

/// WebSocket routes that count against their user's hourly budget, like HTTP requests: everything a
/// client sends but `ping` (a keep-alive) and `$disconnect` (the client is already gone).
pub fn counts_websocket_route(route_key: &str) -> bool {
    !matches!(route_key, "ping" | "$disconnect")
}

/// Counts one WebSocket frame (or connection) of `user_id` against the per-user limit.
pub async fn admit_user(context: &AppContext, user_id: &str) -> Result<(), ApiError> {
    let checks = limits_for(&context.config.rate_limits, "", None, Some(user_id));
    count(context, checks).await
}

async fn count(context: &AppContext, checks: Vec<Limit>) -> Result<(), ApiError> {
    let now = epoch_secs(SystemTime::now());
    for limit in checks {
        let counted = context
            .store
            .count_request(
                &limit.subject,
                limit.window_start(now),
                limit.window_secs,
                limit.max_requests,
            )
            .await;
        match counted {
            Ok(true) => {}
            Ok(false) => {
                let retry_after_secs = limit.retry_after(now);
                return Err(ApiError::RateLimited {
                    message: format!(
                        "Too many requests: at most {} per {}. Retry in {retry_after_secs} s.",
                        limit.max_requests,
                        if limit.window_secs == HOUR { "hour" } else { "minute" },
                    ),
                    retry_after_secs,
                });
            }
            // Failing open: a throttled counter table must not take the whole API down with it.
            Err(e) => tracing::warn!(error = %e, subject = %limit.subject, "rate-limit counter unavailable"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_requests_count_per_user_and_the_rest_per_ip() {
        let limits = RateLimits::DEFAULT;
        let as_user = limits_for(&limits, "GET /conversations", Some("10.0.0.1"), Some("U1"));
        assert_eq!(
            as_user,
            vec![Limit {
                subject: "user#U1".into(),
                window_secs: 3600,
                max_requests: 10_000
            }]
        );
        let anonymous = limits_for(&limits, "POST /auth/refresh", Some("10.0.0.1"), None);
        assert_eq!(anonymous[0].subject, "ip#10.0.0.1");
        assert_eq!(anonymous[0].max_requests, 1000);
    }

    #[test]
    fn sign_in_routes_also_count_per_minute_and_health_counts_nowhere() {
        let limits = RateLimits::DEFAULT;
        let login = limits_for(&limits, "POST /auth/login", Some("10.0.0.1"), None);
        let subjects: Vec<_> = login.iter().map(|l| (l.subject.as_str(), l.window_secs)).collect();
        assert_eq!(subjects, vec![("sensitive#10.0.0.1", 60), ("ip#10.0.0.1", 3600)]);
        assert!(limits_for(&limits, "GET /health", Some("10.0.0.1"), None).is_empty());
    }

    #[test]
    fn sign_in_routes_count_per_ip_whatever_token_they_carry() {
        let limits = RateLimits::DEFAULT;
        for route in SIGN_IN_ROUTES {
            let checks = limits_for(&limits, route, Some("10.0.0.9"), Some("U1"));
            assert!(
                checks.iter().all(|l| !l.subject.starts_with("user#")),
                "{route}: {checks:?}"
            );
            assert!(checks.iter().any(|l| l.subject == "ip#10.0.0.9"), "{route}: {checks:?}");
        }
        let login = limits_for(&limits, "POST /auth/login", Some("10.0.0.9"), Some("U1"));
        assert_eq!(login[0].subject, "sensitive#10.0.0.9");
        // Other routes still count a signed-in caller per user.
        let logout = limits_for(&limits, "POST /auth/logout", Some("10.0.0.9"), Some("U1"));
        assert_eq!(logout[0].subject, "user#U1");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = RateLimits {
            ip_per_hour: 0,
            ..RateLimits::DEFAULT
        };
        let login = limits_for(&limits, "POST /auth/login", Some("10.0.0.1"), None);
        assert_eq!(login.len(), 1);
        assert!(limits_for(&RateLimits::OFF, "POST /auth/login", Some("10.0.0.1"), None).is_empty());
    }

    #[test]
    fn retry_after_is_the_rest_of_the_window() {
        let limit = Limit {
            subject: "ip#x".into(),
            window_secs: 3600,
            max_requests: 1,
        };
        assert_eq!(limit.window_start(7_200 + 100), 7_200);
        assert_eq!(limit.retry_after(7_200 + 100), 3_500);
        assert_eq!(limit.retry_after(7_200 + 3_599), 1);
    }
}
