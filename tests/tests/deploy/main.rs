//! What deployment rests on: template.yaml's checks (SAM, cfn-lint, checkov) and `sam build`'s
//! artifacts, each started and served by the local stack.

mod sam_build;
mod template_checks;
