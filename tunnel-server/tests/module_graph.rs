//! The relay's modules depend on each other without cycles: shared state, the tunnel registry
//! and the connection guard sit below the listener, the tunnel tasks and the admin listener,
//! so each of those can be read (and changed) without the others.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `crate::<module>` references in each library module (`lib.rs` and the binary excluded).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            modules.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, text)| {
            let deps = text
                .match_indices("crate::")
                .filter_map(|(i, _)| {
                    let rest = &text[i + "crate::".len()..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    let dep = &rest[..end];
                    // Items re-exported at the crate root (`crate::RelayError`) name no module.
                    (names.contains(dep) && dep != name).then(|| dep.to_owned())
                })
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

/// A cycle through `module`, if there is one (depth-first search).
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    module: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|m| m == module) {
        let mut cycle = path[start..].to_vec();
        cycle.push(module.to_owned());
        return Some(cycle);
    }
    if done.contains(module) {
        return None;
    }
    path.push(module.to_owned());
    for dep in &graph[module] {
        if let Some(cycle) = cycle_from(graph, dep, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(module.to_owned());
    None
}

#[test]
fn modules_depend_on_each_other_without_cycles() {
    let graph = module_graph();
    assert!(graph.contains_key("server") && graph.contains_key("tunnel"));
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
    // The shared state is below everything that runs tasks.
    for user in ["server", "tunnel", "admin"] {
        assert!(graph[user].contains("state"), "{user}: {:?}", graph[user]);
    }
    assert!(!graph["state"].contains("server"));
}
