//! No module cycles in the workspace's Rust crates (issue 23): a crate's top-level modules (`src/<m>.rs`
//! or `src/<m>/`) must form a directed acyclic graph of `crate::` references, so each module can be read,
//! tested and moved into a crate of its own after the ones it uses.
//!
//! The graph is read from the source: every `crate::<m>` path (in `use` items, `crate::{a, b}` groups,
//! inline paths and attribute strings such as `serialize_with = "crate::m::f"`) outside comments is an
//! edge to module `<m>`; a name the crate root re-exports
//! (`pub use m::Name;` in lib.rs or main.rs) counts as an edge to the module it comes from.
//!
//! The shared crate still has cycles: splitting it into crates along its layers is the rest of issue 23.
//! They are listed in `KNOWN_CYCLES` exactly, so the check fails on a new cycle, on a cycle that grew,
//! and on one that was broken but is still listed (remove it from the list then).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles that exist today, each as the sorted set of its modules, by crate directory.
const KNOWN_CYCLES: &[(&str, &[&str])] = &[(
    "shared",
    &["auth", "batch_worker", "context", "domain", "push", "realtime"],
)];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's crates with a `src/` of more than one module (function crates are one `main.rs`).
fn crates() -> Vec<PathBuf> {
    let root = workspace();
    let mut dirs = vec![root.join("shared"), root.join("tests")];
    for entry in std::fs::read_dir(root.join("infra")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}

/// Source text without comments (line, block and doc comments) and without the contents of string
/// literals (plain, byte and raw), which may spell paths that are not references; a plain string that
/// is nothing but a `crate::` path (as serde's `serialize_with` takes) is kept, as it is one.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < source.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map(|end| end + 2).unwrap_or(rest.len());
        } else if let Some(hashes) = raw_string_hashes(rest) {
            let open = 2 + hashes;
            let close = format!("\"{}", "#".repeat(hashes));
            i += rest[open..]
                .find(&close)
                .map(|end| open + end + close.len())
                .unwrap_or(rest.len());
            out.push_str("\"\"");
        } else if rest.starts_with('"') && !source[..i].ends_with('\'') {
            let mut end = 1;
            while end < rest.len() && !rest[end..].starts_with('"') {
                end += if rest[end..].starts_with('\\') {
                    2
                } else {
                    rest[end..].chars().next().unwrap().len_utf8()
                };
            }
            // A string that is a path is one: serde's `serialize_with = "crate::m::f"` and the like.
            let content = &rest[1..end.min(rest.len())];
            let is_path = content.starts_with("crate::")
                && content
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            out.push('"');
            out.push_str(if is_path { content } else { "" });
            out.push('"');
            i += (end + 1).min(rest.len());
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `r##"`...: the number of hashes of a raw string literal starting here.
fn raw_string_hashes(text: &str) -> Option<usize> {
    let after_r = text.strip_prefix('r')?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    after_r[hashes..].starts_with('"').then_some(hashes)
}

fn identifier_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segments after each `crate::` (`crate::a::b` gives `a`; `crate::{a::x, b}` gives
/// `a` and `b`); `$crate::` (a macro's own crate) is skipped.
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c == '$' || c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The top-level items of the group, nested groups skipped.
            let mut depth = 0;
            let mut item_start = true;
            for (offset, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        names.insert(identifier_at(&group[offset..]).to_owned());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(identifier_at(rest).to_owned());
        }
    }
    names.remove("");
    names
}

/// The crate's top-level modules and the files of each; the root file (`lib.rs`/`main.rs`) is `None`.
fn modules(src: &Path) -> BTreeMap<Option<String>, Vec<PathBuf>> {
    let mut modules: BTreeMap<Option<String>, Vec<PathBuf>> = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
            let module = match first.strip_suffix(".rs") {
                Some("lib" | "main") => None,
                Some(stem) => Some(stem.to_owned()),
                None => Some(first.into_owned()),
            };
            modules.entry(module).or_default().push(path);
        }
    }
    modules
}

/// Names the root re-exports from a module: `pub use m::a::Name;` or `pub use m::{A, b::B};`.
fn root_reexports(root: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for item in root.split(';') {
        let Some(path) = item.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim().trim_start_matches("crate::").trim_start_matches("self::");
        let module = identifier_at(path).to_owned();
        let tail = &path[module.len()..];
        let exported: Vec<String> = match tail.find('{') {
            Some(open) => tail[open + 1..]
                .trim_end_matches('}')
                .split(',')
                .filter_map(|part| part.rsplit("::").next())
                .map(|name| name.split(" as ").last().unwrap().trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect(),
            None => vec![tail
                .rsplit("::")
                .next()
                .unwrap()
                .split(" as ")
                .last()
                .unwrap()
                .trim()
                .to_owned()],
        };
        for name in exported {
            names.insert(name, module.clone());
        }
    }
    names
}

/// Edges between a crate's top-level modules.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src);
    let root_code: String = modules
        .get(&None)
        .into_iter()
        .flatten()
        .map(|file| without_comments(&std::fs::read_to_string(file).unwrap()))
        .collect();
    let reexports = root_reexports(&root_code);
    let names: BTreeSet<&String> = modules.keys().flatten().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, files) in &modules {
        let Some(module) = module else { continue };
        let edges = graph.entry(module.clone()).or_default();
        for file in files {
            let code = without_comments(&std::fs::read_to_string(file).unwrap());
            for name in crate_references(&code) {
                let target = if names.contains(&name) {
                    Some(name)
                } else {
                    reexports.get(&name).cloned()
                };
                if let Some(target) = target.filter(|t| t != module) {
                    edges.insert(target);
                }
            }
        }
    }
    graph
}

/// Strongly connected components of more than one module (Tarjan's algorithm), each sorted.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: BTreeSet<Vec<String>>,
    }
    fn visit<'a>(walk: &mut Walk<'a>, node: &'a str) {
        let number = walk.index.len();
        walk.index.insert(node, number);
        walk.low.insert(node, number);
        walk.stack.push(node);
        for next in walk.graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !walk.index.contains_key(next) {
                visit(walk, next);
                let low = walk.low[node].min(walk.low[next]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&next) {
                let low = walk.low[node].min(walk.index[next]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let at = walk.stack.iter().rposition(|n| *n == node).unwrap();
            let mut component: Vec<String> = walk.stack.drain(at..).map(str::to_owned).collect();
            if component.len() > 1 {
                component.sort();
                walk.found.insert(component);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: BTreeSet::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

#[test]
fn the_workspace_crates_have_no_module_cycles_beyond_the_known_ones() {
    let mut problems = Vec::new();
    for dir in crates() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let found = cycles(&module_graph(&dir.join("src")));
        let known: BTreeSet<Vec<String>> = KNOWN_CYCLES
            .iter()
            .filter(|(crate_dir, _)| *crate_dir == name)
            .map(|(_, modules)| modules.iter().map(|m| (*m).to_owned()).collect())
            .collect();
        for cycle in found.difference(&known) {
            problems.push(format!("{name}: a module cycle: {}", cycle.join(" <-> ")));
        }
        for cycle in known.difference(&found) {
            problems.push(format!(
                "{name}: the known cycle {} is gone or changed: update KNOWN_CYCLES",
                cycle.join(" <-> ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reader_finds_references_and_cycles() {
    let code = without_comments(
        "use crate::a::X; // crate::commented\n/* crate::blocked */ fn f() { crate::b::g(); \
         let s = \"crate::in_string \\\" crate::escaped\"; let r = r#\"crate::raw\"#; }\n#[serde(with = \"crate::k::f\")]\nuse crate::{c::Y, d, e::{F, G}};\nmacro_rules! m { () => { $crate::h } }\n",
    );
    let found = crate_references(&code);
    assert_eq!(
        found,
        ["a", "b", "c", "d", "e", "k"].into_iter().map(str::to_owned).collect()
    );
    assert_eq!(
        root_reexports("pub use error::ApiError; pub use store::{Store, keys::Key as K}; mod x"),
        [("ApiError", "error"), ("Store", "store"), ("K", "store")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    );
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph.entry((*from).to_owned()).or_default().insert((*to).to_owned());
            graph.entry((*to).to_owned()).or_default();
        }
        graph
    };
    assert!(cycles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    assert_eq!(
        cycles(&graph(&[
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
            ("c", "d"),
            ("d", "e"),
            ("e", "d")
        ])),
        [vec!["a", "b", "c"], vec!["d", "e"]]
            .into_iter()
            .map(|c| c.into_iter().map(str::to_owned).collect())
            .collect()
    );
}
