//! The gateway over real sockets, with the fixture functions of tests/fixtures/template.yaml.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use local_stack::{LocalStack, Options};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn fixture_template() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/template.yaml")
}

fn options() -> Options {
    let mut options = Options::for_tests(fixture_template());
    options.parameters.insert("FixtureSecret".into(), "s3cret".into());
    options
}

async fn start() -> LocalStack {
    LocalStack::start(options()).await.expect("the fixture stack starts")
}

async fn get_json(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn http_events_carry_path_query_headers_and_cookies() {
    let stack = start().await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!(
            "{}/items/abc%20d?x=1&x=2&y=hello+world&z=%2C",
            stack.http_url()
        ))
        .header("cookie", "a=1; b=2")
        .header("X-Custom-Header", "Value")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
    assert_eq!(headers.get_all("x-multi").iter().count(), 2);
    assert!(headers.contains_key("apigw-requestid"));
    let body: Value = response.json().await.unwrap();
    let event = &body["event"];
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "GET /items/{itemId}");
    assert_eq!(event["rawPath"], "/items/abc%20d");
    assert_eq!(event["rawQueryString"], "x=1&x=2&y=hello+world&z=%2C");
    assert_eq!(event["pathParameters"], json!({ "itemId": "abc d" }));
    assert_eq!(
        event["queryStringParameters"],
        json!({ "x": "1,2", "y": "hello world", "z": "," })
    );
    assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(
        event["headers"]["x-custom-header"], "Value",
        "header names are lower-cased"
    );
    assert!(event["headers"].get("cookie").is_none(), "cookies travel in `cookies`");
    let context = &event["requestContext"];
    assert_eq!(context["http"]["method"], "GET");
    assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(context["routeKey"], "GET /items/{itemId}");
    assert_eq!(context["stage"], "$default");
    assert!(context["requestId"].as_str().unwrap().len() >= 10);
    assert!(context["time"].as_str().unwrap().ends_with("+0000"));
    assert!(context["timeEpoch"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(body["deadline"].as_u64().unwrap() > context["timeEpoch"].as_u64().unwrap());
    assert!(body["functionArn"]
        .as_str()
        .unwrap()
        .ends_with(":function:EchoFunction"));
    assert_eq!(body["env"]["secret"], "s3cret", "a parameter given to the stack");
    assert_eq!(
        body["env"]["sub"], "us-east-1/vanilla",
        "!Sub with a pseudo parameter and a default"
    );
    assert_eq!(body["env"]["flavour"], "vanilla", "Globals apply");
    stack.stop().await;
}

#[tokio::test]
async fn routes_match_as_api_gateway_matches_them() {
    let stack = start().await;
    let url = stack.http_url();
    let (_, _, exact) = get_json(&format!("{url}/items/special")).await;
    assert_eq!(
        exact["event"]["routeKey"], "GET /items/special",
        "a literal path beats a parameter"
    );

    let response = reqwest::Client::new()
        .delete(format!("{url}/files/a/b/c.txt"))
        .send()
        .await
        .unwrap();
    let greedy: Value = response.json().await.unwrap();
    assert_eq!(greedy["event"]["routeKey"], "ANY /files/{proxy+}");
    assert_eq!(greedy["event"]["pathParameters"]["proxy"], "a/b/c.txt");

    for (method, path) in [
        ("GET", "/nowhere"),
        ("POST", "/items/x"),
        ("GET", "/files"),
        ("GET", "/"),
    ] {
        let response = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "message": "Not Found" })
        );
    }
    let mut routes = stack.http_routes();
    routes.sort();
    assert_eq!(
        routes,
        [
            "ANY /files/{proxy+}",
            "GET /binary",
            "GET /garbage",
            "GET /items/special",
            "GET /items/{itemId}",
            "GET /noop",
            "GET /panic",
            "GET /private",
            "GET /sleep",
            "GET /slow",
            "POST /echo"
        ],
        "exactly the template's routes"
    );
    stack.stop().await;
}

#[tokio::test]
async fn binary_bodies_travel_base64_both_ways() {
    let stack = start().await;
    let client = reqwest::Client::new();
    let bytes = vec![0u8, 159, 146, 150, 255];
    let response = client
        .post(format!("{}/echo", stack.http_url()))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["event"]["isBase64Encoded"], true);
    assert_eq!(body["event"]["body"], "AJ+Slv8=");

    let text = client
        .post(format!("{}/echo", stack.http_url()))
        .header("content-type", "application/json")
        .body(r#"{"hello":"wörld"}"#)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(text["event"]["isBase64Encoded"], false);
    assert_eq!(text["event"]["body"], r#"{"hello":"wörld"}"#);

    let binary = client.get(format!("{}/binary", stack.http_url())).send().await.unwrap();
    assert_eq!(binary.headers()["content-type"], "application/octet-stream");
    assert_eq!(binary.bytes().await.unwrap().to_vec(), vec![0u8, 1, 2, 255]);
    stack.stop().await;
}

#[tokio::test]
async fn warm_instances_are_reused_and_concurrency_starts_more() {
    let stack = start().await;
    let url = format!("{}/slow", stack.http_url());
    let (_, first, _) = get_json(&url).await;
    let (_, second, _) = get_json(&url).await;
    assert_eq!(
        first["x-instance"], second["x-instance"],
        "one warm instance serves requests in turn"
    );
    assert_eq!(stack.stats("EchoFunction").unwrap().cold_starts, 1);

    let slow = format!("{url}?sleepMs=400");
    let (a, b, c) = tokio::join!(get_json(&slow), get_json(&slow), get_json(&slow));
    let pids: BTreeSet<String> = [a, b, c]
        .iter()
        .map(|(status, headers, _)| {
            assert_eq!(*status, 200);
            headers["x-instance"].to_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(pids.len(), 3, "concurrent requests each get an instance: {pids:?}");
    let stats = stack.stats("EchoFunction").unwrap();
    assert_eq!(stats.cold_starts, 3);
    assert_eq!(stats.invocations, 5);
    assert_eq!(stats.init_micros.len(), 3);
    assert!(stack
        .logs()
        .iter()
        .any(|l| l.source == "fixture-echo" && l.text.contains("\"message\":\"echo\"")));
    assert!(stack
        .logs()
        .iter()
        .any(|l| l.source == "gateway" && l.text.contains("cold start")));
    stack.stop().await;
}

#[tokio::test]
async fn panics_timeouts_crashes_and_garbage_are_502_and_the_gateway_keeps_serving() {
    let stack = start().await;
    let url = stack.http_url();
    let internal = json!({ "message": "Internal Server Error" });

    for _ in 0..2 {
        let (status, _, body) = get_json(&format!("{url}/panic")).await;
        assert_eq!((status, body), (502, internal.clone()));
    }
    assert_eq!(
        stack.stats("fixture-panic").unwrap().cold_starts,
        1,
        "a caught panic keeps the instance"
    );

    let (status, _, _) = get_json(&format!("{url}/panic?abort=1")).await;
    assert_eq!(status, 502);
    let (status, _, _) = get_json(&format!("{url}/panic")).await;
    assert_eq!(status, 502);
    assert_eq!(
        stack.stats("fixture-panic").unwrap().cold_starts,
        2,
        "a crashed instance is replaced"
    );

    let started = std::time::Instant::now();
    let (status, _, body) = get_json(&format!("{url}/sleep")).await;
    assert_eq!((status, body), (502, internal.clone()));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 1 s timeout is enforced"
    );
    let (status, _, _) = get_json(&format!("{url}/sleep")).await;
    assert_eq!(status, 502);
    assert_eq!(
        stack.stats("fixture-sleep").unwrap().cold_starts,
        2,
        "a timed-out instance is stopped"
    );

    let (status, _, body) = get_json(&format!("{url}/garbage")).await;
    assert_eq!((status, body), (502, internal));

    let (status, _, _) = get_json(&format!("{url}/items/still-here")).await;
    assert_eq!(status, 200, "other routes are unaffected");
    stack.stop().await;
}

async fn connect(stack: &LocalStack, query: &str) -> Result<WebSocket, u16> {
    let request = format!("{}/?{query}", stack.ws_url()).into_client_request().unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

type WebSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(socket: &mut WebSocket) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return text.to_string(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

async fn next_close_code(socket: &mut WebSocket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test]
async fn websocket_connect_runs_the_authorizer_and_refusals_are_http_errors() {
    let stack = start().await;
    assert_eq!(connect(&stack, "").await.err(), Some(401), "no token");
    assert_eq!(
        connect(&stack, "token=wrong").await.err(),
        Some(401),
        "the authorizer says Unauthorized"
    );
    assert_eq!(
        connect(&stack, "token=deny").await.err(),
        Some(403),
        "the policy denies"
    );
    assert_eq!(
        connect(&stack, "token=good&refuse=1").await.err(),
        Some(403),
        "$connect answers 403"
    );
    let socket = connect(&stack, "token=good-alice").await;
    assert!(socket.is_ok());
    stack.stop().await;
}

#[tokio::test]
async fn frames_are_routed_by_the_selection_expression() {
    let stack = start().await;
    let mut socket = connect(&stack, "token=good-alice").await.unwrap();

    socket.send(Message::text(r#"{"action":"echo","n":1}"#)).await.unwrap();
    let echoed: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(echoed["route"], "echo");
    assert_eq!(echoed["body"], r#"{"action":"echo","n":1}"#);
    assert_eq!(
        echoed["authorizer"]["userId"], "good-alice",
        "the authorizer's context reaches the routes"
    );
    assert_eq!(echoed["authorizer"]["principalId"], "good-alice");
    assert!(echoed["connectedAt"].as_u64().unwrap() <= echoed["requestTimeEpoch"].as_u64().unwrap());

    for frame in [
        "this is not JSON",
        r#"{"no":"action"}"#,
        r#"{"action":"unknown"}"#,
        r#"{"action":"$connect"}"#,
    ] {
        socket.send(Message::text(frame)).await.unwrap();
        let answer: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
        assert_eq!(answer["route"], "$default", "{frame}");
        assert_eq!(answer["body"], frame);
    }

    // A one-way route sends nothing back: the next frame the client sees answers the echo after it.
    socket.send(Message::text(r#"{"action":"silent"}"#)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    socket.send(Message::text(r#"{"action":"echo","n":2}"#)).await.unwrap();
    let after: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(after["body"], r#"{"action":"echo","n":2}"#);

    // A function reaches the connection through @connections.
    socket.send(Message::text(r#"{"action":"postback"}"#)).await.unwrap();
    assert_eq!(next_text(&mut socket).await, "pushed");

    // Over 128 KB: closed with 1009.
    let big = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(130 * 1024));
    socket.send(Message::text(big)).await.unwrap();
    assert_eq!(next_close_code(&mut socket).await, Some(1009));
    stack.stop().await;
}

/// Waits (up to 10 s) for the gateway's log to show `$disconnect` invoked for connection `id`.
async fn disconnect_ran(stack: &LocalStack, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !stack
        .logs()
        .iter()
        .any(|l| l.text.contains("$disconnect") && l.text.contains(id))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "$disconnect was not invoked for {id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `text` as one message in data frames of `fragment` bytes (a browser sends one frame a message; other
/// clients split long ones, which API Gateway's 32 KiB frame limit needs).
async fn send_fragmented(socket: &mut WebSocket, text: &str, fragment: usize) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(fragment).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let last = i + 1 == chunks.len();
        let frame = Frame::message(chunk.to_vec(), OpCode::Data(opcode), last);
        socket.send(Message::Frame(frame)).await.unwrap();
    }
}

#[tokio::test]
async fn frames_over_32_kib_and_messages_over_128_kib_close_with_1009() {
    let stack = start().await;

    // 100 KiB in frames of 16 KiB: one message, routed.
    let mut socket = connect(&stack, "token=good-alice").await.unwrap();
    let long = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(100 * 1024));
    send_fragmented(&mut socket, &long, 16 * 1024).await;
    let echoed: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(echoed["body"].as_str().map(str::len), Some(long.len()));

    // The same 100 KiB in one frame: over the frame limit.
    socket.send(Message::text(long.clone())).await.unwrap();
    assert_eq!(next_close_code(&mut socket).await, Some(1009));

    // Just over 32 KiB in one frame, on a new connection.
    let mut socket = connect(&stack, "token=good-bob").await.unwrap();
    let over_frame = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(32 * 1024));
    socket.send(Message::text(over_frame)).await.unwrap();
    assert_eq!(next_close_code(&mut socket).await, Some(1009));

    // 160 KiB in frames of 16 KiB: every frame is allowed, the message is not.
    let mut socket = connect(&stack, "token=good-carol").await.unwrap();
    let too_long = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(160 * 1024));
    send_fragmented(&mut socket, &too_long, 16 * 1024).await;
    assert_eq!(next_close_code(&mut socket).await, Some(1009));
    stack.stop().await;
}

#[tokio::test]
async fn every_connection_is_closed_at_its_maximum_duration_and_disconnect_runs() {
    let mut options = options();
    options.limits.max_connection_duration = Duration::from_millis(1500);
    let stack = LocalStack::start(options).await.unwrap();
    let mut socket = connect(&stack, "token=good-erin").await.unwrap();
    let opened = std::time::Instant::now();
    // Busy all along (so not an idle close): a frame every 200 ms until the gateway closes it.
    let id = loop {
        socket.send(Message::text(r#"{"action":"echo"}"#)).await.unwrap();
        let echoed: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
        if opened.elapsed() > Duration::from_millis(600) {
            break echoed["connectionId"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let code = loop {
        let _ = socket.send(Message::text(r#"{"action":"silent"}"#)).await;
        match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) | Err(_) => assert!(opened.elapsed() < Duration::from_secs(10), "never closed"),
            Ok(Some(Err(_)) | None) => break None,
        }
    };
    assert_eq!(code, Some(1001), "closed as Going Away");
    assert!(opened.elapsed() >= Duration::from_millis(1400), "not before its time");
    disconnect_ran(&stack, &id).await;
    stack.stop().await;
}

#[tokio::test]
async fn the_connections_api_posts_describes_and_closes() {
    let stack = start().await;
    let mut socket = connect(&stack, "token=good-bob").await.unwrap();
    socket.send(Message::text(r#"{"action":"echo"}"#)).await.unwrap();
    let echoed: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    let id = echoed["connectionId"].as_str().unwrap().to_owned();
    let url = format!("{}/{}", stack.connections_url(), id.replace('=', "%3D"));
    let client = reqwest::Client::new();

    let posted = client.post(&url).body(r#"{"type":"hello"}"#).send().await.unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(next_text(&mut socket).await, r#"{"type":"hello"}"#);

    let info: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(info["ConnectedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(info["Identity"]["SourceIp"], "127.0.0.1");
    assert!(info["LastActiveAt"].is_string());

    let deleted = client.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(next_close_code(&mut socket).await, Some(1000));

    // The disconnect ran, and the connection is gone.
    disconnect_ran(&stack, &id).await;
    for response in [
        client.post(&url).body("late").send().await.unwrap(),
        client.get(&url).send().await.unwrap(),
        client.delete(&url).send().await.unwrap(),
        client
            .post(format!("{}/unknown%3D", stack.connections_url()))
            .body("x")
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 410);
        assert_eq!(response.headers()["x-amzn-errortype"], "GoneException");
    }
    assert_eq!(stack.open_connections(), 0);
    stack.stop().await;
}

#[tokio::test]
async fn closing_runs_disconnect_and_idle_connections_are_closed() {
    let mut options = options();
    options.limits.idle_timeout = Duration::from_millis(600);
    let stack = LocalStack::start(options).await.unwrap();

    let mut closing = connect(&stack, "token=good-carol").await.unwrap();
    closing.send(Message::text(r#"{"action":"echo"}"#)).await.unwrap();
    let id = serde_json::from_str::<Value>(&next_text(&mut closing).await).unwrap()["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    closing.close(None).await.unwrap();
    disconnect_ran(&stack, &id).await;

    let mut idle = connect(&stack, "token=good-dan").await.unwrap();
    assert_eq!(
        next_close_code(&mut idle).await,
        Some(1001),
        "closed as Going Away when idle"
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_invalid_template_is_a_clear_error_naming_the_resource() {
    let dir = std::env::temp_dir().join(format!("parley-bad-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "Resources:\n  NoBinaryFunction:\n    Type: AWS::Serverless::Function\n    Properties: {}\n",
            "NoBinaryFunction",
        ),
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: { BuildProperties: { Binary: fixture-echo } }\n    Properties:\n      Environment: { Variables: { X: !Ref Missing } }\n",
            "Missing",
        ),
        (
            "Resources:\n  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties: { ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action }\n  R:\n    Type: AWS::ApiGatewayV2::Route\n    Properties: { ApiId: !Ref Api, RouteKey: x, Target: !Sub \"integrations/${Nope}\" }\n",
            "resource R",
        ),
        ("Resources: [unclosed", "YAML"),
    ];
    for (text, expected) in cases {
        let path = dir.join("template.yaml");
        std::fs::write(&path, text).unwrap();
        let mut options = Options::for_tests(path);
        options.build = false;
        options.profile = local_stack::Profile::Debug;
        let error = match LocalStack::start(options).await {
            Ok(_) => panic!("{text} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(expected), "{error:?} should name {expected}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut options = options();
    options.http_port = port;
    let error = LocalStack::start(options)
        .await
        .err()
        .expect("the port is taken")
        .to_string();
    assert!(
        error.contains(&port.to_string()) && error.contains("--http-port"),
        "{error}"
    );
}

#[tokio::test]
async fn routes_behind_a_lambda_authorizer_get_its_context_or_its_refusal() {
    let stack = start().await;
    let url = format!("{}/private", stack.http_url());
    let client = reqwest::Client::new();
    let without = client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401, "no identity header: refused without a call");
    assert_eq!(
        without.json::<Value>().await.unwrap(),
        json!({ "message": "Unauthorized" })
    );
    let denied = client
        .get(&url)
        .header("authorization", "Bearer nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.json::<Value>().await.unwrap(), json!({ "message": "Forbidden" }));
    let failed = client
        .get(&url)
        .header("authorization", "Bearer explode")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 500);

    let allowed = client
        .get(&url)
        .header("authorization", "Bearer good-zoe")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let body: Value = allowed.json().await.unwrap();
    let context = &body["event"]["requestContext"]["authorizer"]["lambda"];
    assert_eq!(context["user"], "good-zoe");
    assert!(context["routeArn"].as_str().unwrap().ends_with("/GET/private"));

    let (_, _, open) = get_json(&format!("{}/items/x", stack.http_url())).await;
    assert!(
        open["event"]["requestContext"].get("authorizer").is_none(),
        "routes without an authorizer have no context"
    );
    stack.stop().await;
}
