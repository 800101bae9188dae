//! Every function of `functions/` in one binary, for the local stack: `parley-functions <name>` runs
//! what `functions/<name>` runs. Linking 51 binaries took most of a first `cargo run -p local-stack`
//! and of a clean test run; this one link replaces them. `sam build`, the release profile and
//! deployment keep one binary per function (see BENCHMARKS.md for what the local run gives up).

include!(concat!(env!("OUT_DIR"), "/entries.rs"));

#[tokio::main]
async fn main() -> Result<(), parley::http::LambdaError> {
    let function = std::env::args().nth(1).unwrap_or_default();
    match run(&function).await {
        Some(result) => result,
        None => {
            eprintln!("usage: parley-functions <function>, one of: {}", FUNCTIONS.join(", "));
            std::process::exit(2);
        }
    }
}
