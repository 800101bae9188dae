//! The repository explains itself (issue 23): nothing in it sends a reader to the two design documents
//! that used to live beside it, outside the repository (the API contract and the design, once in
//! `../shared/`), and every relative link of its markdown documents leads to a file of the repository.
//! docs/ARCHITECTURE.md and docs/API-GUIDE.md took their place, with openapi.yaml and asyncapi.yaml.
//!
//! The files checked are the repository's as git sees them in the working tree: tracked ones, and new
//! ones that are not ignored (so a file is held to the rule before its first commit).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The names of the two outside documents, spelt in pieces so that this file does not name them.
const OUTSIDE_DOCUMENTS: [&str; 2] = [concat!("API", ".md"), concat!("DESIGN", ".md")];

/// The repository's own documents, which may tell the story of the outside ones.
const OWN_DOCS: &str = "docs/";

/// The repository's files (paths relative to its root, `/`-separated): `git ls-files` of the tracked
/// files and of the untracked ones that are not ignored.
fn repository_files() -> BTreeSet<String> {
    let output = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(workspace())
        .output()
        .expect("git runs (the check reads the repository's file list from it)");
    assert!(
        output.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|b| *b == 0)
        .filter(|path| !path.is_empty())
        .map(|path| String::from_utf8_lossy(path).into_owned())
        .collect()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether `line` names one of the outside documents: one of their file names, standing alone as a
/// name (not the end of a longer one such as `OPENAPI.md`, nor the start of one such as `API.mdx`)
/// and not a document of the repository's `docs/` folder.
fn names_an_outside_document(line: &[u8]) -> bool {
    OUTSIDE_DOCUMENTS.iter().any(|name| {
        let name = name.as_bytes();
        (0..line.len().saturating_sub(name.len() - 1))
            .filter(|&at| line[at..].starts_with(name))
            .any(|at| {
                let before = &line[..at];
                let after = line.get(at + name.len()).copied();
                let inside_a_name = before.last().is_some_and(|b| is_name_byte(*b));
                let continues = after.is_some_and(is_name_byte);
                !inside_a_name && !continues && !before.ends_with(OWN_DOCS.as_bytes())
            })
    })
}

/// Binary files are left out as git leaves them out of diffs: a NUL byte near the start.
fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8000)].contains(&0)
}

#[test]
fn no_file_refers_to_the_design_documents_outside_the_repository() {
    let root = workspace();
    let mut found = Vec::new();
    for path in repository_files() {
        if path.starts_with(OWN_DOCS) {
            continue;
        }
        // A tracked file deleted in the working tree refers to nothing any more.
        let Ok(bytes) = std::fs::read(root.join(&path)) else {
            continue;
        };
        if is_binary(&bytes) {
            continue;
        }
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if names_an_outside_document(line) {
                let text = String::from_utf8_lossy(line);
                let text: String = text.trim().chars().take(160).collect();
                found.push(format!("{path}:{}: {text}", index + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{} line(s) refer to the design documents that lived outside the repository ({}); point them at \
         the section of docs/ARCHITECTURE.md, docs/API-GUIDE.md, openapi.yaml or asyncapi.yaml that says \
         the same, and keep any rule they quoted:\n{}",
        found.len(),
        OUTSIDE_DOCUMENTS.join(", "),
        found.join("\n")
    );
}

/// `text` without its inline code spans (`` `...` ``), which hold examples rather than links.
fn without_code_spans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let fence = &rest[start..start + ticks];
        let after = &rest[start + ticks..];
        match after.find(fence) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The lines of a markdown document outside its fenced code blocks, with their numbers.
fn prose_lines(markdown: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(marker)) => fence = Some(marker),
            (Some(open), Some(marker)) if open == marker => fence = None,
            (None, None) => lines.push((index + 1, line)),
            _ => {}
        }
    }
    lines
}

/// The targets of a line's inline links and images (`[text](target "title")`) and of a reference
/// definition (`[label]: target`).
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some(end) = trimmed.find("]:") {
            let target = trimmed[end + 2..].split_whitespace().next().unwrap_or("");
            targets.push(target.trim_matches(|c| c == '<' || c == '>').to_owned());
            return targets;
        }
    }
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let target = if let Some(bracketed) = after.strip_prefix('<') {
            bracketed.split('>').next().unwrap_or("").to_owned()
        } else {
            // Up to the closing parenthesis (balanced) or the title.
            let mut depth = 0usize;
            let mut end = after.len();
            for (i, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = i;
                        break;
                    }
                    ')' => depth -= 1,
                    c if c.is_whitespace() => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            after[..end].to_owned()
        };
        targets.push(target);
        rest = after;
    }
    targets
}

/// GitHub's anchor of a heading: lowercase, only letters, digits, spaces, `-` and `_` kept, spaces made
/// `-` (`A message's path` is `a-messages-path`).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown document's headings (a repeated heading gets `-1`, `-2`, ... as on GitHub).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(markdown) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let count = seen.entry(base.clone()).or_default();
        let anchor = match *count {
            0 => base,
            n => format!("{base}-{n}"),
        };
        *count += 1;
        anchors.insert(anchor);
    }
    anchors
}

/// `path` (relative to the repository's root) with `.` and `..` resolved; `None` when it leaves the
/// repository.
fn normalized(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => parts.clear(),
        }
    }
    Some(parts.join("/"))
}

/// `%20` and the like, as a browser decodes a link.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What is wrong with the link `target` of the document `document` (a repository path), if anything.
fn broken_link(root: &Path, files: &BTreeSet<String>, document: &str, target: &str) -> Option<String> {
    let scheme = target
        .split_once(':')
        .is_some_and(|(s, _)| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)));
    if target.is_empty() || scheme {
        return None;
    }
    let (path, fragment) = match target.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (target, None),
    };
    let path = path.split('?').next().unwrap_or("");
    let resolved = if path.is_empty() {
        Some(document.to_owned())
    } else if let Some(from_root) = path.strip_prefix('/') {
        normalized(Path::new(&percent_decoded(from_root)))
    } else {
        let base = Path::new(document).parent().unwrap_or(Path::new(""));
        normalized(&base.join(percent_decoded(path)))
    };
    let Some(resolved) = resolved else {
        return Some("leads outside the repository".to_owned());
    };
    let is_file = files.contains(&resolved) && root.join(&resolved).is_file();
    let directory = format!("{resolved}/");
    let is_directory = resolved.is_empty() || files.iter().any(|f| f.starts_with(&directory));
    if !is_file && !is_directory {
        return Some(format!("{resolved} is no file of the repository"));
    }
    match fragment.filter(|f| !f.is_empty()) {
        Some(fragment) if is_file && resolved.ends_with(".md") => {
            let text = std::fs::read_to_string(root.join(&resolved)).unwrap_or_default();
            (!anchors(&text).contains(&percent_decoded(fragment)))
                .then(|| format!("{resolved} has no heading with the anchor #{fragment}"))
        }
        _ => None,
    }
}

#[test]
fn every_relative_link_of_the_markdown_documents_leads_to_a_file_of_the_repository() {
    let root = workspace();
    let files = repository_files();
    let documents: Vec<&String> = files
        .iter()
        .filter(|f| f.as_str() == "README.md" || (f.starts_with(OWN_DOCS) && f.ends_with(".md")))
        .collect();
    assert!(
        documents.iter().any(|d| d.as_str() == "docs/ARCHITECTURE.md")
            && documents.iter().any(|d| d.as_str() == "docs/API-GUIDE.md"),
        "the repository carries its architecture and API guides: {documents:?}"
    );
    let mut broken = Vec::new();
    for document in documents {
        let Ok(text) = std::fs::read_to_string(root.join(document)) else {
            continue;
        };
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if let Some(problem) = broken_link(&root, &files, document, &target) {
                    broken.push(format!("{document}:{number}: ({target}) {problem}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The two checks can fail: what they are given to tell apart.
#[test]
fn the_checks_tell_outside_documents_and_broken_links_from_good_ones() {
    let [api, design] = OUTSIDE_DOCUMENTS;
    for refers in [
        format!("see {api} \"Limits\""),
        format!("kept in `../shared/{design}`"),
        format!("{api}'s error body"),
        format!("({design}, \"Data\")"),
        api.to_owned(),
    ] {
        assert!(names_an_outside_document(refers.as_bytes()), "{refers}");
    }
    for fine in [
        "see docs/API-GUIDE.md \"Limits\"".to_owned(),
        "docs/ARCHITECTURE.md \"Data model: one DynamoDB table\"".to_owned(),
        "OPENAPI.md and MY-DESIGN.md are other documents".to_owned(),
        format!("docs/{api} would be the repository's own"),
        format!("{api}x is another name"),
    ] {
        assert!(!names_an_outside_document(fine.as_bytes()), "{fine}");
    }

    assert_eq!(slug("A message's path"), "a-messages-path");
    assert_eq!(slug("Data model: one DynamoDB table"), "data-model-one-dynamodb-table");
    assert_eq!(
        slug("Contracts: openapi.yaml and asyncapi.yaml"),
        "contracts-openapiyaml-and-asyncapiyaml"
    );
    assert_eq!(
        link_targets("See [the guide](docs/API-GUIDE.md#errors \"Errors\"), ![shot](web/a%20b.png) and `[x](y)`."),
        ["docs/API-GUIDE.md#errors", "web/a%20b.png"]
    );
    assert_eq!(link_targets("[ref]: <../README.md> \"title\""), ["../README.md"]);

    let root = workspace();
    let files = repository_files();
    let doc = "docs/ARCHITECTURE.md";
    for good in [
        "../README.md",
        "API-GUIDE.md#errors",
        "#guarantees",
        "../shared",
        "https://example.com/x",
    ] {
        assert_eq!(broken_link(&root, &files, doc, good), None, "{good}");
    }
    for bad in [
        "../NO-SUCH-FILE.md",
        "API-GUIDE.md#no-such-heading",
        "#no-such-heading",
        "../../shared/README.md",
        "../target",
    ] {
        assert!(broken_link(&root, &files, doc, bad).is_some(), "{bad}");
    }
}
