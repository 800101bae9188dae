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
