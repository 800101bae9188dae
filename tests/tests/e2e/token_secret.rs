//! The token secret end to end (issue 22): the functions read it from Secrets Manager, never from their
//! environment, and a rotation through Secrets Manager reaches them within `TokenSecretTtlSeconds`
//! without signing anybody out. Over real HTTP, on a stack of its own with a one-second TTL.

use std::sync::OnceLock;
use std::time::Duration;

use parley::auth::tokens::TokenKeys;
use parley_template::{workspace_template_path, Template};
use parley_tests::{start_stack, Stack, RATE_LIMITS_OFF};
use serde_json::{json, Value};

const NEW_SECRET: &str = "parley-e2e-rotated-secret-0123456789abcdef";
const TTL: Duration = Duration::from_secs(1);
const ACCESS_TTL: Duration = Duration::from_secs(900);

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let mut parameters = RATE_LIMITS_OFF.to_vec();
        parameters.push(("TokenSecretTtlSeconds", "1"));
        start_stack(&parameters)
    })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &ulid::Ulid::generate().to_string()[16..].to_lowercase())
}

async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    let endpoint = stack().with(|s| s.secretsmanager_url()).await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

fn signed_with(secret: &str, token: &str) -> bool {
    TokenKeys::new(secret.as_bytes(), ACCESS_TTL).verify(token).is_ok()
}

async fn me(token: &str) -> u16 {
    stack().call("GET", "/users/me", Some(token), None).await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_through_secrets_manager_reaches_the_functions_and_signs_nobody_out() {
    let old_secret = local_stack::LOCAL_TOKEN_SECRET;
    let username = unique("rot");
    let registered = stack()
        .call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "username": username, "password": "rotation e2e" })),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let before = registered.body["accessToken"].as_str().unwrap().to_owned();
    let refresh_before = registered.body["refreshToken"].as_str().unwrap().to_owned();
    assert!(signed_with(old_secret, &before), "signed with the stack's secret");
    assert_eq!(me(&before).await, 200);
    // Warm containers of both functions hold the old secret: what follows needs them to read it again.
    let login = |username: String| async move {
        stack()
            .call(
                "POST",
                "/auth/login",
                None,
                Some(json!({ "username": username, "password": "rotation e2e" })),
            )
            .await
    };
    let warm = login(username.clone()).await;
    assert_eq!(warm.status, 200, "{}", warm.body);
    assert!(signed_with(old_secret, warm.body["accessToken"].as_str().unwrap()));

    let cold_starts = || {
        ["AuthLoginFunction", "UsersMeGetFunction"].map(|f| stack().stats(f).expect("a template function").cold_starts)
    };
    let warmed = cold_starts();

    // The README's rotation: `previous` = the old current, `current` = a new one.
    let client = secrets_manager().await;
    let arn = stack()
        .with(|s| s.function_environment("UsersMeGetFunction"))
        .await
        .unwrap();
    let arn = arn
        .iter()
        .find(|(name, _)| name == "TOKEN_SECRET_ARN")
        .map(|(_, value)| value.clone())
        .expect("the functions are told which secret to read");
    let stored = client.get_secret_value().secret_id(&arn).send().await.unwrap();
    let stored: Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    assert_eq!(stored, json!({ "current": old_secret, "previous": "none" }));
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(json!({ "current": NEW_SECRET, "previous": old_secret }).to_string())
        .send()
        .await
        .unwrap();
    // Every container's copy is now older than its TTL: its next invocation reads the secret again.
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;

    assert_eq!(me(&before).await, 200, "a token signed before the rotation still works");
    let login = login(username.clone()).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let after = login.body["accessToken"].as_str().unwrap().to_owned();
    assert!(
        signed_with(NEW_SECRET, &after),
        "new tokens are signed with the new current secret"
    );
    assert!(
        !signed_with(old_secret, &after),
        "a function that still had only the old secret would refuse it"
    );
    assert_eq!(
        me(&after).await,
        200,
        "and verified by a container that started with the old one"
    );
    assert_eq!(
        cold_starts(),
        warmed,
        "the containers that started with the old secret answered: they read it again"
    );
    let refreshed = stack()
        .call(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({ "refreshToken": refresh_before })),
        )
        .await;
    assert_eq!(
        refreshed.status, 200,
        "a refresh token of the old secret: {}",
        refreshed.body
    );
    assert!(signed_with(NEW_SECRET, refreshed.body["accessToken"].as_str().unwrap()));

    // A token of neither secret is still refused.
    let forged = TokenKeys::new(b"some-other-secret-some-other-secret-xx", ACCESS_TTL)
        .issue("U1", "S1", std::time::SystemTime::now())
        .unwrap();
    assert_eq!(me(&forged).await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_function_environment_holds_the_secret() {
    let template = Template::load(&workspace_template_path()).unwrap();
    let functions = template.functions().unwrap();
    assert_eq!(functions.len(), 77);
    for function in &functions {
        for name in [
            "TOKEN_SECRET",
            "TOKEN_SECRET_PREVIOUS",
            "VAPID_SECRET",
            "VAPID_SECRET_PREVIOUS",
        ] {
            assert!(
                !function.environment.contains_key(name),
                "{} has {name} in its environment",
                function.logical_id
            );
        }
    }
    let secret = stack()
        .with(|s| s.secret_string("TokenSigningSecret"))
        .await
        .expect("the template's secret is served");
    let secret: Value = serde_json::from_str(&secret).unwrap();
    let current = secret["current"].as_str().unwrap().to_owned();
    for function in functions {
        let id = function.logical_id.clone();
        let environment = stack()
            .with(move |s| s.function_environment(&id))
            .await
            .unwrap_or_else(|| panic!("{} runs", function.logical_id));
        for (name, value) in &environment {
            assert!(
                !value.contains(&current) && !value.contains(local_stack::LOCAL_TOKEN_SECRET),
                "{}: {name} holds the token secret",
                function.logical_id
            );
        }
        let arn = environment.iter().find(|(name, _)| name == "TOKEN_SECRET_ARN");
        assert!(
            arn.is_some_and(|(_, arn)| arn.starts_with("arn:aws:secretsmanager:")),
            "{}: {arn:?}",
            function.logical_id
        );
    }
}
