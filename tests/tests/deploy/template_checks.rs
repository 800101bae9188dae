//! template.yaml passes `cfn-lint` and `sam validate --lint`, at the versions pinned in
//! infra/template-checks/requirements.txt (installed by `parley_tests::tools`).

use parley_tests::tools::{python_tools, run_tool as run, workspace};
use std::path::PathBuf;

fn linters() -> PathBuf {
    python_tools("template-checks")
}

#[test]
fn the_template_passes_cfn_lint_and_sam_validate() {
    let bin = linters();
    let (ok, output) = run(&bin.join("cfn-lint"), &["template.yaml"]);
    assert!(ok, "cfn-lint found problems:\n{output}");
    let (ok, output) = run(&bin.join("sam"), &["validate", "--lint", "--template", "template.yaml"]);
    assert!(
        ok && output.contains("is a valid SAM Template"),
        "sam validate --lint failed:\n{output}"
    );
}

#[test]
fn a_broken_template_fails_the_checks() {
    let bin = linters();
    let broken = std::env::temp_dir().join(format!("parley-broken-{}.yaml", std::process::id()));
    let template = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    std::fs::write(
        &broken,
        template.replace("BillingMode: PAY_PER_REQUEST", "BillingMode: WHENEVER"),
    )
    .unwrap();
    let (ok, output) = run(&bin.join("cfn-lint"), &[broken.to_str().unwrap()]);
    std::fs::remove_file(&broken).ok();
    assert!(
        !ok && output.contains("WHENEVER"),
        "cfn-lint accepted a bad billing mode:\n{output}"
    );
}

/// The `Fn::ForEach` of per-function log groups and alarms covers every function, with each one's
/// own name in it (so adding a function without adding it to the loop fails here).
#[test]
fn every_function_has_its_log_group_and_alarms() {
    use parley_template::{workspace_template_path, Template};
    use serde_yaml_ng::Value;
    let template = Template::load(&workspace_template_path()).unwrap();
    let sub_text = |value: &Value| match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str().map(str::to_owned),
        _ => None,
    };
    let mut missing = Vec::new();
    for function in template.functions().unwrap() {
        let id = &function.logical_id;
        let log_group = template.resource(&format!("{id}LogGroup"));
        let log_group_name = log_group.and_then(|r| sub_text(&r["Properties"]["LogGroupName"]));
        if log_group_name.as_deref() != Some(&format!("/aws/lambda/${{{id}}}")) {
            missing.push(format!("{id}LogGroup (LogGroupName {log_group_name:?})"));
        }
        for (suffix, metric) in [("ErrorsAlarm", "Errors"), ("ThrottlesAlarm", "Throttles")] {
            let alarm = template.resource(&format!("{id}{suffix}"));
            let measured = alarm.map(|a| {
                (
                    a["Properties"]["MetricName"].as_str().map(str::to_owned),
                    sub_text(&a["Properties"]["Dimensions"][0]["Value"]),
                )
            });
            if measured != Some((Some(metric.to_owned()), Some(format!("${{{id}}}")))) {
                missing.push(format!("{id}{suffix} ({measured:?})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "functions without their log group or alarms:\n{}",
        missing.join("\n")
    );
}

/// The local stack's template reader expands `Fn::ForEach` to the same resources as SAM CLI's own
/// implementation of the AWS::LanguageExtensions transform (the one `sam build` and `sam validate` use).
#[test]
fn the_local_reader_expands_loops_as_sam_does() {
    use parley_template::{workspace_template_path, Template};
    let bin = linters();
    let script = "import json, sys\n\
from samcli.lib.cfn_language_extensions.api import process_template\n\
from samcli.yamlhelper import yaml_parse\n\
resources = process_template(yaml_parse(open('template.yaml').read()))['Resources']\n\
print(json.dumps({k: v.get('Type') for k, v in resources.items()}))\n";
    let (ok, output) = run(&bin.join("python"), &["-c", script]);
    assert!(ok, "SAM's expansion failed:\n{output}");
    let sam: std::collections::BTreeMap<String, String> = serde_json::from_str(output.trim()).unwrap();
    let template = Template::load(&workspace_template_path()).unwrap();
    let ours = template.resource_types();
    let differing: Vec<String> = ours
        .iter()
        .filter(|(id, kind)| sam.get(*id) != Some(*kind))
        .map(|(id, kind)| format!("ours: {id} {kind}; SAM's: {:?}", sam.get(id)))
        .chain(
            sam.iter()
                .filter(|(id, _)| !ours.contains_key(*id))
                .map(|(id, kind)| format!("only SAM's: {id} {kind}")),
        )
        .collect();
    assert!(
        differing.is_empty(),
        "the local reader and SAM expand template.yaml differently:\n{}",
        differing.join("\n")
    );
}

/// The failed checks of checkov (pinned in infra/iac-scan/requirements.txt) on `template` that
/// infra/iac-scan/baseline.yaml does not list, and the baseline's entries that no longer fail.
fn checkov_against_the_baseline(template: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let checkov = python_tools("iac-scan").join("checkov");
    let output = std::process::Command::new(&checkov)
        .args([
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "-f",
        ])
        .arg(template)
        .current_dir(workspace())
        .output()
        .expect("checkov");
    // checkov exits 1 when any check fails; its JSON report is the answer either way.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = stdout
        .find('{')
        .and_then(|start| serde_json::from_str(&stdout[start..]).ok())
        .unwrap_or_else(|| {
            panic!(
                "checkov gave no JSON report:\n{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(
        report["summary"]["parsing_errors"],
        0,
        "checkov could not parse {}",
        template.display()
    );
    let failed: Vec<(String, String)> = report["results"]["failed_checks"]
        .as_array()
        .expect("failed_checks")
        .iter()
        .map(|f| {
            (
                f["check_id"].as_str().unwrap().to_owned(),
                f["resource"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    let baseline: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(workspace().join("infra/iac-scan/baseline.yaml")).unwrap())
            .expect("baseline.yaml is YAML");
    let entries: Vec<(String, Vec<String>)> = baseline
        .as_sequence()
        .expect("baseline.yaml is a list")
        .iter()
        .map(|entry| {
            let reason = entry["reason"].as_str().unwrap_or_default();
            assert!(reason.len() > 80, "{entry:?}: every baseline entry needs its reason");
            let resources = entry["resources"]
                .as_sequence()
                .expect("resources")
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            (entry["check"].as_str().expect("check").to_owned(), resources)
        })
        .collect();
    let matches = |pattern: &str, resource: &str| match pattern.strip_suffix('*') {
        Some(prefix) => resource.starts_with(prefix),
        None => resource == pattern,
    };
    let listed = |check: &str, resource: &str| {
        entries
            .iter()
            .any(|(c, patterns)| c == check && patterns.iter().any(|p| matches(p, resource)))
    };
    let unlisted = failed
        .iter()
        .filter(|(check, resource)| !listed(check, resource))
        .map(|(check, resource)| format!("{check} on {resource}"))
        .collect();
    let stale = entries
        .iter()
        .flat_map(|(check, patterns)| patterns.iter().map(move |p| (check, p)))
        .filter(|(check, pattern)| !failed.iter().any(|(c, r)| c == *check && matches(pattern, r)))
        .map(|(check, pattern)| format!("{check} on {pattern}"))
        .collect();
    (unlisted, stale)
}

#[test]
fn checkov_fails_nothing_the_baseline_does_not_explain() {
    let (unlisted, stale) = checkov_against_the_baseline(&workspace().join("template.yaml"));
    assert!(
        unlisted.is_empty(),
        "checkov fails checks infra/iac-scan/baseline.yaml does not list (fix them, or list them with a reason):\n{}",
        unlisted.join("\n")
    );
    assert!(
        stale.is_empty(),
        "infra/iac-scan/baseline.yaml lists checks that now pass (remove them):\n{}",
        stale.join("\n")
    );
}

/// A finding the baseline does not list fails the check: a queue without its KMS key, and the
/// WebSocket stage without access logs.
#[test]
fn a_new_checkov_finding_is_reported() {
    let template = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    // The first queue loses its key; the WebSocket stage loses its AccessLogSettings (two lines).
    let mut weakened = template.replacen("      KmsMasterKeyId: alias/aws/sqs\n", "", 1);
    let settings = "      AccessLogSettings:\n        DestinationArn: !GetAtt WebSocketApiAccessLogs.Arn\n";
    let start = weakened
        .find(settings)
        .expect("the WebSocket stage's access log settings");
    let format_end = start + settings.len() + weakened[start + settings.len()..].find('\n').unwrap() + 1;
    weakened.replace_range(start..format_end, "");
    assert_ne!(weakened, template);
    let path = std::env::temp_dir().join(format!("parley-weakened-{}.yaml", std::process::id()));
    std::fs::write(&path, weakened).unwrap();
    let (unlisted, _) = checkov_against_the_baseline(&path);
    std::fs::remove_file(&path).ok();
    assert!(
        unlisted.iter().any(|f| f.starts_with("CKV_AWS_27 on AWS::SQS::Queue."))
            && unlisted
                .iter()
                .any(|f| f == "CKV_AWS_95 on AWS::ApiGatewayV2::Stage.WebSocketStage"),
        "checkov did not report the weakened queue and stage: {unlisted:?}"
    );
}

/// Every function has its reserved concurrency (template.yaml `ReservedConcurrency=budget`), and
/// together they leave Lambda's minimum of 100 unreserved in an account with the default quota of
/// 1,000; the send functions' reservation holds the provisioned concurrency's ceiling.
#[test]
fn reserved_concurrency_budgets_fit_the_default_account_quota() {
    use parley_template::{workspace_template_path, Template};
    let template = Template::load(&workspace_template_path()).unwrap();
    let budget = std::collections::BTreeMap::new();
    let none = std::collections::BTreeMap::from([("ReservedConcurrency".to_owned(), "none".to_owned())]);
    let mut total = 0;
    for function in template.functions().unwrap() {
        let id = &function.logical_id;
        let reserved = template.reserved_concurrency(id, &budget).unwrap();
        let reserved = reserved.unwrap_or_else(|| panic!("{id} has no reserved concurrency"));
        assert!(reserved >= 5, "{id}: {reserved} is under the floor of 5");
        assert_eq!(
            template.reserved_concurrency(id, &none).unwrap(),
            None,
            "{id} with ReservedConcurrency=none"
        );
        total += reserved;
    }
    assert!(
        total <= 900,
        "the functions reserve {total} of a default quota of 1,000 (at most 900)"
    );
    let text = std::fs::read_to_string(workspace_template_path()).unwrap();
    let raw: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let provisioned_ceiling = raw["Parameters"]["ProvisionedConcurrencyMax"]["MaxValue"]
        .as_u64()
        .expect("ProvisionedConcurrencyMax has a MaxValue");
    let provisioned_ceiling = Some(provisioned_ceiling);
    for id in ["MessagesSendFunction", "WsSendMessageFunction"] {
        assert!(
            template.reserved_concurrency(id, &budget).unwrap() >= provisioned_ceiling,
            "{id}"
        );
    }
}
