//! Generates the table from function name to entry point out of `functions/<name>/src/main.rs`, so
//! the combined binary runs exactly the code each deployed binary runs and cannot fall out of step
//! with them: a function added, removed or changed there is here at the next build.
//!
//! Each function's `main` is one expression awaiting its entry point (for example
//! `parley::http::serve(parley::api::messages::send).await`); that expression becomes the arm.
//!
//! A function whose crate had dependencies or features of its own would run differently here than
//! deployed (cargo unifies features across one binary), so every function crate must depend on
//! exactly what this crate does: `parley-shared` and `tokio` from the workspace. The build stops
//! otherwise.

#[path = "src/function_source.rs"]
mod function_source;

use std::fmt::Write as _;

use function_source::{dependencies, main_body};
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
            let manifest = dir.join("Cargo.toml");
            let manifest_text =
                std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            let dependencies = dependencies(&manifest_text);
            assert!(
                dependencies == ["parley-shared.workspace = true", "tokio.workspace = true"],
                "{}: a function crate depends on parley-shared and tokio from the workspace and nothing else \
                 (found {dependencies:?}); the combined local binary would otherwise run it with other code or features",
                manifest.display()
            );
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
