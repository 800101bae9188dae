//! Reading a function crate's source: what build.rs generates the combined binary from.

/// The single expression of `fn main`'s body, comments and blank lines removed.
pub fn main_body(source: &str) -> Option<String> {
    let code: String = source
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .collect::<Vec<_>>()
        .join(" ");
    let signature = "async fn main() -> Result<(), parley::http::LambdaError> {";
    let start = code.find(signature)? + signature.len();
    let body = code[start..].trim().strip_suffix('}')?.trim();
    let well_formed = body.ends_with(".await") && !body.contains(['{', '}', ';']);
    well_formed.then(|| body.to_owned())
}

/// The lines of a manifest's `[dependencies]` table, sorted.
pub fn dependencies(manifest: &str) -> Vec<String> {
    let mut lines: Vec<String> = manifest
        .lines()
        .skip_while(|line| line.trim() != "[dependencies]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    lines.sort();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_of_a_function_main_is_its_entry_point() {
        let source = "//! `GET /health`\n#[tokio::main]\nasync fn main() -> Result<(), parley::http::LambdaError> {\n    // why\n    parley::http::serve(parley::api::health::get).await\n}\n";
        assert_eq!(
            main_body(source).as_deref(),
            Some("parley::http::serve(parley::api::health::get).await")
        );
    }

    #[test]
    fn a_main_that_does_more_than_await_one_entry_point_is_refused() {
        for source in [
            "async fn main() -> Result<(), parley::http::LambdaError> {\n    setup();\n    serve().await\n}\n",
            "async fn main() -> Result<(), parley::http::LambdaError> {\n    if x { serve().await } else { other().await }\n}\n",
            "async fn main() -> Result<(), parley::http::LambdaError> {\n    serve()\n}\n",
            "fn main() {\n    serve();\n}\n",
        ] {
            assert_eq!(main_body(source), None, "{source}");
        }
    }

    #[test]
    fn dependencies_are_the_lines_of_the_dependencies_table_only() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\n# a comment\ntokio.workspace = true\nparley-shared.workspace = true\n\n[[bin]]\nname = \"x\"\n";
        assert_eq!(
            dependencies(manifest),
            ["parley-shared.workspace = true", "tokio.workspace = true"]
        );
        let extra = "[dependencies]\nparley-shared.workspace = true\ntokio.workspace = true\nserde = \"1\"\n";
        assert_eq!(dependencies(extra).len(), 3);
    }
}
