//! Fault injection: AWS failing as AWS fails, on purpose, so tests can show that nothing is lost,
//! duplicated or answered with a 500 when it does. DynamoDB Local serialises transactions and never
//! throttles, so its failures have to be made: a proxy in front of it (see [`dynamodb`]) answers a
//! configured share of the functions' calls with DynamoDB's own error documents, or holds them. The
//! gateway's @connections API does the same for posts to connections (500s, timeouts, and 410 Gone for
//! chosen connections whose sockets stay open).
//!
//! The configuration can change while the stack runs (`PUT /@faults` on the WebSocket port, or
//! [`crate::LocalStack::set_faults`]); the draws come from a seeded generator, so a run that failed can
//! be replayed with the same seed (as far as the order of concurrent requests allows).

pub mod dynamodb;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use dynamodb::FaultProxy;

/// What to break, and how often. Every share is a probability from 0 to 1 per request; the shares of
/// one service add up to at most 1. A share that does not apply to a request (a conflict for a
/// `GetItem`) leaves that request to pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    pub dynamodb: DynamoDbFaults,
    pub connections: ConnectionFaults,
    /// Connection ids whose @connections posts are answered 410 Gone while their sockets stay open,
    /// as when API Gateway has dropped a connection the client has not noticed yet.
    pub gone_connections: BTreeSet<String>,
    /// Seeds the draws; setting a configuration starts the sequence again.
    pub seed: u64,
    /// How long a held request waits for its client to give up before it is answered anyway.
    pub hold_limit_ms: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            dynamodb: DynamoDbFaults::default(),
            connections: ConnectionFaults::default(),
            gone_connections: BTreeSet::new(),
            seed: 0,
            hold_limit_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamoDbFaults {
    /// 400 ThrottlingException or ProvisionedThroughputExceededException (either, by draw).
    pub throttle: f64,
    /// 400 TransactionCanceledException (one item's reason TransactionConflict) for transactions,
    /// TransactionConflictException for PutItem, UpdateItem and DeleteItem; other calls pass.
    pub conflict: f64,
    /// 500 InternalServerError without forwarding: nothing happened.
    pub internal: f64,
    /// 500 InternalServerError after forwarding: the write happened, and the caller cannot tell.
    pub internal_after_write: f64,
    /// Held without forwarding until the client gives up (or the hold limit, then a 500).
    pub timeout: f64,
    /// Forwarded, and DynamoDB's answer held until the client gives up (or the hold limit).
    pub timeout_after_write: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionFaults {
    /// `POST /@connections/{id}` answered 500 without delivering.
    pub error: f64,
    /// `POST /@connections/{id}` held without delivering until the client gives up (or the hold
    /// limit, then a 500).
    pub timeout: f64,
}

/// How many requests met each fault since the stack started (not reset by a new configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultCounters {
    pub dynamodb: DynamoDbCounters,
    pub connections: ConnectionCounters,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DynamoDbCounters {
    /// Every request the proxy received.
    pub requests: u64,
    /// Forwarded and answered untouched.
    pub passed: u64,
    pub throttle: u64,
    pub conflict: u64,
    pub internal: u64,
    pub internal_after_write: u64,
    pub timeout: u64,
    pub timeout_after_write: u64,
    /// Requests held right now (a client that gives up releases its request).
    pub held: u64,
    /// Forwarding failed (DynamoDB Local unreachable): answered 500 InternalServerError.
    pub upstream_errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionCounters {
    /// Every `POST /@connections/{id}`.
    pub posts: u64,
    /// Posts left to the gateway (delivered, or 410 for a connection that is really gone).
    pub passed: u64,
    pub error: u64,
    pub timeout: u64,
    /// Posts answered 410 because their connection is in `gone_connections`.
    pub gone: u64,
    pub held: u64,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        let d = &self.dynamodb;
        let c = &self.connections;
        let groups: [(&str, Vec<(&str, f64)>); 2] = [
            (
                "dynamodb",
                vec![
                    ("throttle", d.throttle),
                    ("conflict", d.conflict),
                    ("internal", d.internal),
                    ("internal_after_write", d.internal_after_write),
                    ("timeout", d.timeout),
                    ("timeout_after_write", d.timeout_after_write),
                ],
            ),
            ("connections", vec![("error", c.error), ("timeout", c.timeout)]),
        ];
        for (group, shares) in &groups {
            for (name, share) in shares {
                if !(share.is_finite() && (0.0..=1.0).contains(share)) {
                    return Err(format!(
                        "{group}.{name} is {share}; a share is a probability from 0 to 1"
                    ));
                }
            }
            let total: f64 = shares.iter().map(|(_, share)| share).sum();
            // Shares split evenly (`dynamodb=1`) add up to a hair over 1 in floating point.
            if total > 1.0 + 1e-9 {
                return Err(format!(
                    "the {group} shares add up to {total}; one request meets at most one fault, so at most 1"
                ));
            }
        }
        Ok(())
    }

    /// Applies a `--faults` value: comma-separated `key=value` pairs, in order. `dynamodb=S` and
    /// `connections=S` split S evenly over their kinds; `dynamodb.<kind>=S` and `connections.<kind>=S`
    /// set one; `gone=ID`, `seed=N` and `hold=DURATION` (e.g. `2s`) set the rest.
    pub fn apply_spec(&mut self, spec: &str) -> Result<(), String> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--faults takes key=value pairs, not {pair:?}"))?;
            let key = key.trim().replace('-', "_");
            let value = value.trim();
            let share = || -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("{key}={value}: a share is a number from 0 to 1"))
            };
            let d = &mut self.dynamodb;
            let c = &mut self.connections;
            match key.as_str() {
                "dynamodb" => {
                    let each = share()? / 6.0;
                    *d = DynamoDbFaults {
                        throttle: each,
                        conflict: each,
                        internal: each,
                        internal_after_write: each,
                        timeout: each,
                        timeout_after_write: each,
                    };
                }
                "dynamodb.throttle" => d.throttle = share()?,
                "dynamodb.conflict" => d.conflict = share()?,
                "dynamodb.internal" => d.internal = share()?,
                "dynamodb.internal_after_write" => d.internal_after_write = share()?,
                "dynamodb.timeout" => d.timeout = share()?,
                "dynamodb.timeout_after_write" => d.timeout_after_write = share()?,
                "connections" => {
                    let each = share()? / 2.0;
                    *c = ConnectionFaults {
                        error: each,
                        timeout: each,
                    };
                }
                "connections.error" => c.error = share()?,
                "connections.timeout" => c.timeout = share()?,
                "gone" => {
                    self.gone_connections.insert(value.to_owned());
                }
                "seed" => {
                    self.seed = value
                        .parse()
                        .map_err(|_| format!("seed={value}: the seed is a whole number"))?
                }
                "hold" => {
                    self.hold_limit_ms = humantime::parse_duration(value)
                        .map_err(|e| format!("hold={value}: {e} (say e.g. 2s or 500ms)"))?
                        .as_millis() as u64
                }
                other => {
                    return Err(format!(
                        "unknown fault {other:?}; the keys are dynamodb, dynamodb.{{throttle,conflict,internal,\
                         internal_after_write,timeout,timeout_after_write}}, connections, \
                         connections.{{error,timeout}}, gone, seed and hold"
                    ))
                }
            }
        }
        self.validate()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DynamoDbFault {
    Throttle,
    Conflict,
    Internal,
    InternalAfterWrite,
    Timeout,
    TimeoutAfterWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionFault {
    Gone,
    Error,
    Timeout,
}

#[derive(Default)]
struct DynamoDbTally {
    requests: AtomicU64,
    passed: AtomicU64,
    throttle: AtomicU64,
    conflict: AtomicU64,
    internal: AtomicU64,
    internal_after_write: AtomicU64,
    timeout: AtomicU64,
    timeout_after_write: AtomicU64,
    held: AtomicU64,
    upstream_errors: AtomicU64,
}

#[derive(Default)]
struct ConnectionTally {
    posts: AtomicU64,
    passed: AtomicU64,
    error: AtomicU64,
    timeout: AtomicU64,
    gone: AtomicU64,
    held: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The live configuration, the generator and the counters, shared by the proxy and the gateway.
pub struct FaultInjector {
    config: RwLock<FaultConfig>,
    rng: Mutex<Xoshiro256PlusPlus>,
    dynamodb: DynamoDbTally,
    connections: ConnectionTally,
}

/// Marks a request as held for as long as it lives: dropped when the request is answered, or when
/// its connection closes and the server drops the request's future.
pub(crate) struct Held<'a>(&'a AtomicU64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FaultInjector {
    pub fn new(config: FaultConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(FaultInjector {
            rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(config.seed)),
            config: RwLock::new(config),
            dynamodb: DynamoDbTally::default(),
            connections: ConnectionTally::default(),
        })
    }

    pub fn config(&self) -> FaultConfig {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the configuration and restarts the draws from its seed; counters go on counting.
    pub fn set_config(&self, config: FaultConfig) -> Result<(), String> {
        config.validate()?;
        let mut current = self.config.write().unwrap_or_else(|p| p.into_inner());
        *self.rng.lock().unwrap_or_else(|p| p.into_inner()) = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        *current = config;
        Ok(())
    }

    pub fn counters(&self) -> FaultCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let d = &self.dynamodb;
        let c = &self.connections;
        FaultCounters {
            dynamodb: DynamoDbCounters {
                requests: get(&d.requests),
                passed: get(&d.passed),
                throttle: get(&d.throttle),
                conflict: get(&d.conflict),
                internal: get(&d.internal),
                internal_after_write: get(&d.internal_after_write),
                timeout: get(&d.timeout),
                timeout_after_write: get(&d.timeout_after_write),
                held: get(&d.held),
                upstream_errors: get(&d.upstream_errors),
            },
            connections: ConnectionCounters {
                posts: get(&c.posts),
                passed: get(&c.passed),
                error: get(&c.error),
                timeout: get(&c.timeout),
                gone: get(&c.gone),
                held: get(&c.held),
            },
        }
    }

    fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|p| p.into_inner()).random::<f64>()
    }

    /// A number below `n`, from the same seeded sequence.
    pub(crate) fn pick(&self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.rng.lock().unwrap_or_else(|p| p.into_inner()).random_range(0..n)
    }

    fn hold_limit(&self) -> Duration {
        Duration::from_millis(self.config.read().unwrap_or_else(|p| p.into_inner()).hold_limit_ms)
    }

    /// Picks the first kind whose cumulative share covers one draw in [0, 1).
    fn choose<K: Copy>(&self, shares: &[(K, f64)]) -> Option<K> {
        if shares.iter().all(|(_, share)| *share <= 0.0) {
            return None;
        }
        let draw = self.draw();
        let mut reach = 0.0;
        shares.iter().find_map(|(kind, share)| {
            reach += share;
            (draw < reach).then_some(*kind)
        })
    }

    /// The fault one DynamoDB request meets, if any, counted.
    pub(crate) fn roll_dynamodb(&self, conflict_applies: bool) -> Option<DynamoDbFault> {
        bump(&self.dynamodb.requests);
        let d = self.config.read().unwrap_or_else(|p| p.into_inner()).dynamodb.clone();
        let fault = self.choose(&[
            (DynamoDbFault::Throttle, d.throttle),
            (DynamoDbFault::Conflict, if conflict_applies { d.conflict } else { 0.0 }),
            (DynamoDbFault::Internal, d.internal),
            (DynamoDbFault::InternalAfterWrite, d.internal_after_write),
            (DynamoDbFault::Timeout, d.timeout),
            (DynamoDbFault::TimeoutAfterWrite, d.timeout_after_write),
        ]);
        let t = &self.dynamodb;
        bump(match fault {
            None => &t.passed,
            Some(DynamoDbFault::Throttle) => &t.throttle,
            Some(DynamoDbFault::Conflict) => &t.conflict,
            Some(DynamoDbFault::Internal) => &t.internal,
            Some(DynamoDbFault::InternalAfterWrite) => &t.internal_after_write,
            Some(DynamoDbFault::Timeout) => &t.timeout,
            Some(DynamoDbFault::TimeoutAfterWrite) => &t.timeout_after_write,
        });
        fault
    }

    /// The fault one `POST /@connections/{id}` meets, if any, counted.
    pub(crate) fn roll_connection_post(&self, connection_id: &str) -> Option<ConnectionFault> {
        let t = &self.connections;
        bump(&t.posts);
        let (gone, c) = {
            let config = self.config.read().unwrap_or_else(|p| p.into_inner());
            (
                config.gone_connections.contains(connection_id),
                config.connections.clone(),
            )
        };
        let fault = if gone {
            Some(ConnectionFault::Gone)
        } else {
            self.choose(&[(ConnectionFault::Error, c.error), (ConnectionFault::Timeout, c.timeout)])
        };
        bump(match fault {
            None => &t.passed,
            Some(ConnectionFault::Gone) => &t.gone,
            Some(ConnectionFault::Error) => &t.error,
            Some(ConnectionFault::Timeout) => &t.timeout,
        });
        fault
    }

    pub(crate) fn upstream_failed(&self) {
        bump(&self.dynamodb.upstream_errors);
    }

    /// Waits as a request nobody answers waits: until the hold limit, unless the client gives up first
    /// (then the server drops this future, and the `Held` mark with it).
    async fn hold(&self, gauge: &AtomicU64) {
        gauge.fetch_add(1, Ordering::Relaxed);
        let _held = Held(gauge);
        tokio::time::sleep(self.hold_limit()).await;
    }

    pub(crate) async fn hold_dynamodb(&self) {
        self.hold(&self.dynamodb.held).await
    }

    pub(crate) async fn hold_connection(&self) {
        self.hold(&self.connections.held).await
    }

    fn state(&self) -> Value {
        json!({ "config": self.config(), "counters": self.counters() })
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Whether `path` is the test harness's fault endpoint.
pub(crate) fn serves(path: &str) -> bool {
    path == "/@faults" || path == "/@faults/"
}

/// `GET /@faults`: the configuration and the counters. `PUT /@faults`: a new configuration (the whole
/// of it; fields left out are 0). Not there (404) unless the stack was started with fault injection.
pub(crate) async fn harness(faults: Option<&FaultInjector>, request: Request<Incoming>) -> HttpResponse {
    let Some(faults) = faults else {
        return json_response(StatusCode::NOT_FOUND, &json!({ "message": "Not Found" }));
    };
    match request.method().as_str() {
        "GET" => json_response(StatusCode::OK, &faults.state()),
        "PUT" => {
            let body = match Limited::new(request.into_body(), 1024 * 1024).collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    return json_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &json!({ "message": "a fault configuration is at most 1 MB" }),
                    )
                }
            };
            let config: FaultConfig = match serde_json::from_slice(&body) {
                Ok(config) => config,
                Err(e) => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({ "message": format!("the body is not a fault configuration: {e}") }),
                    )
                }
            };
            match faults.set_config(config) {
                Ok(()) => json_response(StatusCode::OK, &faults.state()),
                Err(problem) => json_response(StatusCode::BAD_REQUEST, &json!({ "message": problem })),
            }
        }
        _ => {
            let mut response = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({ "message": "GET or PUT /@faults" }),
            );
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, PUT"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_and_set_shares() {
        let mut config = FaultConfig::default();
        config
            .apply_spec("dynamodb=0.06,connections=0.1,dynamodb.throttle=0.02,seed=7,hold=2s,gone=abc=")
            .unwrap();
        assert!((config.dynamodb.conflict - 0.01).abs() < 1e-12);
        assert_eq!(config.dynamodb.throttle, 0.02);
        assert!((config.connections.error - 0.05).abs() < 1e-12);
        assert_eq!(config.seed, 7);
        assert_eq!(config.hold_limit_ms, 2000);
        assert!(config.gone_connections.contains("abc="));
        assert!(
            FaultConfig::default().apply_spec("dynamodb=1").is_ok(),
            "an even split of 1 is 1"
        );
        assert!(FaultConfig::default().apply_spec("dynamodb.throtle=0.1").is_err());
        assert!(FaultConfig::default().apply_spec("dynamodb.timeout=1.5").is_err());
        assert!(FaultConfig::default()
            .apply_spec("dynamodb.timeout=0.6,dynamodb.internal=0.6")
            .is_err());
        assert!(FaultConfig::default().apply_spec("connections").is_err());
    }

    #[test]
    fn draws_follow_the_seed_and_the_shares() {
        let config = FaultConfig {
            seed: 42,
            dynamodb: DynamoDbFaults {
                throttle: 0.25,
                conflict: 0.25,
                ..DynamoDbFaults::default()
            },
            ..FaultConfig::default()
        };
        let run = |conflicts: bool| {
            let faults = FaultInjector::new(config.clone()).unwrap();
            (0..2000).map(|_| faults.roll_dynamodb(conflicts)).collect::<Vec<_>>()
        };
        let first = run(true);
        assert_eq!(first, run(true), "one seed, one sequence");
        let throttles = first.iter().filter(|f| **f == Some(DynamoDbFault::Throttle)).count();
        let conflicts = first.iter().filter(|f| **f == Some(DynamoDbFault::Conflict)).count();
        assert!((400..600).contains(&throttles), "{throttles}");
        assert!((400..600).contains(&conflicts), "{conflicts}");
        assert!(
            !run(false).contains(&Some(DynamoDbFault::Conflict)),
            "no conflicts where they cannot happen"
        );
        let faults = FaultInjector::new(config).unwrap();
        faults.roll_dynamodb(true);
        assert_eq!(faults.counters().dynamodb.requests, 1);
    }
}
