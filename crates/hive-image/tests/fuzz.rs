//! Bad input, fuzzed: loading and checking a role never panics nor hangs on
//! any tasks file, and every error about a file names a line of it
//! (`file:line`). `scripts/fuzz.sh` runs the same target for a given time.

#[path = "../../../tests/fuzz/support.rs"]
mod support;
#[path = "../../../tests/fuzz/yaml.rs"]
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use hive_image::{Error, NATIVE_MODULES, RoleLint, RoleLoader};
use proptest::prelude::*;
use proptest::sample::select;
use support::{Check, apply_text_edits, fuzz, text_edit};
use yaml::{Y, apply_tree_edits, from_value, tree, tree_edit};

/// Task keywords: the keys of the fixtures' tasks that are no module.
static KEYWORDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    fn walk(v: &serde_yaml::Value, out: &mut Vec<String>) {
        for task in v.as_sequence().into_iter().flatten() {
            for (k, v) in task.as_mapping().into_iter().flatten() {
                let Some(k) = k.as_str() else { continue };
                if !NATIVE_MODULES.contains(&k) && !out.iter().any(|o| o == k) {
                    out.push(k.to_string());
                }
                walk(v, out);
            }
        }
    }
    let mut out = Vec::new();
    for text in FIXTURES.iter() {
        if let Ok(v) = serde_yaml::from_str(text) {
            walk(&v, &mut out);
        }
    }
    out
});
const ARG_KEYS: &[&str] = &[
    "name",
    "src",
    "dest",
    "path",
    "state",
    "content",
    "line",
    "regexp",
    "mode",
    "owner",
    "msg",
    "var",
    "that",
    "cmd",
    "chdir",
    "creates",
    "file",
    "tasks_from",
    "key",
    "value",
    "_raw_params",
    "module",
    "url",
    "enabled",
    "update_cache",
];
const SCALARS: &[&str] = &[
    "~",
    "",
    "yes",
    "no",
    "true",
    "0",
    "1",
    "-1",
    "1.5",
    ".inf",
    "99999999999999999999",
    "present",
    "absent",
    "directory",
    "touch",
    "/etc/x",
    "../../x",
    "0644",
    "'0755'",
    "echo hi",
    "echo a=b creates=/x",
    "k=v k2='a b'",
    "k=",
    "=v",
    "a b=c d",
    "'{{ item }}'",
    "\"{{ x | default(omit) }}\"",
    "\"{{ undefined_var }}\"",
    "\"{% if %}\"",
    "\"{{\"",
    "other",
    "other.yml",
    "r",
    "missing_role",
    "x.yaml",
    "&a",
    "*a",
    "!!binary aGk=",
    "[1, 2",
    "{a: 1}",
    "[]",
    "{}",
    "- x",
    "#",
    "é",
    "\"\\u0000\"",
    "@",
    "`",
];

fn pick<'a>(from: impl IntoIterator<Item = &'a &'a str>) -> BoxedStrategy<String> {
    let words: Vec<String> = from.into_iter().map(|w| w.to_string()).collect();
    select(words).boxed()
}

fn word<'a>(from: impl IntoIterator<Item = &'a &'a str>) -> BoxedStrategy<String> {
    prop_oneof![8 => pick(from), 1 => "[a-z_.]{1,12}", 1 => "\\PC{0,8}"].boxed()
}

fn keyword() -> BoxedStrategy<String> {
    let words: Vec<&str> = KEYWORDS.iter().map(String::as_str).collect();
    word(&words)
}

/// A module name: native, with a collection prefix, or unknown.
fn module() -> BoxedStrategy<String> {
    let prefix = select(
        &[
            "",
            "",
            "",
            "ansible.builtin.",
            "ansible.legacy.",
            "community.general.",
            "x.",
        ][..],
    );
    let name = prop_oneof![
        6 => pick(NATIVE_MODULES.iter()),
        1 => pick(&["include_tasks", "import_tasks", "include_role", "import_role"]),
        1 => "[a-z_]{1,10}",
    ];
    (prefix, name).prop_map(|(p, n)| format!("{p}{n}")).boxed()
}

fn scalar() -> BoxedStrategy<Y> {
    word(SCALARS).prop_map(Y::Scalar).boxed()
}

fn value() -> BoxedStrategy<Y> {
    tree(word(SCALARS), word(ARG_KEYS), 2)
}

fn args() -> BoxedStrategy<Y> {
    prop_oneof![
        3 => proptest::collection::vec((word(ARG_KEYS), prop_oneof![3 => scalar(), 1 => value()]), 0..5)
            .prop_map(Y::Map),
        2 => scalar(),
        1 => value(),
    ]
    .boxed()
}

/// A task: a module or a block, keywords, maybe a stray key.
fn task(tasks: BoxedStrategy<Y>) -> BoxedStrategy<Y> {
    let keyword = (keyword(), prop_oneof![4 => scalar(), 1 => value()]);
    let nested = (select(&["block", "rescue", "always", "block"][..]), tasks)
        .prop_map(|(k, t)| (k.to_string(), t));
    let action = (
        select(&["action", "local_action"][..]),
        prop_oneof![
            (module(), word(SCALARS)).prop_map(|(m, a)| Y::Scalar(format!("{m} {a}"))),
            (module(), args()).prop_map(|(m, a)| match a {
                Y::Map(mut entries) => {
                    entries.insert(0, ("module".into(), Y::Scalar(m)));
                    Y::Map(entries)
                }
                other => other,
            }),
        ],
    )
        .prop_map(|(k, v)| (k.to_string(), v));
    let head = prop_oneof![
        4 => (module(), args()),
        2 => nested.clone(),
        1 => action,
    ];
    let entry = prop_oneof![4 => keyword, 1 => nested, 1 => (module(), args())];
    (head, proptest::collection::vec(entry, 0..5), any::<usize>())
        .prop_map(|(head, mut rest, at)| {
            rest.insert(at % (rest.len() + 1), head);
            Y::Map(rest)
        })
        .boxed()
}

/// A tasks file: a list of tasks, blocks nesting tasks.
fn tasks() -> BoxedStrategy<Y> {
    let leaf = prop_oneof![8 => Just(Y::Seq(vec![])), 1 => scalar()];
    leaf.prop_recursive(3, 24, 4, |inner| {
        proptest::collection::vec(prop_oneof![8 => task(inner), 1 => scalar()], 0..5)
            .prop_map(Y::Seq)
    })
    .boxed()
}

/// The tasks files of the roles of this crate's tests.
static FIXTURES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let roles = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/roles");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&roles)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .flat_map(|role| {
            std::fs::read_dir(role.path().join("tasks"))
                .into_iter()
                .flatten()
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect()
});

/// A role's files (relative path, text).
type Role = Vec<(String, String)>;

fn mutated_fixture() -> BoxedStrategy<String> {
    let line = prop_oneof![
        (module(), word(SCALARS)).prop_map(|(m, a)| format!("- {m}: {a}")),
        (keyword(), word(SCALARS)).prop_map(|(k, v)| format!("  {k}: {v}")),
        "\\PC{0,20}",
    ];
    let any_key = prop_oneof![module(), keyword(), word(ARG_KEYS)];
    (
        0..FIXTURES.len(),
        proptest::collection::vec(tree_edit(any_key, args()), 0..4),
        proptest::collection::vec(text_edit(line), 0..3),
    )
        .prop_map(|(f, tree_edits, text_edits)| {
            let text = &FIXTURES[f];
            let edited = match serde_yaml::from_str::<serde_yaml::Value>(text) {
                Ok(v) if !tree_edits.is_empty() => {
                    apply_tree_edits(from_value(&v), &tree_edits).text()
                }
                _ => text.clone(),
            };
            apply_text_edits(&edited, &text_edits)
        })
        .boxed()
}

fn role() -> BoxedStrategy<Role> {
    let main = prop_oneof![2 => tasks().prop_map(|t| t.text()), 1 => mutated_fixture()];
    let meta = (
        word(&["dependencies", "galaxy_info"]),
        prop_oneof![scalar(), value()],
    )
        .prop_map(|(k, v)| Y::Map(vec![(k, v)]).text());
    let vars = prop_oneof![value(), scalar()].prop_map(|v| v.text());
    (
        main,
        proptest::option::of(tasks().prop_map(|t| t.text())),
        proptest::option::of(tasks().prop_map(|t| t.text())),
        proptest::option::of(meta),
        proptest::option::of(vars),
    )
        .prop_map(|(main, other, handlers, meta, defaults)| {
            let mut files = vec![("tasks/main.yml".to_string(), main)];
            let optional = [
                ("tasks/other.yml", other),
                ("handlers/main.yml", handlers),
                ("meta/main.yml", meta),
                ("defaults/main.yml", defaults),
            ];
            for (path, text) in optional {
                if let Some(text) = text {
                    files.push((path.to_string(), text));
                }
            }
            files
        })
        .boxed()
}

/// `file:line` with a line from 1 on.
fn names_a_line(location: &str) -> bool {
    location
        .rsplit_once(':')
        .and_then(|(_, line)| line.parse::<usize>().ok())
        .is_some_and(|line| line > 0)
}

/// Loads and checks role `r`: no panic, and a role file's error names its line.
fn load_role(files: Role) -> Check {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let roles = dir.path().join("roles");
    for (rel, text) in &files {
        let path = roles.join("r").join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
    }
    let loader = RoleLoader::new([roles]);
    match loader.load("r", None) {
        Ok(_) => {}
        // tasks files: `file:line`; meta/ and defaults/: the file
        Err(Error::Role { file, message }) => {
            let tasks = file.contains("/tasks/") || file.contains("/handlers/");
            let named = files.iter().any(|(rel, _)| file.contains(rel.as_str()));
            if !named || (tasks && !names_a_line(&file)) {
                return Err(format!(
                    "an error without its file or line: {file}: {message}"
                ));
            }
        }
        Err(e) => return Err(format!("not an error of the role's files: {e}")),
    }
    let known = |_: &str| false;
    let mut lint = RoleLint::new(&loader, &known);
    lint.role("r", "fuzz.yml:1");
    for f in lint.finish() {
        if f.location.is_empty() || f.message.is_empty() {
            return Err(format!("a finding without a location or message: {f:?}"));
        }
    }
    Ok(())
}

#[test]
fn fuzz_role_loader() {
    fuzz("role loader", 192, role(), load_role);
}

#[test]
fn fixtures_are_read() {
    assert!(FIXTURES.len() >= 5, "{} tasks files", FIXTURES.len());
    for k in ["name", "when", "register", "block", "loop"] {
        assert!(
            KEYWORDS.iter().any(|w| w == k),
            "{k} not in {:?}",
            *KEYWORDS
        );
    }
    assert!(names_a_line("roles/r/tasks/main.yml:3"));
    assert!(!names_a_line("roles/r/tasks/main.yml:0"));
    assert!(!names_a_line("roles/r/meta/main.yml"));
}

#[test]
fn yaml_errors_without_a_position_get_a_line() {
    // serde_yaml gave no position ("more than one document"): the error said `main.yml:0`
    let main = "  copy:\n- name: dependency marker\n    dest: /etc/himage-dep\n    content: \"from {{ dep_source }}\\n\"\n";
    let files = vec![("tasks/main.yml".to_string(), main.to_string())];
    assert_eq!(support::bounded(files.clone(), load_role), Ok(()));
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir_all(dir.path().join("r/tasks")).expect("role directory");
    std::fs::write(dir.path().join("r/tasks/main.yml"), main).expect("tasks file");
    let e = RoleLoader::new([dir.path().to_path_buf()])
        .load("r", None)
        .expect_err("invalid YAML");
    assert!(e.to_string().contains("tasks/main.yml:1: "), "{e}");
}
