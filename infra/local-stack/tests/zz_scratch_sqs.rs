use std::path::PathBuf;
use std::time::Duration;
use local_stack::{LocalStack, Options};

#[tokio::test]
async fn scratch() {
    let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/template.yaml");
    let mut options = Options::for_tests(template);
    options.parameters.insert("FixtureSecret".into(), "s3cret".into());
    options.queue_visibility_timeout = Some(Duration::from_secs(1));
    let stack = LocalStack::start(options).await.unwrap();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("l", "l", None, None, "t"))
        .endpoint_url(stack.sqs_url())
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(config);
    let q = stack.queue_url("WorkQueue").unwrap();
    let t0 = std::time::Instant::now();
    sqs.send_message().queue_url(&q).message_body("ok-1").send().await.unwrap();
    sqs.send_message().queue_url(&q).message_body("fail-item-1").send().await.unwrap();
    sqs.send_message().queue_url(&q).message_body("error-1").send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for l in stack.logs() { println!("{:>26} | {}", l.instance, l.text); }
    println!("{:?}", t0.elapsed());
    stack.stop().await;
}
