//! What the SQS test files share: the fixture stack, an aws-sdk-sqs client on its stand-in, and a
//! polling wait.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use local_stack::{LocalStack, Options};

/// A fixture stack; `visibility` overrides every queue's visibility timeout.
pub async fn start(visibility: Option<Duration>) -> LocalStack {
    let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/template.yaml");
    let mut options = Options::for_tests(template);
    options.parameters.insert("FixtureSecret".into(), "s3cret".into());
    options.queue_visibility_timeout = visibility;
    LocalStack::start(options).await.expect("the fixture stack starts")
}

pub fn client(stack: &LocalStack) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .endpoint_url(stack.sqs_url())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

pub fn url(stack: &LocalStack, queue: &str) -> String {
    stack.queue_url(queue).expect("a template queue")
}

pub async fn eventually<T: std::fmt::Debug>(what: &str, mut ask: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ask();
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: still {answer:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Writes `text` as a template in `dir` and checks that the stack refuses to start on it, with an error
/// naming every one of `expected`.
pub async fn assert_refused(dir: &Path, text: &str, expected: &[&str]) {
    let path = dir.join("template.yaml");
    std::fs::write(&path, text).unwrap();
    let mut options = Options::for_tests(path);
    options.build = false;
    let error = match LocalStack::start(options).await {
        Ok(_) => panic!("{text} was accepted"),
        Err(e) => e.to_string(),
    };
    for needle in expected {
        assert!(error.contains(needle), "{error:?} should say {needle}");
    }
}
