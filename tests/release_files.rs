//! The files a release is listed and installed by agree with each other and with
//! the binary: one version (Cargo.toml, `--version`, metadata.yaml, both
//! changelogs), the fields of Airbyte's metadata.yaml, the spec's
//! documentationUrl, a docs page that covers every config field, and a README
//! and docs that keep their shape and whose links lead somewhere.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The binary's stdout for `args`, which must succeed.
fn binary(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_destination-kinesis"))
        .args(args)
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 stdout")
}

/// metadata.yaml as `(path, value)` pairs: `data.name` for a scalar, `data.tags[]`
/// once per item of a list. Enough YAML for that file: two-space nesting,
/// `key: value`, `- item`, comments and quoted scalars.
fn metadata() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    for line in read("metadata.yaml").lines() {
        let text = line.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let indent = line.len() - text.len();
        path.retain(|(level, _)| *level < indent);
        let under = path
            .iter()
            .map(|(_, k)| k.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let unquote = |v: &str| v.trim().trim_matches('"').to_string();
        if let Some(item) = text.strip_prefix("- ") {
            pairs.push((format!("{under}[]"), unquote(item)));
        } else if let Some((key, value)) = text.split_once(':') {
            let full = if under.is_empty() {
                key.to_string()
            } else {
                format!("{under}.{key}")
            };
            if value.trim().is_empty() {
                path.push((indent, key.to_string()));
            } else {
                pairs.push((full, unquote(value)));
            }
        } else {
            panic!("metadata.yaml: cannot read `{line}`");
        }
    }
    pairs
}

fn meta(key: &str) -> String {
    let found: Vec<String> = metadata()
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "metadata.yaml has one {key}: {found:?}");
    found[0].clone()
}

/// A version's numbers, for comparing.
fn numbers(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|n| n.parse().unwrap_or_else(|_| panic!("version {version}")))
        .collect()
}

/// The SPEC message's `spec`.
fn spec() -> Value {
    let line = binary(&["spec"]);
    let message: Value = serde_json::from_str(line.trim()).expect("one SPEC message");
    message["spec"].clone()
}

const DOCS_PAGE: &str = "docs/integrations/destinations/kinesis.md";

#[test]
fn one_version_everywhere_above_the_java_connectors() {
    assert!(
        numbers(VERSION) > numbers("0.1.5"),
        "{VERSION} must be above the archived Java connector's 0.1.5"
    );
    assert_eq!(
        binary(&["--version"]),
        format!("destination-kinesis {VERSION}\n")
    );
    assert_eq!(meta("data.dockerImageTag"), VERSION);

    // CHANGELOG.md's newest entry is this version, with a date.
    let changelog = read("CHANGELOG.md");
    let newest = changelog
        .lines()
        .find(|l| l.starts_with("## "))
        .expect("CHANGELOG.md has entries");
    let (version, date) = newest[3..]
        .split_once(" — ")
        .unwrap_or_else(|| panic!("`## <version> — <date>`: {newest}"));
    assert_eq!(version, VERSION);
    assert!(is_date(date), "{newest}");

    // The docs page's changelog table starts with the same version and date.
    let page = read(DOCS_PAGE);
    let first_row = page
        .lines()
        .skip_while(|l| !l.starts_with("| Version |"))
        .nth(2)
        .expect("the docs page has a changelog table");
    let cells: Vec<&str> = first_row.split('|').map(str::trim).collect();
    assert_eq!(&cells[1..3], [VERSION, date], "{first_row}");
    assert!(!cells[3].is_empty(), "a subject: {first_row}");
}

/// `YYYY-MM-DD`.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 3
        && [4, 2, 2]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn metadata_has_the_fields_of_airbytes_connectors() {
    assert_eq!(meta("metadataSpecVersion"), "1.0");
    assert_eq!(
        meta("data.definitionId"),
        "6d1d66d4-26ab-4602-8d32-f85894b04955",
        "the archived Kinesis destination's"
    );
    assert_eq!(meta("data.dockerRepository"), "airbyte/destination-kinesis");
    assert_eq!(meta("data.connectorType"), "destination");
    assert_eq!(meta("data.connectorSubtype"), "api");
    assert_eq!(meta("data.name"), "Kinesis");
    assert_eq!(meta("data.githubIssueLabel"), "destination-kinesis");
    assert!(["alpha", "beta", "generally_available", "custom"]
        .contains(&meta("data.releaseStage").as_str()));
    assert!(["community", "certified", "archived"].contains(&meta("data.supportLevel").as_str()));
    let tags: Vec<String> = metadata()
        .into_iter()
        .filter(|(k, _)| k == "data.tags[]")
        .map(|(_, v)| v)
        .collect();
    assert!(tags.iter().any(|t| t == "language:rust"), "{tags:?}");

    // One license: Cargo.toml's, metadata.yaml's, the LICENSE file's.
    assert_eq!(meta("data.license"), env!("CARGO_PKG_LICENSE"));
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT");
    assert!(read("LICENSE").starts_with("MIT License"));

    // The icon is an SVG file beside metadata.yaml.
    let icon = read(&meta("data.icon"));
    assert!(icon.trim_start().starts_with("<svg"), "{icon}");
    assert!(icon.contains("viewBox=") && icon.trim_end().ends_with("</svg>"));

    // The spec links the page metadata.yaml links, and that page is in docs/.
    let url = meta("data.documentationUrl");
    assert_eq!(spec()["documentationUrl"], url.as_str());
    let path = url
        .strip_prefix("https://docs.airbyte.com/")
        .expect("a docs.airbyte.com page");
    assert_eq!(format!("docs/{path}.md"), DOCS_PAGE);
}

#[test]
fn the_docs_page_has_airbytes_sections_and_every_config_field() {
    let page = read(DOCS_PAGE);
    let headings: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("## "))
        .map(|l| &l[3..])
        .collect();
    for section in [
        "Overview",
        "Prerequisites",
        "Setup guide",
        "Supported sync modes",
        "Configuration",
        "Output schema",
        "IAM permissions",
        "Changelog",
    ] {
        assert!(
            headings.contains(&section),
            "no `## {section}`: {headings:?}"
        );
    }
    let spec = spec();
    let properties = spec["connectionSpecification"]["properties"]
        .as_object()
        .unwrap();
    for (name, field) in properties {
        let title = field["title"].as_str().unwrap();
        assert!(
            page.contains(&format!("| {title} | `{name}` |")),
            "the docs page's configuration table lacks {name} ({title})"
        );
    }
}

#[test]
fn the_readme_starts_where_a_user_starts() {
    let readme = read("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    assert!(lines.len() <= 400, "README.md: {} lines", lines.len());
    let quick = lines
        .iter()
        .position(|l| *l == "## Quick start")
        .expect("a Quick start heading");
    let block = lines[quick..]
        .iter()
        .position(|l| l.starts_with("```"))
        .map(|at| quick + at)
        .expect("a code block after it");
    assert!(
        block < 60,
        "the quick start's code block starts on line {}",
        block + 1
    );
    assert!(readme.contains("cargo install"));
    assert!(readme.contains("](docs/"), "the README links docs/");
    let benchmarks = read("BENCHMARKS.md").lines().count();
    assert!(benchmarks <= 250, "BENCHMARKS.md: {benchmarks} lines");
}

/// The Markdown files of the repository: the top level's and docs/'s.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut found: Vec<PathBuf> = ["README.md", "BENCHMARKS.md", "CHANGELOG.md"]
        .iter()
        .map(|f| root().join(f))
        .collect();
    walk(&root().join("docs"), &mut found);
    found
}

/// The anchors of a Markdown file's headings, as GitHub makes them.
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let heading = line.trim_start_matches('#');
        if fenced || heading.len() == line.len() || !heading.starts_with(' ') {
            continue;
        }
        found.push(
            heading
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect(),
        );
    }
    found
}

#[test]
fn links_between_the_docs_lead_somewhere() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for link in text.split("](").skip(1) {
            let Some(target) = link.split(')').next() else {
                continue;
            };
            if target.starts_with("http") || target.contains(' ') {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let to = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let shown = format!("{}: {target}", file.strip_prefix(root()).unwrap().display());
            if !to.exists() {
                broken.push(format!("{shown} (no such file)"));
            } else if !anchor.is_empty() {
                let text = std::fs::read_to_string(&to).unwrap_or_default();
                if !anchors(&text).iter().any(|a| a == anchor) {
                    broken.push(format!("{shown} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
