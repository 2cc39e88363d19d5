//! `cargo xtask msrv`: checks that no dependency in the lock file needs a
//! newer Rust than the workspace's `rust-version`.
//!
//! It reads `cargo metadata --format-version 1 --all-features` and, for every
//! workspace member, walks the resolved graph from it: all of the member's
//! own dependencies (normal, build and dev), then the normal and build
//! dependencies of those. A package needs at least the Rust of its
//! `rust-version` and of its edition (2021: 1.56, 2024: 1.85). Packages that
//! declare neither cannot be checked and are only counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use serde_json::Value;

/// A Rust version such as `1.88` or `1.85.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RustVersion(u64, u64, u64);

impl RustVersion {
    /// Parses `1`, `1.88` or `1.88.0`; missing parts are 0.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self(major, minor, patch))
    }

    /// The first Rust that knows `edition`.
    fn of_edition(edition: &str) -> Option<Self> {
        match edition {
            "2018" => Some(Self(1, 31, 0)),
            "2021" => Some(Self(1, 56, 0)),
            "2024" => Some(Self(1, 85, 0)),
            _ => None,
        }
    }
}

impl fmt::Display for RustVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(major, minor, patch) = self;
        if *patch == 0 {
            write!(f, "{major}.{minor}")
        } else {
            write!(f, "{major}.{minor}.{patch}")
        }
    }
}

/// A dependency that needs a newer Rust than the member that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The dependency's name.
    pub name: String,
    /// The dependency's version.
    pub version: String,
    /// The Rust it needs.
    pub needs: RustVersion,
    /// Whether the member needs it only for its tests, benches and examples
    /// (reached through the member's dev-dependencies only).
    pub dev_only: bool,
}

/// The outcome of the check for one workspace member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReport {
    /// The member's name.
    pub name: String,
    /// The member's `rust-version`, if it declares one.
    pub rust_version: Option<RustVersion>,
    /// How many packages the member depends on, directly or not.
    pub dependencies: usize,
    /// Of those, how many declare neither a `rust-version` nor an edition.
    pub undeclared: usize,
    /// The dependencies that need a newer Rust than the member's.
    pub violations: Vec<Violation>,
}

impl fmt::Display for MemberReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(msrv) = self.rust_version else {
            return write!(f, "{}: no rust-version declared, not checked", self.name);
        };
        write!(
            f,
            "{} (rust-version {msrv}): {} dependencies checked, {} declare no rust-version or edition",
            self.name, self.dependencies, self.undeclared
        )?;
        if self.violations.is_empty() {
            return write!(f, "; none needs a newer Rust");
        }
        write!(f, "; {} need a newer Rust:", self.violations.len())?;
        for v in &self.violations {
            let scope = if v.dev_only {
                "dev-dependency only: tests, benches, examples"
            } else {
                "needed to build the package"
            };
            write!(
                f,
                "\n  {} {} needs Rust {} ({scope})",
                v.name, v.version, v.needs
            )?;
        }
        Ok(())
    }
}

struct Package {
    name: String,
    version: String,
    /// Its `rust-version`.
    declared: Option<RustVersion>,
    /// The newer of its `rust-version` and of the first Rust of its edition.
    needs: Option<RustVersion>,
}

/// One resolved dependency edge: the target package and whether it is a
/// dev-dependency only.
struct Edge {
    to: String,
    dev_only: bool,
}

/// Checks the output of `cargo metadata --format-version 1` (which must
/// include the resolve, so not `--no-deps`), one report per workspace member.
pub fn check(metadata: &str) -> Result<Vec<MemberReport>, String> {
    let metadata: Value = serde_json::from_str(metadata)
        .map_err(|e| format!("cannot parse the output of cargo metadata: {e}"))?;
    let packages = parse_packages(&metadata)?;
    let graph = parse_graph(&metadata)?;
    let members = metadata["workspace_members"]
        .as_array()
        .ok_or("cargo metadata has no `workspace_members`")?;

    let mut reports = Vec::new();
    for member in members {
        let id = member
            .as_str()
            .ok_or("a workspace member id is not a string")?;
        let package = packages
            .get(id)
            .ok_or_else(|| format!("workspace member {id} is not among the packages"))?;
        let rust_version = package.declared;
        let with_dev = reachable(&graph, id, true);
        let without_dev = reachable(&graph, id, false);
        let mut report = MemberReport {
            name: package.name.clone(),
            rust_version,
            dependencies: with_dev.len(),
            undeclared: 0,
            violations: Vec::new(),
        };
        for dep in &with_dev {
            let dep_package = packages.get(dep.as_str()).ok_or_else(|| {
                format!("the resolve names {dep}, which is not among the packages")
            })?;
            match (dep_package.needs, rust_version) {
                (None, _) => report.undeclared += 1,
                (Some(needs), Some(msrv)) if needs > msrv => report.violations.push(Violation {
                    name: dep_package.name.clone(),
                    version: dep_package.version.clone(),
                    needs,
                    dev_only: !without_dev.contains(dep),
                }),
                _ => {}
            }
        }
        report
            .violations
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        reports.push(report);
    }
    Ok(reports)
}

fn parse_packages(metadata: &Value) -> Result<HashMap<String, Package>, String> {
    let list = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no `packages`")?;
    let mut packages = HashMap::new();
    for p in list {
        let id = p["id"].as_str().ok_or("a package has no id")?;
        let name = p["name"].as_str().unwrap_or(id).to_owned();
        let declared = match p["rust_version"].as_str() {
            Some(text) => Some(
                RustVersion::parse(text)
                    .ok_or_else(|| format!("{name}: cannot parse rust-version {text:?}"))?,
            ),
            None => None,
        };
        let edition = p["edition"].as_str().and_then(RustVersion::of_edition);
        packages.insert(
            id.to_owned(),
            Package {
                version: p["version"].as_str().unwrap_or("?").to_owned(),
                name,
                declared,
                needs: declared.max(edition),
            },
        );
    }
    Ok(packages)
}

fn parse_graph(metadata: &Value) -> Result<BTreeMap<String, Vec<Edge>>, String> {
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata has no resolve graph; was it run with --no-deps?")?;
    let mut graph = BTreeMap::new();
    for node in nodes {
        let id = node["id"].as_str().ok_or("a resolve node has no id")?;
        let mut edges = Vec::new();
        for dep in node["deps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let to = dep["pkg"].as_str().ok_or("a resolve edge has no pkg")?;
            let kinds = dep["dep_kinds"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            // Old cargo versions give no dep_kinds: count the edge as normal.
            let dev_only = !kinds.is_empty() && kinds.iter().all(|k| k["kind"] == "dev");
            edges.push(Edge {
                to: to.to_owned(),
                dev_only,
            });
        }
        graph.insert(id.to_owned(), edges);
    }
    Ok(graph)
}

/// The packages `start` depends on, directly or not. The start's own
/// dev-dependencies are followed when `with_dev` is true; those of the
/// packages reached are never part of its build.
fn reachable(graph: &BTreeMap<String, Vec<Edge>>, start: &str, with_dev: bool) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::new();
    for edge in graph.get(start).map(Vec::as_slice).unwrap_or_default() {
        if with_dev || !edge.dev_only {
            queue.push_back(edge.to.as_str());
        }
    }
    while let Some(id) = queue.pop_front() {
        if id == start || !seen.insert(id.to_owned()) {
            continue;
        }
        for edge in graph.get(id).map(Vec::as_slice).unwrap_or_default() {
            if !edge.dev_only {
                queue.push_back(edge.to.as_str());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(id: &str, rust_version: Option<&str>, edition: &str) -> Value {
        serde_json::json!({
            "id": id, "name": id, "version": "1.0.0",
            "rust_version": rust_version, "edition": edition,
        })
    }

    fn edge(to: &str, kind: Option<&str>) -> Value {
        serde_json::json!({ "name": to, "pkg": to, "dep_kinds": [{ "kind": kind, "target": null }] })
    }

    fn metadata() -> String {
        serde_json::json!({
            "workspace_members": ["app"],
            "packages": [
                package("app", Some("1.88"), "2024"),
                package("fine", Some("1.70"), "2021"),
                package("too-new", Some("1.90.1"), "2021"),
                package("test-helper", Some("1.89"), "2021"),
                package("old", None, "2015"),
                package("edition-only", None, "2024"),
                package("helper-dev-dep", Some("1.99"), "2021"),
            ],
            "resolve": { "nodes": [
                { "id": "app", "deps": [edge("fine", None), edge("test-helper", Some("dev")), edge("old", Some("build"))] },
                { "id": "fine", "deps": [edge("too-new", None), edge("edition-only", None)] },
                { "id": "too-new", "deps": [] },
                { "id": "test-helper", "deps": [edge("fine", None)] },
                { "id": "old", "deps": [edge("helper-dev-dep", Some("dev"))] },
                { "id": "edition-only", "deps": [] },
                { "id": "helper-dev-dep", "deps": [] },
            ]},
        })
        .to_string()
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(RustVersion::parse("1.88"), Some(RustVersion(1, 88, 0)));
        assert_eq!(RustVersion::parse("1.85.1"), Some(RustVersion(1, 85, 1)));
        assert_eq!(RustVersion::parse("1.x"), None);
        assert_eq!(RustVersion::parse("1.2.3.4"), None);
        assert!(RustVersion(1, 88, 0) < RustVersion(1, 88, 1));
        assert!(RustVersion(1, 9, 0) < RustVersion(1, 88, 0));
        assert_eq!(RustVersion(1, 88, 0).to_string(), "1.88");
    }

    #[test]
    fn dependencies_above_the_msrv_are_listed() {
        let reports = check(&metadata()).unwrap();
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!(report.rust_version, Some(RustVersion(1, 88, 0)));
        // fine, too-new, edition-only, test-helper, old; not the dev-dependency of `old`.
        assert_eq!(report.dependencies, 5);
        assert_eq!(report.undeclared, 1, "only `old` declares neither");
        let found: Vec<(&str, RustVersion, bool)> = report
            .violations
            .iter()
            .map(|v| (v.name.as_str(), v.needs, v.dev_only))
            .collect();
        assert_eq!(
            found,
            [
                ("test-helper", RustVersion(1, 89, 0), true),
                ("too-new", RustVersion(1, 90, 1), false)
            ]
        );
        let text = report.to_string();
        assert!(
            text.contains("too-new 1.0.0 needs Rust 1.90.1 (needed to build"),
            "{text}"
        );
    }

    #[test]
    fn an_edition_sets_a_floor() {
        let metadata = metadata().replace("\"1.88\"", "\"1.80\"");
        let report = &check(&metadata).unwrap()[0];
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.name == "edition-only" && v.needs == RustVersion(1, 85, 0))
        );
    }

    #[test]
    fn metadata_without_a_resolve_is_refused() {
        let err = check(r#"{"packages": [], "workspace_members": []}"#).unwrap_err();
        assert!(err.contains("--no-deps"), "{err}");
    }
}
