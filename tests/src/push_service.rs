//! A Web Push service of the tests' own on 127.0.0.1: what a browser vendor's push service does with
//! Parley's pushes, checked as strictly as one would. Each request must carry a VAPID `Authorization`
//! (RFC 8292) whose key is the server's, whose ES256 JWT verifies with it and names this service's
//! origin as `aud`, expires within 24 hours and has a `sub`; its body must decrypt (RFC 8291
//! `aes128gcm`) with the private key of the device it is for. What arrives is recorded per device;
//! each device answers 201 unless a test scripts other statuses (503 to make Parley retry, 410 to say
//! the subscription is gone).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};

/// One push as the service received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    /// The decrypted payload (JSON), or `null` when it did not decrypt.
    pub payload: Value,
    pub headers: BTreeMap<String, String>,
    /// What was wrong with the request (empty when everything held).
    pub problems: Vec<String>,
    /// The status the service answered.
    pub status: u16,
}

/// A browser's subscription to this service.
#[derive(Clone)]
pub struct Device {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    path: String,
}

impl Device {
    /// `POST /users/me/push-subscriptions`'s body for this device.
    pub fn subscription(&self) -> Value {
        json!({ "type": "webpush", "endpoint": self.endpoint, "keys": { "p256dh": self.p256dh, "auth": self.auth } })
    }
}

struct Registered {
    secret: p256::SecretKey,
    auth: [u8; 16],
    answers: VecDeque<u16>,
    /// The status once `answers` is used up.
    otherwise: u16,
    received: Vec<Received>,
}

pub struct PushService {
    pub origin: String,
    vapid_key: String,
    devices: Arc<Mutex<BTreeMap<String, Registered>>>,
}

impl PushService {
    /// Starts the service on a free port of 127.0.0.1, expecting pushes signed with `vapid_key` (the
    /// server's, from `GET /push/vapid-public-key`).
    pub async fn start(vapid_key: &str) -> PushService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let origin = format!("http://127.0.0.1:{}", address.port());
        let devices: Arc<Mutex<BTreeMap<String, Registered>>> = Arc::default();
        let (shared, aud, key) = (Arc::clone(&devices), origin.clone(), vapid_key.to_owned());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (devices, aud, key) = (Arc::clone(&shared), aud.clone(), key.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (devices, aud, key) = (Arc::clone(&devices), aud.clone(), key.clone());
                        async move { Ok::<_, Infallible>(receive(request, &devices, &aud, &key).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        PushService {
            origin,
            vapid_key: vapid_key.to_owned(),
            devices,
        }
    }

    pub fn vapid_key(&self) -> &str {
        &self.vapid_key
    }

    /// A new browser subscribed to this service.
    pub fn device(&self) -> Device {
        let secret = std::iter::repeat_with(|| {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).unwrap();
            p256::SecretKey::from_slice(&bytes).ok()
        })
        .flatten()
        .next()
        .unwrap();
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).unwrap();
        let path = format!("/push/{}", ulid::Ulid::generate());
        let device = Device {
            endpoint: format!("{}{path}", self.origin),
            p256dh: URL_SAFE_NO_PAD.encode(secret.public_key().as_affine().to_encoded_point(false).as_bytes()),
            auth: URL_SAFE_NO_PAD.encode(auth),
            path: path.clone(),
        };
        self.devices.lock().unwrap().insert(
            path,
            Registered {
                secret,
                auth,
                answers: VecDeque::new(),
                otherwise: 201,
                received: Vec::new(),
            },
        );
        device
    }

    /// The device answers `first` in turn, then `otherwise` for ever.
    pub fn answer(&self, device: &Device, first: &[u16], otherwise: u16) {
        let mut devices = self.devices.lock().unwrap();
        let registered = devices.get_mut(&device.path).unwrap();
        registered.answers = first.iter().copied().collect();
        registered.otherwise = otherwise;
    }

    pub fn received(&self, device: &Device) -> Vec<Received> {
        self.devices.lock().unwrap()[&device.path].received.clone()
    }

    /// Waits up to `within` for the device to have received `count` pushes; returns what it has.
    pub async fn wait_for(&self, device: &Device, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received(device);
            if received.len() >= count || Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    request: Request<hyper::body::Incoming>,
    devices: &Mutex<BTreeMap<String, Registered>>,
    origin: &str,
    vapid_key: &str,
) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let path = request.uri().path().to_owned();
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let method = request.method().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut devices = devices.lock().unwrap();
    let Some(device) = devices.get_mut(&path) else {
        return status(404);
    };
    let mut problems = Vec::new();
    if method != hyper::Method::POST {
        problems.push(format!("method {method}"));
    }
    problems.extend(check_vapid(
        headers.get("authorization").map(String::as_str),
        origin,
        vapid_key,
    ));
    if headers.get("content-encoding").map(String::as_str) != Some("aes128gcm") {
        problems.push(format!("Content-Encoding {:?}", headers.get("content-encoding")));
    }
    if headers.get("ttl").is_none_or(|t| t.parse::<u64>().is_err()) {
        problems.push("no TTL".to_owned());
    }
    let payload = match web_push_native::decrypt(
        body.to_vec(),
        &device.secret,
        &web_push_native::Auth::clone_from_slice(&device.auth),
    ) {
        Ok(plain) => serde_json::from_slice(&plain).unwrap_or(Value::Null),
        Err(e) => {
            problems.push(format!("the body does not decrypt: {e}"));
            Value::Null
        }
    };
    let answer = if problems.is_empty() {
        device.answers.pop_front().unwrap_or(device.otherwise)
    } else {
        // What a push service answers a request it cannot authenticate.
        403
    };
    device.received.push(Received {
        at,
        payload,
        headers,
        problems,
        status: answer,
    });
    status(answer)
}

/// RFC 8292: `vapid t=<JWT>, k=<key>`.
fn check_vapid(authorization: Option<&str>, origin: &str, vapid_key: &str) -> Vec<String> {
    let Some((token, key)) = authorization
        .and_then(|a| a.strip_prefix("vapid t="))
        .and_then(|rest| rest.split_once(", k="))
    else {
        return vec![format!("Authorization {authorization:?} is not `vapid t=.., k=..`")];
    };
    let mut problems = Vec::new();
    if key != vapid_key {
        problems.push("k is not the server's VAPID key".to_owned());
    }
    let Ok(point) = URL_SAFE_NO_PAD.decode(key) else {
        return vec!["k is not base64url".to_owned()];
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    match jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_ec_der(&point), &validation) {
        Ok(data) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            let exp = data.claims["exp"].as_u64().unwrap_or(0);
            if exp > now + 24 * 3600 {
                problems.push(format!("exp is {} s ahead, over 24 h", exp - now));
            }
            if !data.claims["sub"]
                .as_str()
                .is_some_and(|s| s.starts_with("mailto:") || s.starts_with("https:"))
            {
                problems.push(format!("sub {} is not a mailto: or https: URL", data.claims["sub"]));
            }
        }
        Err(e) => problems.push(format!("the VAPID JWT does not verify: {e}")),
    }
    problems
}

fn status(code: u16) -> Response<Full<Bytes>> {
    Response::builder().status(code).body(Full::new(Bytes::new())).unwrap()
}
