//! The include graph over prompt names: cycle detection when a version is saved, and the
//! "what does P include" / "who includes P" queries.
//!
//! The graph is over prompt names, not versions: a label can move to any version, so a
//! cycle through any live version (one some label, `latest` included, points to) is a cycle
//! that rendering could walk into.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use promptstore_types::{Dependent, ErrorCode, IncludeRef};
use serde_json::json;

use crate::error::Error;
use crate::model::IncludeEdge;

/// The cycle that saving a version of `prompt` with `new_includes` would create, as a path
/// of prompt names from `prompt` back to itself (`["a", "b", "a"]`), or `None`.
///
/// `edges` are the live include edges of the project; `prompt`'s own existing edges still
/// count, since its other live versions stay servable. The path found is a shortest one,
/// and among those the first in name order, so the answer is deterministic.
pub fn find_cycle(
    edges: &[IncludeEdge],
    prompt: &str,
    new_includes: &[IncludeRef],
) -> Option<Vec<String>> {
    let mut adjacency: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges {
        adjacency
            .entry(e.from_prompt.as_str())
            .or_default()
            .insert(e.target.prompt.as_str());
    }
    let entry = adjacency.entry(prompt).or_default();
    for r in new_includes {
        entry.insert(r.prompt.as_str());
    }
    // Breadth-first from `prompt`; parents record the way back.
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue: VecDeque<&str> = VecDeque::from([prompt]);
    while let Some(node) = queue.pop_front() {
        for &next in adjacency.get(node).into_iter().flatten() {
            if next == prompt {
                // Walk back from `node` to `prompt`, then lay the path out forwards.
                let mut middle = Vec::new();
                let mut cur = node;
                while cur != prompt {
                    middle.push(cur.to_owned());
                    cur = parent.get(cur).copied().unwrap_or(prompt);
                }
                middle.reverse();
                let mut path = Vec::with_capacity(middle.len() + 2);
                path.push(prompt.to_owned());
                path.extend(middle);
                path.push(prompt.to_owned());
                return Some(path);
            }
            if !parent.contains_key(next) {
                parent.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

/// The `include_cycle` refusal for a path found by [`find_cycle`].
pub fn cycle_error(path: &[String]) -> Error {
    Error::rejected(
        ErrorCode::IncludeCycle,
        format!(
            "this version would create an include cycle: {}",
            path.join(" → ")
        ),
    )
    .with_details(json!({ "cycle": path }))
}

/// What `prompt`'s live versions include, deduplicated and sorted.
pub fn dependencies(edges: &[IncludeEdge], prompt: &str) -> Vec<IncludeRef> {
    let set: BTreeSet<&IncludeRef> = edges
        .iter()
        .filter(|e| e.from_prompt == prompt)
        .map(|e| &e.target)
        .collect();
    set.into_iter().cloned().collect()
}

/// The live versions that include `prompt`, with how they refer to it, sorted.
pub fn dependents(edges: &[IncludeEdge], prompt: &str) -> Vec<Dependent> {
    let set: BTreeSet<Dependent> = edges
        .iter()
        .filter(|e| e.target.prompt == prompt)
        .map(|e| Dependent {
            prompt: e.from_prompt.clone(),
            version: e.from_version,
            reference: e.target.clone(),
        })
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(spec: &str) -> IncludeRef {
        let (prompt, sel) = spec.split_once('@').unwrap();
        match sel.parse::<u32>() {
            Ok(n) => IncludeRef {
                prompt: prompt.into(),
                label: None,
                version: Some(n),
            },
            Err(_) => IncludeRef {
                prompt: prompt.into(),
                label: Some(sel.into()),
                version: None,
            },
        }
    }

    /// Edges written as `from@version -> target@selector`.
    fn edges(spec: &[&str]) -> Vec<IncludeEdge> {
        spec.iter()
            .map(|s| {
                let (from, to) = s.split_once(" -> ").unwrap();
                let (from_prompt, v) = from.split_once('@').unwrap();
                IncludeEdge {
                    from_prompt: from_prompt.into(),
                    from_version: v.parse().unwrap(),
                    target: r(to),
                }
            })
            .collect()
    }

    fn check(existing: &[&str], prompt: &str, new: &[&str], expected: Option<&[&str]>) {
        let new: Vec<IncludeRef> = new.iter().map(|s| r(s)).collect();
        let got = find_cycle(&edges(existing), prompt, &new);
        let want = expected.map(|p| p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{existing:?} + {prompt} -> {new:?}");
    }

    #[test]
    fn cycles() {
        check(&[], "a", &[], None);
        check(&[], "a", &["b@prod"], None);
        check(&[], "a", &["a@1"], Some(&["a", "a"]));
        check(
            &["b@1 -> a@latest"],
            "a",
            &["b@prod"],
            Some(&["a", "b", "a"]),
        );
        check(
            &["b@1 -> c@2", "c@2 -> a@prod"],
            "a",
            &["b@prod"],
            Some(&["a", "b", "c", "a"]),
        );
        check(&["b@1 -> c@2", "c@2 -> d@prod"], "a", &["b@prod"], None);
        // a's other live version already includes b; the new version includes nothing.
        check(
            &["a@1 -> b@prod", "b@3 -> a@2"],
            "a",
            &[],
            Some(&["a", "b", "a"]),
        );
        // A cycle elsewhere that does not pass through a is not a's problem.
        check(&["b@1 -> c@1", "c@1 -> b@1"], "a", &["b@prod"], None);
        // The shortest way back wins.
        check(
            &["b@1 -> c@1", "c@1 -> a@1", "d@1 -> a@1"],
            "a",
            &["b@x", "d@x"],
            Some(&["a", "d", "a"]),
        );
    }

    #[test]
    fn cycle_error_names_the_path() {
        let e = cycle_error(&["a".into(), "b".into(), "a".into()]);
        assert_eq!(e.code(), ErrorCode::IncludeCycle);
        assert!(e.to_string().contains("a → b → a"), "{e}");
        assert_eq!(e.to_body().details["cycle"], json!(["a", "b", "a"]));
    }

    #[test]
    fn dependencies_and_dependents() {
        let e = edges(&[
            "a@1 -> h@prod",
            "a@2 -> h@prod",
            "a@2 -> f@3",
            "b@4 -> h@2",
            "h@1 -> x@prod",
        ]);
        let deps: Vec<String> = dependencies(&e, "a")
            .iter()
            .map(crate::template::format_include_ref)
            .collect();
        assert_eq!(deps, ["f@3", "h@prod"]);
        assert!(dependencies(&e, "zzz").is_empty());
        let users: Vec<String> = dependents(&e, "h")
            .iter()
            .map(|d| {
                format!(
                    "{}@{} via {}",
                    d.prompt,
                    d.version,
                    crate::template::format_include_ref(&d.reference)
                )
            })
            .collect();
        assert_eq!(users, ["a@1 via h@prod", "a@2 via h@prod", "b@4 via h@2"]);
    }
}
