//! What the load goes to: the local stack started in this process (the default), or URLs given on the
//! command line, which must be on this machine's loopback unless `--allow-remote` says otherwise.
//!
//! The check runs before any client exists, so a refused target never sees a single packet.

use std::collections::BTreeMap;
use std::net::IpAddr;

use local_stack::{LocalStack, Options, Profile};

/// The backend's per-IP and per-user rate limits. Every virtual user comes from 127.0.0.1, so at their
/// defaults the load would be refused; a deployed stack under test needs the same values.
pub const RATE_LIMIT_PARAMETERS: [&str; 4] = [
    "RateLimitIpPerHour",
    "RateLimitUserPerHour",
    "RateLimitSensitivePerMinute",
    "RateLimitGroupsPerHour",
];

/// How the stack under test limits rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimiting {
    /// Every limit "0" (off): what the closed-loop runs of BENCHMARKS.md had.
    Off,
    /// Every limit on, at [`RAISED_RATE_LIMIT`]: the limiter does its work on every request, as deployed,
    /// without refusing the load (the open loop's default).
    Raised,
}

/// Far above what any scenario does from one address or as one user (a thousand users signing up within
/// a minute; a user at several requests a second for hours).
pub const RAISED_RATE_LIMIT: &str = "1000000";

impl RateLimiting {
    pub fn value(self) -> &'static str {
        match self {
            RateLimiting::Off => "0",
            RateLimiting::Raised => RAISED_RATE_LIMIT,
        }
    }
}

/// The two base URLs the virtual users talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// e.g. `http://127.0.0.1:3000`, without a trailing slash.
    pub http: String,
    /// e.g. `ws://127.0.0.1:3001`, without a trailing slash.
    pub ws: String,
}

/// Whether `host` (as a URL spells it: a name, an IPv4 address, or a bracketed IPv6 address) is this
/// machine's loopback: 127.0.0.0/8, ::1 (also IPv4-mapped), or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// Checks one URL: parseable, one of `schemes`, and loopback unless `allow_remote`. Returns it without a
/// trailing slash. The URL parser normalises hosts first (`127.1`, `0x7f000001` and `2130706433` are all
/// 127.0.0.1), so the host checked is the host a client would connect to.
pub fn check_url(flag: &str, raw: &str, schemes: &[&str], allow_remote: bool) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{flag} {raw:?} is not a URL: {e}"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("{flag} {raw:?} must start with {}://", schemes.join(":// or ")));
    }
    let host = url.host_str().ok_or_else(|| format!("{flag} {raw:?} names no host"))?;
    if !allow_remote && !is_loopback_host(host) {
        return Err(format!(
            "refusing to load-test {raw}: host {host} is not this machine's loopback (127.0.0.0/8, ::1, localhost). \
             Load tests only ever target a stack you own; pass --allow-remote to target a deployed stack on purpose"
        ));
    }
    if matches!(url.scheme(), "https" | "wss") && !cfg!(feature = "tls") {
        return Err(format!(
            "{flag} {raw:?} needs TLS, which this build leaves out: build with `--features tls`"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{flag} {raw:?}: give the base URL only, without query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Both URLs of `--url` and `--ws-url`, checked.
pub fn check_endpoints(http: &str, ws: &str, allow_remote: bool) -> Result<Endpoints, String> {
    Ok(Endpoints {
        http: check_url("--url", http, &["http", "https"], allow_remote)?,
        ws: check_url("--ws-url", ws, &["ws", "wss"], allow_remote)?,
    })
}

/// A name that passed as loopback (`localhost`) must also resolve only to loopback addresses: a hosts file
/// could say otherwise, and the check is about where packets go.
pub async fn check_resolution(endpoints: &Endpoints) -> Result<(), String> {
    for raw in [&endpoints.http, &endpoints.ws] {
        let url = reqwest::Url::parse(raw).map_err(|e| e.to_string())?;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            continue;
        };
        if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
            continue;
        }
        let addresses: Vec<_> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if let Some(outside) = addresses.iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "refusing to load-test {raw}: {host} resolves to {}, which is not loopback; pass --allow-remote to target it on purpose",
                outside.ip()
            ));
        }
    }
    Ok(())
}

/// How to start the local stack.
#[derive(Debug, Clone)]
pub struct StackSettings {
    pub profile: Profile,
    /// Run `cargo build` for the functions first (nothing to do when they are fresh).
    pub build: bool,
    pub max_instances_per_function: usize,
    pub echo_logs: bool,
    pub dynamodb_heap_mb: u32,
    pub rate_limiting: RateLimiting,
}

impl Default for StackSettings {
    fn default() -> Self {
        StackSettings {
            profile: Profile::Debug,
            build: true,
            max_instances_per_function: 10,
            echo_logs: false,
            dynamodb_heap_mb: 1024,
            rate_limiting: RateLimiting::Raised,
        }
    }
}

/// The rate-limit parameters that `declared` (the template's parameter names) knows, each at
/// `rate_limiting`'s value. Giving only declared ones keeps the local stack's view exact whether or not the
/// template has them yet.
pub fn rate_limit_overrides<'a>(
    declared: impl IntoIterator<Item = &'a str>,
    rate_limiting: RateLimiting,
) -> BTreeMap<String, String> {
    let declared: Vec<&str> = declared.into_iter().collect();
    RATE_LIMIT_PARAMETERS
        .iter()
        .filter(|name| declared.contains(name))
        .map(|name| ((*name).to_owned(), rate_limiting.value().to_owned()))
        .collect()
}

/// Starts Parley's local stack in this process: free ports, an in-memory database, the rate limits as
/// `settings` says. Returns the stack and the rate-limit parameters it was given.
pub async fn start_local_stack(settings: &StackSettings) -> Result<(LocalStack, BTreeMap<String, String>), String> {
    let template = local_stack::workspace_template();
    let declared = parley_template::Template::load(&template)
        .map_err(|e| format!("reading {}: {e}", template.display()))?
        .parameters();
    let rate_limits = rate_limit_overrides(declared.iter().map(|p| p.name.as_str()), settings.rate_limiting);
    let mut options = Options::for_tests(template);
    options.profile = settings.profile;
    options.build = settings.build;
    options.max_instances_per_function = settings.max_instances_per_function;
    options.echo_logs = settings.echo_logs;
    options.dynamodb_heap_mb = settings.dynamodb_heap_mb;
    // A load runs long enough for the JVM's optimising compiler to pay off, as the run command's does
    // (the tests' quick start-up setting costs about 10 % more CPU per call once warm).
    options.dynamodb_jit = local_stack::Jit::Peak;
    options.parameters.extend(rate_limits.clone());
    let stack = LocalStack::start(options)
        .await
        .map_err(|e| format!("the local stack did not start: {e}"))?;
    Ok((stack, rate_limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1",
            "127.255.0.9",
            "[::1]",
            "::1",
            "localhost",
            "LOCALHOST",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "192.168.1.1",
            "0.0.0.0",
            "[::]",
            "128.0.0.1",
            "localhost.example.com",
            "127.0.0.1.nip.io",
            "[2001:db8::1]",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn urls_are_checked_before_use() {
        let http = ["http", "https"];
        assert_eq!(
            check_url("--url", "http://127.0.0.1:3000/", &http, false).unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            check_url("--url", "http://localhost:3000", &http, false).unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(
            check_url("--url", "http://[::1]:3000", &http, false).unwrap(),
            "http://[::1]:3000"
        );
        // Spellings the URL parser turns into 127.0.0.1.
        assert!(check_url("--url", "http://127.1:3000", &http, false).is_ok());
        assert!(check_url("--url", "http://2130706433:3000", &http, false).is_ok());

        let refused = check_url("--url", "http://example.com", &http, false).unwrap_err();
        assert!(
            refused.contains("refusing") && refused.contains("--allow-remote"),
            "{refused}"
        );
        assert!(check_url("--url", "http://10.1.2.3:3000", &http, false).is_err());
        assert!(check_url("--url", "http://user@example.com", &http, false).is_err());
        // With --allow-remote the same URL passes validation (nothing is sent here).
        assert_eq!(
            check_url("--url", "http://example.com/", &http, true).unwrap(),
            "http://example.com"
        );
        assert!(check_url("--url", "ws://127.0.0.1:3001", &http, false).is_err());
        assert!(check_url("--url", "not a url", &http, false).is_err());

        let both = check_endpoints("http://127.0.0.1:1", "ws://example.com", false).unwrap_err();
        assert!(both.contains("example.com"), "{both}");
        assert!(check_endpoints("http://127.0.0.1:1", "ws://127.0.0.1:2", false).is_ok());
        assert!(check_endpoints("http://example.com", "ws://example.com", true).is_ok());
    }

    #[test]
    fn rate_limits_only_where_declared() {
        assert!(rate_limit_overrides(["TokenSecret"], RateLimiting::Off).is_empty());
        let declared = [
            "TokenSecret",
            "RateLimitIpPerHour",
            "RateLimitUserPerHour",
            "RateLimitSensitivePerMinute",
        ];
        let off = rate_limit_overrides(declared, RateLimiting::Off);
        assert_eq!(off.len(), 3);
        assert!(off.values().all(|v| v == "0"));
        let raised = rate_limit_overrides(declared, RateLimiting::Raised);
        assert_eq!(raised.keys().collect::<Vec<_>>(), off.keys().collect::<Vec<_>>());
        assert!(raised.values().all(|v| v == "1000000"));
    }
}
