//! Every type in the OpenAPI document has its own component name. utoipa names a component
//! after the Rust type (or its `#[schema(as = …)]`) and a second type of the same name silently
//! replaces the first, so clients would be generated against the wrong shape. Checked on the
//! workspace's source, where both types are visible.

#![allow(clippy::unwrap_used, reason = "test: a panic is the failure report")]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with("tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The component names a file declares: each `ToSchema` derive's type, or its `as =` name.
fn schema_names(src: &str) -> Vec<String> {
    let lines: Vec<&str> = src.lines().map(str::trim).collect();
    let mut names = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with("#[derive(") {
            continue;
        }
        // A derive list may span lines (rustfmt wraps long ones).
        let end = lines[i..]
            .iter()
            .position(|l| l.ends_with(")]"))
            .map_or(i, |n| i + n);
        if !lines[i..=end].iter().any(|l| l.contains("ToSchema")) {
            continue;
        }
        let mut alias = None;
        for next in &lines[end + 1..] {
            if let Some(at) = next.find("schema(as = ") {
                let rest = &next[at + "schema(as = ".len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                alias = path.rsplit("::").next().map(str::to_owned);
            }
            let decl = ["pub struct ", "pub enum ", "struct ", "enum "]
                .iter()
                .find_map(|k| next.strip_prefix(k));
            if let Some(rest) = decl {
                let ty: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push(alias.unwrap_or(ty));
                break;
            }
        }
    }
    names
}

#[test]
fn no_two_types_share_a_component_name() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rust_files(crates, &mut files);
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        for name in schema_names(&fs::read_to_string(f).unwrap()) {
            let shown = f.strip_prefix(crates).unwrap().display().to_string();
            seen.entry(name).or_default().push(shown);
        }
    }
    assert!(
        seen.len() > 100,
        "the scan found too few schemas: {}",
        seen.len()
    );
    let clashes: Vec<String> = seen
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(name, at)| format!("  {name}: {}", at.join(", ")))
        .collect();
    assert!(
        clashes.is_empty(),
        "OpenAPI component names used by more than one type (the document keeps only one):\n{}\n\
         Give all but one a distinct name with `#[schema(as = DomainName)]`.",
        clashes.join("\n")
    );
}

#[test]
fn the_scan_reads_derives_and_aliases() {
    let src = "#[derive(Serialize, ToSchema)]\n#[serde(rename_all = \"lowercase\")]\n\
               #[schema(as = AdviceSeverity)]\npub enum Severity {}\n\
               #[derive(Debug, ToSchema)]\n/// doc\nstruct Plain {}\n\
               #[derive(\n    Clone, utoipa::ToSchema,\n)]\npub enum Wrapped {}\n\
               #[derive(Debug)]\nstruct NotASchema;\n";
    assert_eq!(schema_names(src), ["AdviceSeverity", "Plain", "Wrapped"]);
}
