//! Generates the table from function name to entry point out of `functions/<name>/src/main.rs`, so
//! the combined binary runs exactly the code each deployed binary runs and cannot fall out of step
//! with them: a function added, removed or changed there is here at the next build.
//!
//! Each function's `main` is one expression awaiting its entry point (for example
//! `parley::http::serve(parley::api::messages::send).await`); that expression becomes the arm.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let functions = Path::new(&manifest).join("../../functions");
    println!("cargo:rerun-if-changed={}", functions.display());

    let mut entries: Vec<(String, String)> = std::fs::read_dir(&functions)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", functions.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|dir| dir.join("src/main.rs").is_file())
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let main = dir.join("src/main.rs");
            let source = std::fs::read_to_string(&main).unwrap_or_else(|e| panic!("{}: {e}", main.display()));
            let body = main_body(&source).unwrap_or_else(|| {
                panic!(
                    "{}: expected `async fn main() -> Result<(), parley::http::LambdaError> {{ <entry>.await }}`, \
                     the shape every function has; the combined local binary reads it",
                    main.display()
                )
            });
            (name, body)
        })
        .collect();
    entries.sort();

    let mut generated = String::from(
        "/// Runs the named function's entry point, or returns `None` for a name no function has.\n\
         pub async fn run(function: &str) -> Option<Result<(), parley::http::LambdaError>> {\n\
         \x20   Some(match function {\n",
    );
    for (name, body) in &entries {
        writeln!(generated, "        {name:?} => {body},").unwrap();
    }
    generated.push_str("        _ => return None,\n    })\n}\n\n/// Every function's name, sorted.\npub const FUNCTIONS: &[&str] = &[\n");
    for (name, _) in &entries {
        writeln!(generated, "    {name:?},").unwrap();
    }
    generated.push_str("];\n");

    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("entries.rs");
    std::fs::write(&out, generated).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

/// The single expression of `fn main`'s body, comments and blank lines removed.
fn main_body(source: &str) -> Option<String> {
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
