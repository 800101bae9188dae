//! Rate limits enforced across all containers: per user for authenticated requests, per source IP for
//! the rest, and a tighter per-IP limit on sign-in and registration, where guessing happens.
//!
//! Authenticated requests are counted per user only, so many people behind one NAT do not share a
//! budget; but the sign-in routes are always counted per source IP, whatever token a request carries
//! (a stolen or throw-away account's token must not buy a password guesser a fresh budget). Failed
//! logins also back off per username (`domain::accounts`). A refused request is `429 rate_limited` with
//! `Retry-After` (the rest of the window), writes nothing and never reaches its handler.
//!
//! # Counting without a write per request
//!
//! Every limit is a fixed window with one counter item in DynamoDB (`store::rate_limits`), shared by
//! all containers. A conditional UpdateItem per request (what this module did before) is exact, but
//! costs 1 WCU per request, five times the read it guards. So the hourly limits (per user, per IP) are
//! counted per container, in memory, and added to the shared counter in batches:
//!
//! - A container does not read the counter when it first sees a subject: it admits a first batch
//!   (1 % of the limit) as if the counter held nothing, and learns the total from that batch's
//!   addition. Its knowledge `known` is the total its last addition returned (none before the first);
//!   `pending` is what it has admitted since and not yet added. (It used to read the counter first:
//!   one GetItem per subject per container per window, which under many users spread over many
//!   containers was a read on nearly every request, and bought nothing the bound below needs.)
//! - Admission is local: a request is admitted while `known + pending < limit`; else refused, with no
//!   call at all.
//! - When `pending` reaches the batch size, the request that got it there adds it (`ADD hits :pending`,
//!   returning the new total, which becomes `known`). Inline, on that request: a Lambda container may
//!   be frozen or dropped after any response, so it never holds counts it could only add later.
//! - The batch shrinks near the limit: `batch = clamp((limit - known) / 8, 1, max(1, limit / 100))`
//!   ([`batch_size`]): 1 % of the limit far from it, an eighth of what is left near it.
//! - Where the batch would be 1 (the last 15 requests of the limit, and every limit under 200) the
//!   container counts each request with one conditional UpdateItem, `ADD hits :n IF hits < :below`
//!   (`n` = its pending + 1, `below` = limit - pending): the final stretch is exact, whatever the
//!   other containers know. A failed condition refuses the request and tells the container that the
//!   window is full, so it refuses the rest of the window without another call.
//! - The per-minute limit of the sign-in routes is always counted that way, one conditional write per
//!   attempt, as before: those routes write anyway, and a password guesser must get no overshoot.
//!
//! Cost at the default 10,000 requests per user and hour: far from the limit, one UpdateItem per 100
//! requests (0.01 WCU per request) and no read; a user who sends fewer than 100 requests to a
//! container in an hour costs that container no call at all. A user who spends the
//! whole budget through one container costs 138 writes for 10,000 requests (batches of 100 up to
//! 9,200, shrinking ones, the last 15 one by one). Refused requests cost nothing once a container
//! knows the window is full (its first refusal in the exact stretch is one failed conditional write,
//! unless its own last write already said so). At the default 1,000 requests per IP and hour the
//! batch is 10.
//!
//! # Accuracy
//!
//! - Never before the limit: a container refuses only when `known + pending >= limit`, and both are
//!   requests that were admitted (`known` is a total the counter held, which only grows; `pending` was
//!   admitted here), or when the counter itself held `limit - pending` or more.
//! - The sign-in routes' per-minute limit, and every hourly limit under 200, are exact: at most
//!   `limit` admitted per window, across any number of containers (each admission is a conditional
//!   write).
//! - An hourly limit of 200 or more admits at most `limit + (C - 1) * floor(limit / 100)` requests in
//!   a window, `C` being the number of containers that admitted some of the subject's requests in it
//!   (each Lambda function has its own containers, so a user who spreads over many routes at once has
//!   more). At 10,000 an hour: 100 more per additional container; at 1,000: 10 more.
//!
//!   Why: cut a container's window into spans, each ending with an addition. Its first span knows no
//!   total and admits at most `floor(limit / 100)`; every later one starts when an addition tells it
//!   a total `K` and admits at most `min(batch(K), limit - K)`; an exact write is a span of its own,
//!   learning and adding at once. Take the span that learnt its total last (in the counter's order)
//!   among those that admitted anything, with total `K0`. Every span of any container that ended
//!   before it was added in before `K0` was learnt, so it is inside `K0`; spans that learnt a total
//!   after it admitted nothing; what is left is at most one span per other container (open when `K0`
//!   was learnt, or its first, which learns nothing), of at most `floor(limit / 100)` requests each
//!   (exact spans are never open). So the total is at most `K0 + (limit - K0) + (C - 1) * max batch`.
//!   If no span that learnt a total admitted anything, only first spans did: at most `C * max batch`,
//!   less than that. It is reached when every other container admitted a batch less one while one
//!   container spent the limit, then one more each.
//! - All this while DynamoDB answers. A failed addition fails open (logged, as before): the container
//!   keeps the count and tries again on each next request, still admitting only while
//!   `known + pending < limit` (with nothing known yet, `known` counts as 0). An addition that
//!   DynamoDB applied but whose answer was lost is retried by the SDK and counted twice (refusing early
//!   by that many), as with the conditional counter before. A container keeps [`CAPACITY`] windows;
//!   when full, ended windows go first, then everything: a container that forgot its pending counts
//!   is, for the bound, one more container.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use crate::config::RateLimits;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::store::Store;
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

/// A batch is at most this share of the limit (1 / 100).
const BATCH_SHARE_OF_LIMIT: u64 = 100;
/// ... and at most this share of what is left of it (1 / 8).
const BATCH_SHARE_OF_REST: u64 = 8;
/// Windows one container keeps count of at most; when full, ended windows go first, then everything.
pub const CAPACITY: usize = 20_000;

/// One counter a request is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub subject: String,
    pub window_secs: u64,
    pub max_requests: u64,
    /// Counted with one conditional write per request (no overshoot), not in per-container batches.
    pub exact: bool,
    /// What is counted, as the refusal names it ("requests", "new groups").
    pub what: &'static str,
}

impl Limit {
    fn window_start(&self, now_secs: u64) -> u64 {
        now_secs - now_secs % self.window_secs
    }

    /// Seconds until the current window ends: what `Retry-After` says.
    fn retry_after(&self, now_secs: u64) -> u64 {
        (self.window_start(now_secs) + self.window_secs - now_secs).max(1)
    }

    /// The answer to a request over this limit.
    fn refusal(&self, now_secs: u64) -> ApiError {
        let retry_after_secs = self.retry_after(now_secs);
        ApiError::RateLimited {
            message: format!(
                "Too many {}: at most {} per {}. Retry in {retry_after_secs} s.",
                self.what,
                self.max_requests,
                if self.window_secs == HOUR { "hour" } else { "minute" },
            ),
            retry_after_secs,
        }
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
                exact: true,
                what: "requests",
            });
        }
    }
    match (user_id, source_ip) {
        (Some(user), _) if limits.user_per_hour > 0 => checks.push(Limit {
            subject: format!("user#{user}"),
            window_secs: HOUR,
            max_requests: limits.user_per_hour,
            exact: false,
            what: "requests",
        }),
        (None, Some(ip)) if limits.ip_per_hour > 0 => checks.push(Limit {
            subject: format!("ip#{ip}"),
            window_secs: HOUR,
            max_requests: limits.ip_per_hour,
            exact: false,
            what: "requests",
        }),
        _ => {}
    }
    checks
}

/// Whether a route takes a bearer token, so that its session must be checked before it runs: every
/// route but the sign-in routes and `/health`.
pub fn uses_bearer_token(route_key: &str) -> bool {
    !SIGN_IN_ROUTES.contains(&route_key) && !EXEMPT_ROUTES.contains(&route_key)
}

/// Admits a request before its handler runs, on plain values: its route, its source address, and the
/// caller its token authenticated (after `http::handle` checked the session; `None` without one, and
/// ignored on the sign-in routes). Counts it against its limits, in order, stopping at the first that
/// is full.
pub async fn admit(
    context: &AppContext,
    route_key: &str,
    source_ip: Option<&str>,
    caller: Option<&str>,
) -> Result<(), ApiError> {
    if context.config.rate_limits == RateLimits::OFF {
        return Ok(());
    }
    let checks = limits_for(&context.config.rate_limits, route_key, source_ip, caller);
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

/// Counts a group that `user_id` is about to create against `RateLimits::groups_per_hour`, exactly (one
/// conditional write per creation, which writes anyway): the bound on how many conversations one
/// account can put other people into. Counted before the creation is tried, so an attempt refused
/// for its input counts too.
pub async fn admit_group_creation(context: &AppContext, user_id: &str) -> Result<(), ApiError> {
    let max = context.config.rate_limits.groups_per_hour;
    if max == 0 {
        return Ok(());
    }
    let limit = Limit {
        subject: format!("groups#{user_id}"),
        window_secs: HOUR,
        max_requests: max,
        exact: true,
        what: "new groups",
    };
    count(context, vec![limit]).await
}

async fn count(context: &AppContext, checks: Vec<Limit>) -> Result<(), ApiError> {
    if checks.is_empty() {
        return Ok(());
    }
    let now = epoch_secs(SystemTime::now());
    let allowances = Allowances::of_table(&context.config.table_name);
    for limit in &checks {
        allowances.admit(&context.store, limit, now).await?;
    }
    Ok(())
}

/// The most a container admits of one subject between two additions to its counter: 1 % of the limit
/// (at least 1).
pub fn max_batch(limit: u64) -> u64 {
    (limit / BATCH_SHARE_OF_LIMIT).max(1)
}

/// How many requests a container admits before adding them to the counter, when the counter last
/// held `known`: an eighth of what is left, between 1 and [`max_batch`]. Where it is 1 every request
/// is counted exactly (a conditional write).
pub fn batch_size(limit: u64, known: u64) -> u64 {
    (limit.saturating_sub(known) / BATCH_SHARE_OF_REST).clamp(1, max_batch(limit))
}

/// The most a limit admits in a window, over `containers` containers (see the module's notes).
pub fn worst_case_admitted(limit: u64, containers: u64, exact: bool) -> u64 {
    if exact || max_batch(limit) <= 1 {
        limit
    } else {
        limit + containers.saturating_sub(1) * max_batch(limit)
    }
}

/// Failing open: a throttled counter must not take the whole API down with it.
fn unavailable(error: &ApiError, limit: &Limit) {
    tracing::warn!(error = %error, subject = %limit.subject, "rate-limit counter unavailable");
}

/// One window's shared counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter<'a> {
    pub subject: &'a str,
    pub window_start_secs: u64,
    pub window_secs: u64,
}

/// Where the shared counters live: the table ([`Store`]), or a stand-in in tests.
pub trait Counters: Sync {
    /// Adds `hits` whatever the counter holds; returns the new total. One write.
    fn add(&self, counter: &Counter<'_>, hits: u64) -> impl Future<Output = Result<u64, ApiError>> + Send;

    /// Adds `hits` if the counter holds fewer than `below`; returns the new total, or `None` (nothing
    /// added). One conditional write.
    fn add_below(
        &self,
        counter: &Counter<'_>,
        hits: u64,
        below: u64,
    ) -> impl Future<Output = Result<Option<u64>, ApiError>> + Send;
}

impl Counters for Store {
    async fn add(&self, counter: &Counter<'_>, hits: u64) -> Result<u64, ApiError> {
        self.add_rate_hits(counter.subject, counter.window_start_secs, counter.window_secs, hits)
            .await
    }

    async fn add_below(&self, counter: &Counter<'_>, hits: u64, below: u64) -> Result<Option<u64>, ApiError> {
        self.add_rate_hits_below(
            counter.subject,
            counter.window_start_secs,
            counter.window_secs,
            hits,
            Some(below),
        )
        .await
    }
}

/// What one container knows of one subject's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Entry {
    /// When the window ends (epoch seconds): after that the entry is only taking room.
    window_end: u64,
    /// The counter's total as this container last learnt it (an addition's answer), which includes
    /// this container's own additions; `None` before its first addition.
    known: Option<u64>,
    /// Requests this container admitted and has not added to the counter.
    pending: u64,
}

/// What a request needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Admitted, counted in `pending`.
    Admit,
    /// Refused: the window is full as far as this container knows.
    Refuse,
    /// Admitted; add these hits (this request's included) to the counter.
    Add(u64),
    /// Add these hits (this request and the pending ones) if the counter holds fewer than `below`;
    /// admitted only if it did.
    AddBelow { hits: u64, below: u64 },
}

impl Entry {
    /// Decides one request against `limit`, counting it in `pending` or taking `pending` out to add.
    fn step(&mut self, limit: u64, exact: bool) -> Step {
        let batched = !exact && max_batch(limit) > 1;
        // Nothing known yet: a first batch of 1 % (see the module's notes), the batch at 0.
        let known = self.known.unwrap_or(0);
        if known.saturating_add(self.pending) >= limit {
            return Step::Refuse;
        }
        if !batched || batch_size(limit, known) <= 1 {
            let below = limit - self.pending;
            let hits = std::mem::take(&mut self.pending) + 1;
            return Step::AddBelow { hits, below };
        }
        self.pending += 1;
        if self.pending >= batch_size(limit, known) {
            Step::Add(std::mem::take(&mut self.pending))
        } else {
            Step::Admit
        }
    }

    /// The counter held (or now holds) `total`.
    fn learned(&mut self, total: u64) {
        self.known = Some(self.known.map_or(total, |known| known.max(total)));
    }

    /// Adding `hits` failed (or its answer was lost): they stay pending, to be added next time.
    fn not_added(&mut self, hits: u64) {
        self.pending += hits;
        self.known.get_or_insert(0);
    }

    /// The counter held `below` or more, so `hits - 1` earlier requests stay pending and this one is
    /// refused; the window is full as far as this container knows.
    fn full(&mut self, hits: u64, below: u64) {
        self.pending += hits - 1;
        self.learned(below);
    }
}

/// One container's allowances: what it has admitted per subject and window, and what it knows of the
/// shared counters (see the module's notes). Each process has one per table ([`Allowances::of_table`]);
/// tests make more to play several containers.
#[derive(Debug)]
pub struct Allowances {
    entries: Mutex<HashMap<(String, u64), Entry>>,
    capacity: usize,
}

impl Default for Allowances {
    fn default() -> Self {
        Allowances::with_capacity(CAPACITY)
    }
}

impl Allowances {
    /// A container's allowances, empty.
    pub fn new() -> Self {
        Allowances::default()
    }

    /// The same, keeping at most `capacity` windows.
    pub fn with_capacity(capacity: usize) -> Self {
        Allowances {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// This process's allowances for `table` (in a Lambda container there is one table; in-process
    /// tests give each test a table of its own, and so a container of its own).
    pub fn of_table(table: &str) -> Arc<Allowances> {
        static TABLES: OnceLock<Mutex<HashMap<String, Arc<Allowances>>>> = OnceLock::new();
        let mut tables = TABLES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Arc::clone(tables.entry(table.to_owned()).or_default())
    }

    /// Admits one request against `limit` at `now_secs`, or refuses it with `429 rate_limited`. Reads
    /// or writes `counters` only as the module's notes say; a failing counter admits (fails open).
    pub async fn admit<C: Counters>(&self, counters: &C, limit: &Limit, now_secs: u64) -> Result<(), ApiError> {
        let window_start_secs = limit.window_start(now_secs);
        let counter = Counter {
            subject: &limit.subject,
            window_start_secs,
            window_secs: limit.window_secs,
        };
        let step = self.with_entry(&counter, now_secs, |e| e.step(limit.max_requests, limit.exact));
        let admitted = match step {
            Step::Admit => true,
            Step::Refuse => false,
            Step::Add(hits) => {
                let added = counters.add(&counter, hits).await;
                self.with_entry(&counter, now_secs, |e| match added {
                    Ok(total) => e.learned(total),
                    Err(err) => {
                        unavailable(&err, limit);
                        e.not_added(hits);
                    }
                });
                true
            }
            Step::AddBelow { hits, below } => {
                let added = counters.add_below(&counter, hits, below).await;
                self.with_entry(&counter, now_secs, |e| match added {
                    Ok(Some(total)) => {
                        e.learned(total);
                        true
                    }
                    Ok(None) => {
                        e.full(hits, below);
                        false
                    }
                    Err(err) => {
                        unavailable(&err, limit);
                        e.not_added(hits);
                        true
                    }
                })
            }
        };
        if admitted {
            Ok(())
        } else {
            Err(limit.refusal(now_secs))
        }
    }

    /// Runs `f` on the entry of `counter`'s window, making room for it if needed.
    fn with_entry<R>(&self, counter: &Counter<'_>, now_secs: u64, f: impl FnOnce(&mut Entry) -> R) -> R {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = (counter.subject.to_owned(), counter.window_start_secs);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| entry.window_end > now_secs);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        let entry = entries.entry(key).or_insert_with(|| Entry {
            window_end: counter.window_start_secs + counter.window_secs,
            ..Entry::default()
        });
        f(entry)
    }

    /// Windows this container keeps count of.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when it keeps count of none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
                max_requests: 10_000,
                exact: false,
                what: "requests",
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
        assert!(login[0].exact, "guessing gets no overshoot");
        assert!(!login[1].exact);
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
            exact: false,
            what: "requests",
        };
        assert_eq!(limit.window_start(7_200 + 100), 7_200);
        assert_eq!(limit.retry_after(7_200 + 100), 3_500);
        assert_eq!(limit.retry_after(7_200 + 3_599), 1);
    }

    /// The shared counters in memory, counting the calls a table would get.
    #[derive(Default)]
    struct Table {
        counters: Mutex<HashMap<(String, u64), u64>>,
        reads: std::sync::atomic::AtomicU64,
        writes: std::sync::atomic::AtomicU64,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Table {
        fn hits_of(&self, counter: &Counter<'_>) -> u64 {
            let counters = self.counters.lock().unwrap();
            counters
                .get(&(counter.subject.to_owned(), counter.window_start_secs))
                .copied()
                .unwrap_or(0)
        }

        fn call(&self, write: bool) -> Result<(), ApiError> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.failing.load(SeqCst) {
                return Err(ApiError::internal("throttled"));
            }
            if write {
                self.writes.fetch_add(1, SeqCst);
            } else {
                self.reads.fetch_add(1, SeqCst);
            }
            Ok(())
        }

        fn calls(&self) -> (u64, u64) {
            use std::sync::atomic::Ordering::SeqCst;
            (self.reads.load(SeqCst), self.writes.load(SeqCst))
        }
    }

    impl Counters for Table {
        async fn add(&self, counter: &Counter<'_>, hits: u64) -> Result<u64, ApiError> {
            self.call(true)?;
            let mut counters = self.counters.lock().unwrap();
            let total = counters
                .entry((counter.subject.to_owned(), counter.window_start_secs))
                .or_default();
            *total += hits;
            Ok(*total)
        }

        async fn add_below(&self, counter: &Counter<'_>, hits: u64, below: u64) -> Result<Option<u64>, ApiError> {
            self.call(true)?;
            let mut counters = self.counters.lock().unwrap();
            let total = counters
                .entry((counter.subject.to_owned(), counter.window_start_secs))
                .or_default();
            if *total >= below {
                return Ok(None);
            }
            *total += hits;
            Ok(Some(*total))
        }
    }

    /// Mid-window, so nothing rolls over.
    const NOW: u64 = 1_795_420_800 + 1_000;

    fn hourly(max_requests: u64) -> Limit {
        Limit {
            subject: "user#U1".into(),
            window_secs: HOUR,
            max_requests,
            exact: false,
            what: "requests",
        }
    }

    async fn admitted(container: &Allowances, table: &Table, limit: &Limit) -> bool {
        match container.admit(table, limit, NOW).await {
            Ok(()) => true,
            Err(ApiError::RateLimited {
                retry_after_secs,
                message,
            }) => {
                assert_eq!(retry_after_secs, HOUR - 1_000);
                assert!(message.starts_with("Too many requests: at most "), "{message}");
                false
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    /// A small deterministic generator (xorshift), so the schedules repeat.
    struct Schedule(u64);

    impl Schedule {
        fn next(&mut self, below: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % below as u64) as usize
        }
    }

    #[test]
    fn the_batch_is_a_hundredth_of_the_limit_then_an_eighth_of_the_rest() {
        assert_eq!(max_batch(10_000), 100);
        assert_eq!(batch_size(10_000, 0), 100);
        assert_eq!(batch_size(10_000, 9_200), 100);
        assert_eq!(batch_size(10_000, 9_300), 87);
        assert_eq!(batch_size(10_000, 9_984), 2);
        assert_eq!(batch_size(10_000, 9_985), 1, "the last 15 are counted one by one");
        assert_eq!(batch_size(10_000, 10_000), 1);
        assert_eq!(batch_size(10_000, 12_000), 1);
        assert_eq!(batch_size(1_000, 0), 10);
        assert_eq!(batch_size(200, 0), 2);
        assert_eq!(batch_size(199, 0), 1, "under 200 every request is counted exactly");
        assert_eq!(batch_size(40, 0), 1);
        assert_eq!(batch_size(0, 0), 1);
        assert_eq!(worst_case_admitted(10_000, 5, false), 10_400);
        assert_eq!(worst_case_admitted(10_000, 5, true), 10_000);
        assert_eq!(worst_case_admitted(40, 5, false), 40);
        assert_eq!(worst_case_admitted(1_000, 1, false), 1_000);
    }

    #[tokio::test]
    async fn one_container_refuses_exactly_at_the_limit_and_then_calls_nothing() {
        for max in [1, 8, 40, 199, 200, 1_000, 10_000, 12_345] {
            let (container, table, limit) = (Allowances::new(), Table::default(), hourly(max));
            let mut count = 0;
            while admitted(&container, &table, &limit).await {
                count += 1;
                assert!(count <= max, "limit {max}: admitted past it");
            }
            assert_eq!(count, max, "limit {max}: refused before it");
            let calls = table.calls();
            for _ in 0..10 {
                assert!(!admitted(&container, &table, &limit).await);
            }
            assert_eq!(table.calls(), calls, "limit {max}: a known-full window costs no call");
        }
    }

    #[tokio::test]
    async fn the_default_user_limit_costs_a_write_per_hundred_requests() {
        let (container, table, limit) = (Allowances::new(), Table::default(), hourly(10_000));
        for _ in 0..99 {
            assert!(admitted(&container, &table, &limit).await);
        }
        assert_eq!(table.calls(), (0, 0), "99 requests without a read or a write");
        assert!(admitted(&container, &table, &limit).await);
        assert_eq!(table.calls(), (0, 1), "the hundredth adds the batch");
        let counter = Counter {
            subject: "user#U1",
            window_start_secs: limit.window_start(NOW),
            window_secs: HOUR,
        };
        assert_eq!(table.hits_of(&counter), 100);
        for _ in 100..10_000 {
            assert!(admitted(&container, &table, &limit).await);
        }
        // Batches of 100 up to 9,200, shrinking ones, the last 15 one by one; the refusal is free (the
        // last write told the container the window is full).
        assert!(!admitted(&container, &table, &limit).await);
        assert_eq!(table.calls(), (0, 138), "the whole budget through one container");
        assert_eq!(table.hits_of(&counter), 10_000);
    }

    #[tokio::test]
    async fn containers_sharing_a_counter_stay_within_the_bound_and_never_refuse_early() {
        for (max, containers, seed) in [
            (40, 5, 1),
            (200, 2, 2),
            (1_000, 3, 3),
            (1_000, 10, 4),
            (10_000, 4, 5),
            (10_000, 10, 6),
        ] {
            let table = Table::default();
            let fleet: Vec<Allowances> = (0..containers).map(|_| Allowances::new()).collect();
            let limit = hourly(max);
            let mut schedule = Schedule(0x9E37_79B9_7F4A_7C15 ^ seed);
            let (mut total, mut refused) = (0, 0);
            // Bursts of random length to random containers, until every container has refused 20 times.
            while refused < 20 * containers as u64 {
                let container = &fleet[schedule.next(fleet.len())];
                for _ in 0..=schedule.next(3 * max_batch(max) as usize) {
                    if admitted(container, &table, &limit).await {
                        total += 1;
                    } else {
                        assert!(total >= max, "limit {max}: refused at {total}");
                        refused += 1;
                    }
                }
            }
            let bound = worst_case_admitted(max, containers as u64, false);
            assert!(
                (max..=bound).contains(&total),
                "limit {max}, {containers} containers: admitted {total}, bound {bound}"
            );
        }
    }

    #[tokio::test]
    async fn the_bound_is_reached_by_containers_that_learnt_early() {
        for (max, containers) in [(10_000, 4), (1_000, 10), (40, 5)] {
            let table = Table::default();
            let fleet: Vec<Allowances> = (0..containers).map(|_| Allowances::new()).collect();
            let limit = hourly(max);
            let mut total = 0;
            // Every other container learns 0 and admits a batch less one, unflushed.
            for container in &fleet[1..] {
                for _ in 1..max_batch(max) {
                    assert!(admitted(container, &table, &limit).await);
                    total += 1;
                }
            }
            // One container spends what it believes is the whole limit...
            while admitted(&fleet[0], &table, &limit).await {
                total += 1;
            }
            // ... then each of the others admits one more (its batch's last) before it learns.
            for container in &fleet[1..] {
                while admitted(container, &table, &limit).await {
                    total += 1;
                }
            }
            assert_eq!(total, worst_case_admitted(max, containers as u64, false), "limit {max}");
        }
    }

    #[tokio::test]
    async fn the_sensitive_limit_is_exact_with_one_write_per_attempt() {
        let table = Table::default();
        let fleet = [Allowances::new(), Allowances::new(), Allowances::new()];
        let limit = limits_for(&RateLimits::DEFAULT, "POST /auth/login", Some("10.0.0.7"), None).remove(0);
        assert!(limit.exact);
        let mut total = 0;
        for n in 0..limit.max_requests + 30 {
            let container = &fleet[n as usize % fleet.len()];
            if container.admit(&table, &limit, NOW).await.is_ok() {
                total += 1;
            }
        }
        assert_eq!(total, limit.max_requests);
        // One write per admitted attempt; one failed write per container that did not make the last
        // one (that one knows), then nothing.
        assert_eq!(table.calls(), (0, limit.max_requests + fleet.len() as u64 - 1));
    }

    #[tokio::test]
    async fn a_failing_counter_admits_and_keeps_the_count() {
        use std::sync::atomic::Ordering::SeqCst;
        let (container, table, limit) = (Allowances::new(), Table::default(), hourly(1_000));
        let counter = Counter {
            subject: "user#U1",
            window_start_secs: limit.window_start(NOW),
            window_secs: HOUR,
        };
        table.failing.store(true, SeqCst);
        for _ in 0..25 {
            assert!(admitted(&container, &table, &limit).await, "fails open");
        }
        table.failing.store(false, SeqCst);
        assert!(admitted(&container, &table, &limit).await);
        assert_eq!(table.hits_of(&counter), 26, "nothing admitted while failing is lost");
        assert_eq!(table.calls(), (0, 1));

        // In the exact stretch too.
        let small = Limit {
            subject: "user#U2".into(),
            ..hourly(5)
        };
        table.failing.store(true, SeqCst);
        assert!(admitted(&container, &table, &small).await);
        assert!(admitted(&container, &table, &small).await);
        table.failing.store(false, SeqCst);
        assert!(admitted(&container, &table, &small).await);
        assert_eq!(
            table.hits_of(&Counter {
                subject: "user#U2",
                ..counter
            }),
            3
        );
    }

    #[tokio::test]
    async fn a_container_that_comes_late_admits_one_batch_then_refuses_without_a_call() {
        let table = Table::default();
        let limit = hourly(1_000);
        let (first, second) = (Allowances::new(), Allowances::new());
        while admitted(&first, &table, &limit).await {}
        // A container that comes later knows nothing: its first batch (10) is admitted, and its
        // addition tells it the window is full (the bound's one batch per other container).
        let mut late = 0;
        while admitted(&second, &table, &limit).await {
            late += 1;
        }
        assert_eq!(late, max_batch(1_000));
        assert_eq!(late + 1_000, worst_case_admitted(1_000, 2, false));
        let calls = table.calls();
        assert_eq!(calls.0, 0, "no reads");
        assert!(!admitted(&second, &table, &limit).await);
        assert_eq!(table.calls(), calls, "a known-full window costs no call");
        // The next hour is a new window.
        assert!(second.admit(&table, &limit, NOW + HOUR).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_container_forgets_ended_windows_first() {
        let table = Table::default();
        let container = Allowances::with_capacity(2);
        let limit = |subject: &str| Limit {
            subject: subject.into(),
            ..hourly(1_000)
        };
        container.admit(&table, &limit("ip#a"), NOW - HOUR).await.unwrap();
        container.admit(&table, &limit("ip#b"), NOW).await.unwrap();
        container.admit(&table, &limit("ip#c"), NOW).await.unwrap();
        assert_eq!(container.len(), 2, "the ended window went");
        container.admit(&table, &limit("ip#d"), NOW).await.unwrap();
        assert_eq!(container.len(), 1, "then everything");
        assert!(!container.is_empty());
    }
}
