//! A three-way merge of TOML documents by table, for merging two lines of `.cec` history: keys
//! only one side changed take that side; tables both sides changed are merged key by key; arrays
//! both sides changed keep ours, drop what theirs removed and add what theirs added; anything
//! else both sides changed differently is a conflict, named by its key path, that the caller
//! resolves by choosing a side. Values are compared by meaning (an inline table equals the same
//! standard table), and the result keeps ours' formatting and comments.

use serde::Serialize;
use serde_json::Value as Json;
use toml_edit::{DocumentMut, Item, TableLike};

/// Which side wins where both changed a key differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Ours,
    Theirs,
}

/// A key both sides changed differently: its path and the three values (TOML text; `None`
/// where the key is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub path: Vec<String>,
    pub base: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
}

impl Conflict {
    /// `node `x`` for `tool.comfydock.nodes.x…`, `workflow `w`` for workflows, `dependency group
    /// `g`` for `dependency-groups.g`, else the dotted path.
    pub fn subject(&self) -> String {
        let p: Vec<&str> = self.path.iter().map(String::as_str).collect();
        match p.as_slice() {
            ["tool", "comfydock", "nodes", name, ..] => format!("node `{name}`"),
            ["tool", "comfydock", "workflows", name, ..] => format!("workflow `{name}`"),
            ["tool", "comfydock", "models", name, ..] => format!("model `{name}`"),
            ["dependency-groups", name, ..] => format!("dependency group `{name}`"),
            _ => format!("`{}`", p.join(".")),
        }
    }
}

/// The merged document and the conflicts left (empty when `prefer` was given).
#[derive(Debug, Clone)]
pub struct Merged {
    pub text: String,
    pub conflicts: Vec<Conflict>,
}

/// Merge `ours` and `theirs`, both descended from `base`. With `prefer`, conflicts take that
/// side and are still listed (so the caller can say what was chosen).
pub fn merge(base: &DocumentMut, ours: &DocumentMut, theirs: &DocumentMut, prefer: Option<Side>) -> Merged {
    let mut out = ours.clone();
    let mut conflicts = Vec::new();
    merge_table(
        &mut Vec::new(),
        Some(base.as_table() as &dyn TableLike),
        out.as_table_mut(),
        Some(theirs.as_table() as &dyn TableLike),
        prefer,
        &mut conflicts,
    );
    Merged {
        text: out.to_string(),
        conflicts,
    }
}

fn merge_table(
    path: &mut Vec<String>,
    base: Option<&dyn TableLike>,
    ours: &mut dyn TableLike,
    theirs: Option<&dyn TableLike>,
    prefer: Option<Side>,
    conflicts: &mut Vec<Conflict>,
) {
    let mut keys: Vec<String> = ours.iter().map(|(k, _)| k.to_owned()).collect();
    for table in [theirs, base].into_iter().flatten() {
        for (k, _) in table.iter() {
            if !keys.iter().any(|known| known == k) {
                keys.push(k.to_owned());
            }
        }
    }
    for key in keys {
        let b = base.and_then(|t| t.get(&key)).filter(|i| !i.is_none());
        let t = theirs.and_then(|t| t.get(&key)).filter(|i| !i.is_none());
        let o_owned = ours.get(&key).filter(|i| !i.is_none()).cloned();
        let o = o_owned.as_ref();
        let (cb, co, ct) = (b.map(canonical), o.map(canonical), t.map(canonical));
        if co == ct || ct == cb {
            continue;
        }
        if co == cb {
            take(ours, &key, t);
            continue;
        }
        path.push(key.clone());
        let table_or_absent = |i: Option<&Item>| i.is_none_or(Item::is_table_like);
        if table_or_absent(o) && table_or_absent(t) && table_or_absent(b) {
            // A table on both sides (one may have removed it: its keys count as removed).
            let empty = toml_edit::Table::new();
            let t = t.and_then(Item::as_table_like).unwrap_or(&empty);
            let b = b.and_then(Item::as_table_like);
            if o.is_none() {
                let mut fresh = toml_edit::Table::new();
                fresh.set_implicit(true);
                ours.insert(&key, Item::Table(fresh));
            }
            if let Some(o) = ours.get_mut(&key).and_then(Item::as_table_like_mut) {
                merge_table(path, b, o, Some(t), prefer, conflicts);
                if o.is_empty() && o_owned.is_none() {
                    ours.remove(&key);
                }
            }
        } else if let (Some(o_arr), Some(t_arr)) = (
            co.as_ref().and_then(Json::as_array),
            ct.as_ref().and_then(Json::as_array),
        ) && cb.as_ref().is_none_or(Json::is_array)
            && let Some(t) = t
        {
            let b_arr = cb.as_ref().and_then(Json::as_array).cloned().unwrap_or_default();
            let removed: Vec<&Json> = b_arr.iter().filter(|v| !t_arr.contains(v)).collect();
            let added: Vec<usize> = (0..t_arr.len())
                .filter(|&i| !b_arr.contains(&t_arr[i]) && !o_arr.contains(&t_arr[i]))
                .collect();
            merge_array(ours, &key, &removed, t, &added);
        } else {
            decide(path, b, o, t, ours, &key, prefer, conflicts);
        }
        path.pop();
    }
}

/// Ours' array at `key` without the elements theirs removed, with theirs' added elements
/// (indices into theirs' array) appended.
fn merge_array(ours: &mut dyn TableLike, key: &str, removed: &[&Json], theirs: &Item, added: &[usize]) {
    let theirs_values: Vec<toml_edit::Value> = match theirs {
        Item::Value(toml_edit::Value::Array(a)) => a.iter().cloned().collect(),
        Item::ArrayOfTables(a) => a.iter().map(|t| t.clone().into_inline_table().into()).collect(),
        _ => Vec::new(),
    };
    match ours.get_mut(key) {
        Some(Item::Value(toml_edit::Value::Array(arr))) => {
            arr.retain(|v| !removed.contains(&&canonical_value(v)));
            for &i in added {
                if let Some(v) = theirs_values.get(i) {
                    let mut v = v.clone();
                    v.decor_mut().clear();
                    arr.push_formatted(v);
                }
            }
            // Keep a multi-line array's layout when ours had one.
            if arr.to_string().contains('\n') {
                for v in arr.iter_mut() {
                    v.decor_mut().set_prefix("\n    ");
                    v.decor_mut().set_suffix("");
                }
                arr.set_trailing("\n");
                arr.set_trailing_comma(true);
            } else {
                arr.fmt();
            }
        }
        Some(Item::ArrayOfTables(arr)) => {
            arr.retain(|t| !removed.contains(&&canonical(&Item::Table(t.clone()))));
            if let Item::ArrayOfTables(theirs) = theirs {
                for &i in added {
                    if let Some(t) = theirs.get(i) {
                        let mut t = t.clone();
                        t.set_position(None);
                        arr.push(t);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A key both sides changed differently: take the preferred side, or record the conflict.
#[allow(clippy::too_many_arguments)]
fn decide(
    path: &[String],
    base: Option<&Item>,
    o: Option<&Item>,
    t: Option<&Item>,
    ours: &mut dyn TableLike,
    key: &str,
    prefer: Option<Side>,
    conflicts: &mut Vec<Conflict>,
) {
    conflicts.push(Conflict {
        path: path.to_vec(),
        base: base.map(shown),
        ours: o.map(shown),
        theirs: t.map(shown),
    });
    if prefer == Some(Side::Theirs) {
        let t = t.cloned();
        take(ours, key, t.as_ref());
    }
}

/// Set `key` in `table` to `value` (or remove it), as a fresh item placed after its parent.
fn take(table: &mut dyn TableLike, key: &str, value: Option<&Item>) {
    match value {
        None => {
            table.remove(key);
        }
        Some(item) => {
            let mut item = item.clone();
            clear_positions(&mut item);
            table.insert(key, item);
        }
    }
}

fn clear_positions(item: &mut Item) {
    match item {
        Item::Table(t) => {
            t.set_position(None);
            for (_, child) in t.iter_mut() {
                clear_positions(child);
            }
        }
        Item::ArrayOfTables(a) => {
            for t in a.iter_mut() {
                t.set_position(None);
                for (_, child) in t.iter_mut() {
                    clear_positions(child);
                }
            }
        }
        _ => {}
    }
}

/// A value as TOML text, for showing a conflict.
fn shown(item: &Item) -> String {
    match item {
        Item::Value(v) => v.to_string().trim().to_owned(),
        Item::Table(t) => t.clone().into_inline_table().to_string().trim().to_owned(),
        Item::ArrayOfTables(a) => a.clone().into_array().to_string().trim().to_owned(),
        Item::None => String::new(),
    }
}

/// An item's meaning, without formatting: what the comparison looks at.
fn canonical(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Value(v) => canonical_value(v),
        Item::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.to_owned(), canonical(v))).collect()),
        Item::ArrayOfTables(a) => Json::Array(a.iter().map(|t| canonical(&Item::Table(t.clone()))).collect()),
    }
}

fn canonical_value(value: &toml_edit::Value) -> Json {
    use toml_edit::Value as V;
    match value {
        V::String(s) => Json::String(s.value().clone()),
        V::Integer(i) => Json::from(*i.value()),
        V::Float(f) => Json::String(format!("float:{}", f.value())),
        V::Boolean(b) => Json::Bool(*b.value()),
        V::Datetime(d) => Json::String(format!("datetime:{}", d.value())),
        V::Array(a) => Json::Array(a.iter().map(canonical_value).collect()),
        V::InlineTable(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.to_owned(), canonical_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    fn doc(text: &str) -> DocumentMut {
        text.parse().unwrap()
    }

    fn merged(base: &str, ours: &str, theirs: &str) -> Merged {
        merge(&doc(base), &doc(ours), &doc(theirs), None)
    }

    const BASE: &str = r#"[project]
name = "env"
dependencies = [
    "tinynum>=1",
]

[dependency-groups]
a = ["node-dep-a<1.1"]

[tool.comfydock.nodes.a]
source = "registry"
version = "1.0.0"

[tool.comfydock.workflows.flow]
tracked = true
"#;

    #[test]
    fn nodes_added_on_each_side_are_both_kept_with_ours_formatting() {
        let ours = BASE.replace(
            "[tool.comfydock.workflows.flow]",
            "# ours' comment\n[tool.comfydock.nodes.b]\nsource = \"registry\"\nversion = \"2.0.0\"\n\n[tool.comfydock.workflows.flow]",
        );
        let theirs = format!("{BASE}\n[tool.comfydock.nodes.c]\nsource = \"git\"\nurl = \"u\"\n").replace(
            "a = [\"node-dep-a<1.1\"]",
            "a = [\"node-dep-a<1.1\"]\nc = [\"tinyyaml\"]",
        );
        let m = merged(BASE, &ours, &theirs);
        assert_eq!(m.conflicts, []);
        let out = doc(&m.text);
        assert_eq!(
            out["tool"]["comfydock"]["nodes"]["b"]["version"].as_str(),
            Some("2.0.0")
        );
        assert_eq!(out["tool"]["comfydock"]["nodes"]["c"]["url"].as_str(), Some("u"));
        assert_eq!(
            out["dependency-groups"]["c"]
                .as_array()
                .unwrap()
                .get(0)
                .unwrap()
                .as_str(),
            Some("tinyyaml")
        );
        assert!(m.text.contains("# ours' comment"), "{}", m.text);
        assert!(m.text.starts_with("[project]\nname = \"env\""), "{}", m.text);
    }

    #[test]
    fn a_change_on_one_side_is_taken_and_a_removal_too() {
        let theirs = BASE.replace("version = \"1.0.0\"", "version = \"1.1.0\"");
        let ours = BASE.replace("[tool.comfydock.workflows.flow]\ntracked = true\n", "");
        let m = merged(BASE, &ours, &theirs);
        assert_eq!(m.conflicts, []);
        let out = doc(&m.text);
        assert_eq!(
            out["tool"]["comfydock"]["nodes"]["a"]["version"].as_str(),
            Some("1.1.0")
        );
        let workflows = out["tool"]["comfydock"].get("workflows");
        assert!(workflows.and_then(|w| w.get("flow")).is_none(), "{}", m.text);
    }

    #[test]
    fn both_changing_one_value_is_a_conflict_resolved_by_a_side() {
        let ours = BASE.replace("version = \"1.0.0\"", "version = \"1.1.0\"");
        let theirs = BASE.replace("version = \"1.0.0\"", "version = \"2.0.0\"");
        let m = merged(BASE, &ours, &theirs);
        assert_eq!(
            m.conflicts,
            [Conflict {
                path: vec![
                    "tool".into(),
                    "comfydock".into(),
                    "nodes".into(),
                    "a".into(),
                    "version".into()
                ],
                base: Some("\"1.0.0\"".into()),
                ours: Some("\"1.1.0\"".into()),
                theirs: Some("\"2.0.0\"".into()),
            }]
        );
        assert_eq!(m.conflicts[0].subject(), "node `a`");
        let t = merge(&doc(BASE), &doc(&ours), &doc(&theirs), Some(Side::Theirs));
        assert_eq!(
            doc(&t.text)["tool"]["comfydock"]["nodes"]["a"]["version"].as_str(),
            Some("2.0.0")
        );
        let o = merge(&doc(BASE), &doc(&ours), &doc(&theirs), Some(Side::Ours));
        assert_eq!(
            doc(&o.text)["tool"]["comfydock"]["nodes"]["a"]["version"].as_str(),
            Some("1.1.0")
        );
    }

    #[test]
    fn a_removal_against_a_change_is_a_conflict() {
        let ours = BASE.replace(
            "[tool.comfydock.nodes.a]\nsource = \"registry\"\nversion = \"1.0.0\"\n",
            "",
        );
        let theirs = BASE.replace("version = \"1.0.0\"", "version = \"2.0.0\"");
        let m = merged(BASE, &ours, &theirs);
        assert_eq!(m.conflicts.len(), 1, "{:?}", m.conflicts);
        assert_eq!(m.conflicts[0].ours, None);
        assert_eq!(m.conflicts[0].subject(), "node `a`");
    }

    #[test]
    fn arrays_changed_on_both_sides_keep_each_sides_additions_and_removals() {
        let ours = BASE.replace("\"tinynum>=1\",\n", "\"tinynum>=1\",\n    \"tinyimg\",\n");
        let theirs = BASE.replace("\"tinynum>=1\",\n", "\"tinyyaml\",\n");
        let m = merged(BASE, &ours, &theirs);
        assert_eq!(m.conflicts, []);
        let deps: Vec<String> = doc(&m.text)["project"]["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(deps, ["tinyimg", "tinyyaml"]);
        assert!(
            m.text
                .contains("dependencies = [\n    \"tinyimg\",\n    \"tinyyaml\",\n]"),
            "{}",
            m.text
        );
    }

    #[test]
    fn formatting_differences_are_not_changes() {
        let theirs = BASE.replace(
            "[tool.comfydock.nodes.a]\nsource = \"registry\"\nversion = \"1.0.0\"\n",
            "[tool.comfydock.nodes]\na = { source = \"registry\", version = \"1.0.0\" }\n",
        );
        let m = merged(BASE, BASE, &theirs);
        assert_eq!(m.conflicts, []);
        assert_eq!(m.text, BASE);
    }

    proptest::proptest! {
        /// Changes to different keys on each side all reach the result, without conflicts;
        /// a side that changed nothing yields the other side.
        #[test]
        fn disjoint_changes_all_reach_the_result(
            base in proptest::collection::btree_map("[a-f]", 0i64..5, 0..6),
            ours_edits in proptest::collection::btree_map("[a-c]", proptest::option::of(0i64..5), 0..3),
            theirs_edits in proptest::collection::btree_map("[d-f]", proptest::option::of(0i64..5), 0..3),
        ) {
            let render = |m: &std::collections::BTreeMap<String, i64>| {
                let mut text = String::from("[t]\nkeep = 1\n");
                for (k, v) in m {
                    let _ = writeln!(text, "{k} = {v}");
                }
                text
            };
            let apply = |m: &std::collections::BTreeMap<String, i64>, edits: &std::collections::BTreeMap<String, Option<i64>>| {
                let mut m = m.clone();
                for (k, v) in edits {
                    match v {
                        Some(v) => { m.insert(k.clone(), *v); }
                        None => { m.remove(k); }
                    }
                }
                m
            };
            let ours = apply(&base, &ours_edits);
            let theirs = apply(&base, &theirs_edits);
            let expected = apply(&ours, &theirs_edits);
            let m = merged(&render(&base), &render(&ours), &render(&theirs));
            proptest::prop_assert_eq!(&m.conflicts, &Vec::<Conflict>::new());
            proptest::prop_assert_eq!(canonical(doc(&m.text).as_item()), canonical(doc(&render(&expected)).as_item()));
            let unchanged = merged(&render(&base), &render(&base), &render(&theirs));
            proptest::prop_assert_eq!(canonical(doc(&unchanged.text).as_item()), canonical(doc(&render(&theirs)).as_item()));
        }
    }
}
