//! Bad input, fuzzed: the inventory loader and the template engine never
//! panic nor hang on any project or template, and every problem the loader
//! reports in a file names its line. `scripts/fuzz.sh` runs the same targets
//! for a given time.

#[path = "../../../tests/fuzz/support.rs"]
mod support;
#[path = "../../../tests/fuzz/yaml.rs"]
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use hive_inventory::template::{SiteBuilder, Templar, Vars};
use hive_inventory::{Error, IMAGE_PARAMS, ProjectLoader, SERVICE_PARAMETERS, StageName};

/// The service parameters' names, from the loader's table.
static SERVICE_PARAMS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| SERVICE_PARAMETERS.iter().map(|p| p.name).collect());

/// Provider names: hive's own and those the original knows.
const PROVIDERS: &[&str] = &[
    "docker",
    "prepared",
    "vagrant",
    "aws",
    "gcp",
    "azure",
    "openstack",
    "kickstart",
];
use proptest::prelude::*;
use proptest::sample::select;
use support::{Check, TextEdit, apply_text_edits, fuzz, text_edit};
use yaml::{TreeEdit, Y, apply_tree_edits, from_value, tree, tree_edit};

const NETWORK_KEYS: &[&str] = &["driver", "ipam", "driver_opts"];
/// The keys of stages, subnets, volumes and their `drbd:` in the fixtures.
static STAGE_KEYS: LazyLock<Vec<String>> = LazyLock::new(|| fixture_keys(&["stages", "*"]));
static SUBNET_KEYS: LazyLock<Vec<String>> =
    LazyLock::new(|| fixture_keys(&["stages", "*", "subnets", "*"]));
static VOLUME_KEYS: LazyLock<Vec<String>> =
    LazyLock::new(|| fixture_keys(&["services", "*", "volumes", "*"]));
static DRBD_KEYS: LazyLock<Vec<String>> =
    LazyLock::new(|| fixture_keys(&["services", "*", "volumes", "*", "drbd"]));
const VAR_NAMES: &[&str] = &[
    "a",
    "b",
    "item",
    "x",
    "hive_name",
    "hive_stage",
    "hive_provider",
    "hive_private_ip",
    "inventory_hostname",
    "groups",
    "hostvars",
    "group_names",
    "omit",
    "hive_registry",
];
/// Scalars that mean something somewhere in an inventory, in YAML 1.1.
const SCALARS: &[&str] = &[
    "~",
    "null",
    "",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "True",
    "FALSE",
    "0",
    "1",
    "-1",
    "3",
    "4",
    "65535",
    "65536",
    "0x1F",
    "0o17",
    "017",
    "1_000",
    "+5",
    "1.5",
    ".inf",
    "-.inf",
    ".nan",
    "1e400",
    "99999999999999999999999",
    "2001-12-14",
    "12:30:45",
    "192.168.56.0/27",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "192.168.56.4",
    "300.1.1.1/33",
    "fe80::/64",
    "::1",
    "500M",
    "1G",
    "0M",
    "-5G",
    "80",
    "80:8080",
    "53/udp",
    "8080:80/tcp",
    "1-65535:80",
    "99999:1",
    "xfs",
    "ext4",
    "volume",
    "bind",
    "tmpfs",
    "p-hive0.svc",
    "hive0",
    "mariadb:10.4",
    "busybox",
    "/var/lib/x",
    "/",
    "..",
    "a b",
    "'quoted'",
    "\"dq\\u00e9\"",
];

/// Scalars that break the YAML around them, or that YAML reads its own way.
const WILD: &[&str] = &[
    "&anchor a",
    "*alias",
    "!!str 1",
    "!!binary aGk=",
    "!!int x",
    "[1, 2",
    "{a: 1}",
    "[]",
    "{}",
    "@",
    "`",
    "- item",
    "? key",
    "| ",
    ">",
    "%YAML 1.1",
    "---",
    "...",
    "#comment",
    "é",
    "名前",
];

fn pick(from: &[impl AsRef<str>]) -> BoxedStrategy<String> {
    let words: Vec<String> = from.iter().map(|w| w.as_ref().to_string()).collect();
    select(words).boxed()
}

fn names(from: &[impl AsRef<str>]) -> BoxedStrategy<String> {
    prop_oneof![24 => pick(from), 2 => "[a-z_]{1,12}", 1 => "\\PC{0,8}"].boxed()
}

// ---- templates ---------------------------------------------------------

const FILTERS: &[&str] = &[
    "default",
    "d",
    "mandatory",
    "bool",
    "int",
    "float",
    "string",
    "to_json",
    "to_nice_json",
    "from_json",
    "from_yaml",
    "to_yaml",
    "to_nice_yaml",
    "combine",
    "dict2items",
    "items2dict",
    "intersect",
    "difference",
    "union",
    "symmetric_difference",
    "unique",
    "flatten",
    "extract",
    "regex_replace",
    "regex_search",
    "regex_findall",
    "regex_escape",
    "split",
    "join",
    "first",
    "last",
    "b64encode",
    "b64decode",
    "basename",
    "dirname",
    "quote",
    "ipaddr",
    "ipv4",
    "ipv6",
    "ipmath",
    "ternary",
    "length",
    "list",
    "map",
    "select",
    "reject",
    "selectattr",
    "sort",
    "replace",
    "upper",
    "lower",
    "trim",
    "items",
    "dictsort",
    "batch",
    "slice",
    "round",
    "abs",
    "sum",
    "min",
    "max",
    "reverse",
    "indent",
    "format",
    "string",
    "center",
    "wordcount",
    "tojson",
    "attr",
    "groupby",
    "random",
    "shuffle",
    "hash",
    "password_hash",
    "nope",
];
const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "truthy",
    "falsy",
    "succeeded",
    "success",
    "match",
    "search",
    "regex",
    "none",
    "string",
    "number",
    "mapping",
    "sequence",
    "divisibleby(3)",
    "nope",
];
const ATOMS: &[&str] = &[
    "0",
    "1",
    "-1",
    "3",
    "10**9",
    "2**64",
    "10**10**10",
    "1e308",
    "0.1",
    "'a'",
    "''",
    "'{{'",
    "'}}'",
    "'%s'",
    "'\\\\1'",
    "\"x\"",
    "'.*'",
    "'('",
    "'[a-'",
    "'192.168.0.1/24'",
    "'fe80::1'",
    "'a,b'",
    "'{\"k\": 1}'",
    "'k: [1'",
    "[1, 2]",
    "[]",
    "{}",
    "{'k': 'v'}",
    "(1, 2)",
    "true",
    "false",
    "none",
    "None",
    "omit",
    "range(10**9)",
    "range(100000)",
    "range(-5)",
    "range(1, 10, 0)",
    "lookup('env', 'HOME')",
    "lookup('file', 'missing.txt')",
    "lookup('file', '')",
    "lookup('first_found', ['x', 'y'])",
    "lookup('nope', 'x')",
    "lookup('password', 'credentials/pw length=8 chars=digits')",
    "lookup('template', 'missing.j2')",
    "query('env', 'X')",
    "dict(a=1)",
    "namespace()",
    "'x' * 10**9",
    "[1, 2] * 10**5",
    "hostvars['p-hive0.x']",
    "hostvars[inventory_hostname]",
    "groups['all']",
    "loop",
    "self",
    "caller()",
];

fn expr() -> BoxedStrategy<String> {
    let leaf = prop_oneof![3 => pick(ATOMS), 2 => pick(VAR_NAMES), 1 => "[a-z_]{1,6}"];
    leaf.prop_recursive(4, 24, 3, |e| {
        let op = select(
            &[
                "+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">=", "and", "or", "in",
                "not in",
            ][..],
        );
        prop_oneof![
            (e.clone(), op, e.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            (e.clone(), pick(FILTERS)).prop_map(|(a, f)| format!("{a} | {f}")),
            (
                e.clone(),
                pick(FILTERS),
                proptest::collection::vec(e.clone(), 1..3)
            )
                .prop_map(|(a, f, args)| format!("{a} | {f}({})", args.join(", "))),
            (e.clone(), pick(TESTS)).prop_map(|(a, t)| format!("{a} is {t}")),
            (e.clone(), "[a-z_]{1,6}").prop_map(|(a, k)| format!("{a}.{k}")),
            (e.clone(), e.clone()).prop_map(|(a, k)| format!("{a}[{k}]")),
            (e.clone(), e.clone(), e.clone()).prop_map(|(a, b, c)| format!("{a} if {b} else {c}")),
            e.clone().prop_map(|a| format!("({a})")),
            e.clone().prop_map(|a| format!("not {a}")),
            proptest::collection::vec(e.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
            (e.clone(), e).prop_map(|(k, v)| format!("{{{k}: {v}}}")),
        ]
    })
    .boxed()
}

/// A template: text, expressions, statements, and stray delimiters.
fn template() -> BoxedStrategy<String> {
    let part = prop_oneof![
        3 => expr().prop_map(|e| format!("{{{{ {e} }}}}")),
        2 => "[ a-z0-9.:/-]{0,8}",
        1 => select(&["{{", "}}", "{%", "%}", "{#", "#}", "{", "}", "'", "\"", "\\", "{{-", "-}}", "\n"][..])
            .prop_map(str::to_string),
        1 => "\\PC{0,6}",
    ];
    let parts = proptest::collection::vec(part, 0..5).prop_map(|p| p.concat());
    parts
        .prop_recursive(3, 16, 3, |body| {
            prop_oneof![
                (expr(), body.clone(), body.clone())
                    .prop_map(|(c, t, f)| format!("{{% if {c} %}}{t}{{% else %}}{f}{{% endif %}}")),
                (select(VAR_NAMES), expr(), body.clone())
                    .prop_map(|(v, e, b)| format!("{{% for {v} in {e} %}}{b}{{% endfor %}}")),
                (select(VAR_NAMES), expr(), body.clone())
                    .prop_map(|(v, e, b)| format!("{{% set {v} = {e} %}}{b}")),
                (body.clone(), body.clone()).prop_map(|(a, b)| format!("{a}{b}")),
                body.prop_map(|b| format!("{{# {b} #}}")),
            ]
        })
        .boxed()
}

/// A template with a few characters deleted or put in.
fn garbled_template() -> BoxedStrategy<String> {
    (
        template(),
        proptest::collection::vec((any::<usize>(), proptest::option::of(any::<char>())), 0..3),
    )
        .prop_map(|(t, edits)| {
            let mut chars: Vec<char> = t.chars().collect();
            for (at, c) in edits {
                let n = chars.len();
                match c {
                    Some(c) => chars.insert(at % (n + 1), c),
                    None if n > 0 => {
                        chars.remove(at % n);
                    }
                    None => {}
                }
            }
            chars.into_iter().collect()
        })
        .boxed()
}

/// A template as a YAML scalar (quoted, since `{` starts a flow mapping).
fn template_scalar() -> BoxedStrategy<String> {
    prop_oneof![
        12 => template().prop_map(|t| serde_json::to_string(&t).unwrap_or_default()),
        1 => template().prop_map(|t| t.replace('\n', " ")),
    ]
    .boxed()
}

// ---- inventories -------------------------------------------------------

fn scalar() -> BoxedStrategy<String> {
    prop_oneof![
        12 => pick(SCALARS),
        1 => pick(WILD),
        1 => names(&StageName::NAMES),
        1 => names(PROVIDERS),
        2 => template_scalar(),
        1 => "[a-zA-Z0-9 ._/-]{0,16}",
        1 => any::<i64>().prop_map(|i| i.to_string()),
    ]
    .boxed()
}

fn any_key() -> BoxedStrategy<String> {
    prop_oneof![
        pick(&STAGE_KEYS),
        pick(&SERVICE_PARAMS[..]),
        pick(&VOLUME_KEYS),
        pick(&DRBD_KEYS),
        names(VAR_NAMES)
    ]
    .boxed()
}

fn value() -> BoxedStrategy<Y> {
    tree(scalar(), any_key(), 3)
}

/// Mostly scalars, sometimes anything.
fn leafy(leaf: BoxedStrategy<Y>) -> BoxedStrategy<Y> {
    prop_oneof![4 => leaf, 1 => value()].boxed()
}

fn scalar_y() -> BoxedStrategy<Y> {
    scalar().prop_map(Y::Scalar).boxed()
}

/// Entries with keys from `keys` and values from `value`.
fn entries(keys: BoxedStrategy<String>, value: BoxedStrategy<Y>, n: usize) -> BoxedStrategy<Y> {
    proptest::collection::vec((keys, value), 0..n)
        .prop_map(Y::Map)
        .boxed()
}

fn seq(item: BoxedStrategy<Y>) -> BoxedStrategy<Y> {
    leafy(
        proptest::collection::vec(item, 0..4)
            .prop_map(Y::Seq)
            .boxed(),
    )
}

fn stage() -> BoxedStrategy<Y> {
    let subnet = entries(names(&SUBNET_KEYS), scalar_y(), 4);
    let key_value = prop_oneof![
        6 => (names(&STAGE_KEYS), leafy(scalar_y())),
        1 => (Just("subnets".to_string()), seq(subnet)),
        1 => (Just("ip_address_list".to_string()), seq(scalar_y())),
    ];
    proptest::collection::vec(key_value, 0..9)
        .prop_map(Y::Map)
        .boxed()
}

/// Mostly nothing, sometimes some of `items`.
fn sometimes<T: Clone + std::fmt::Debug + 'static>(
    items: impl Strategy<Value = Vec<T>> + 'static,
) -> BoxedStrategy<Vec<T>> {
    prop_oneof![3 => Just(Vec::new()), 1 => items].boxed()
}

/// `plugin:` mostly `name`, sometimes another or none.
fn plugin(name: &'static str) -> BoxedStrategy<&'static str> {
    prop_oneof![12 => Just(name), 1 => select(&["hive_inventory", "hive_services", "x", "~"][..])]
        .boxed()
}

/// A service the loader takes, with a few entries of any kind added.
fn sound_service() -> BoxedStrategy<Y> {
    (
        select(&["busybox", "mariadb:10.4", "app:1"][..]),
        proptest::option::of(select(&["80", "8080:80", "53/udp", "443:443/tcp"][..])),
        proptest::collection::vec((names(&SERVICE_PARAMS[..]), leafy(scalar_y())), 0..2),
    )
        .prop_map(|(image, port, extra)| {
            let mut entries = vec![("image".to_string(), Y::s(image))];
            if let Some(p) = port {
                entries.push(("ports".to_string(), Y::Seq(vec![Y::s(p)])));
            }
            entries.extend(extra);
            Y::Map(entries)
        })
        .boxed()
}

/// A stage the loader takes, with a few entries of any kind added.
fn sound_stage() -> BoxedStrategy<Y> {
    (
        select(PROVIDERS),
        select(
            &[
                "192.168.56.0/27",
                "10.0.0.0/24",
                "172.16.0.0/16",
                "192.168.1.0/29",
            ][..],
        ),
        0..6u8,
        any::<bool>(),
        proptest::collection::vec((names(&STAGE_KEYS), leafy(scalar_y())), 0..3),
    )
        .prop_map(|(provider, cidr, hosts, separate, extra)| {
            let mut entries = vec![
                ("provider".to_string(), Y::s(provider)),
                ("cidr".to_string(), Y::s(cidr)),
                ("number_of_hosts".to_string(), Y::Scalar(hosts.to_string())),
                (
                    "separate_repository".to_string(),
                    Y::Scalar(separate.to_string()),
                ),
            ];
            entries.extend(extra);
            Y::Map(entries)
        })
        .boxed()
}

fn hive_doc() -> BoxedStrategy<Y> {
    (
        plugin("hive_inventory"),
        prop_oneof![3 => "[a-z]{1,8}(\\.[a-z]{2,5})?", 1 => scalar()],
        proptest::collection::vec(
            (
                names(&StageName::NAMES),
                prop_oneof![2 => sound_stage(), 1 => leafy(stage())],
            ),
            0..4,
        ),
        sometimes(proptest::collection::vec((any_key(), value()), 1..3)),
    )
        .prop_map(|(plugin, name, stages, extra)| {
            let mut doc = vec![
                ("plugin".to_string(), Y::s(plugin)),
                ("name".to_string(), Y::Scalar(name)),
                ("stages".to_string(), Y::Map(stages)),
            ];
            doc.extend(extra);
            Y::Map(doc)
        })
        .boxed()
}

fn volume() -> BoxedStrategy<Y> {
    let drbd = entries(names(&DRBD_KEYS), leafy(scalar_y()), 6);
    let key_value = prop_oneof![
        5 => (names(&VOLUME_KEYS), leafy(scalar_y())),
        1 => (Just("drbd".to_string()), leafy(drbd)),
    ];
    leafy(
        proptest::collection::vec(key_value, 0..7)
            .prop_map(Y::Map)
            .boxed(),
    )
}

fn service() -> BoxedStrategy<Y> {
    let image = leafy(entries(names(IMAGE_PARAMS), leafy(scalar_y()), 5));
    let key_value = prop_oneof![
        6 => (names(&SERVICE_PARAMS[..]), leafy(scalar_y())),
        2 => (Just("volumes".to_string()), seq(volume())),
        2 => (Just("ports".to_string()), seq(scalar_y())),
        1 => (Just("image".to_string()), image),
        1 => (Just("available_on".to_string()), seq(scalar_y())),
    ];
    proptest::collection::vec(key_value, 0..8)
        .prop_map(Y::Map)
        .boxed()
}

fn services_doc() -> BoxedStrategy<Y> {
    let network = leafy(entries(names(NETWORK_KEYS), value(), 4));
    (
        plugin("hive_services"),
        proptest::collection::vec(
            (
                names(&["db", "web", "app", "powerdns"]),
                prop_oneof![2 => sound_service(), 1 => leafy(service())],
            ),
            0..4,
        ),
        proptest::collection::vec((names(&["front", "back"]), network), 0..2),
    )
        .prop_map(|(plugin, services, networks)| {
            Y::map([
                ("plugin", Y::s(plugin)),
                ("services", Y::Map(services)),
                ("networks", Y::Map(networks)),
            ])
        })
        .boxed()
}

fn vars_doc() -> BoxedStrategy<Y> {
    let template = template_scalar().prop_map(Y::Scalar).boxed();
    entries(
        names(VAR_NAMES),
        leafy(prop_oneof![template, scalar_y()].boxed()),
        6,
    )
}

/// The files of a project's `inventory/` directory (relative path, text).
type Files = Vec<(String, String)>;

fn read_tree(dir: &Path, rel: &str, out: &mut Files) {
    let Ok(entries) = std::fs::read_dir(dir.join(rel)) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if p.is_dir() {
            read_tree(dir, &rel, out);
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            out.push((rel, text));
        }
    }
}

/// The inventories of the conformance fixtures and of the quickstart.
static FIXTURES: LazyLock<Vec<Files>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs = vec![root.join("examples/quickstart/inventory")];
    let fixtures = root.join("tests/fixtures/inventory");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("inventory")))
                .collect()
        })
        .unwrap_or_default();
    cases.sort();
    dirs.extend(cases.into_iter().filter(|d| d.is_dir()));
    dirs.iter()
        .map(|d| {
            let mut files = Vec::new();
            read_tree(d, "", &mut files);
            files
        })
        .collect()
});

/// The keys of the mappings at `path` (`*`: every entry) in the fixtures.
fn fixture_keys(path: &[&str]) -> Vec<String> {
    fn walk(v: &serde_yaml::Value, path: &[&str], out: &mut Vec<String>) {
        let Some((first, rest)) = path.split_first() else {
            for k in v.as_mapping().into_iter().flat_map(|m| m.keys()) {
                if let Some(k) = k.as_str().filter(|k| !out.iter().any(|o| o == k)) {
                    out.push(k.to_string());
                }
            }
            return;
        };
        match (v, *first) {
            (serde_yaml::Value::Mapping(m), "*") => m.values().for_each(|c| walk(c, rest, out)),
            (serde_yaml::Value::Sequence(s), "*") => s.iter().for_each(|c| walk(c, rest, out)),
            (v, key) => v.get(key).into_iter().for_each(|c| walk(c, rest, out)),
        }
    }
    let mut out = Vec::new();
    for (_, text) in FIXTURES.iter().flatten() {
        if let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(text) {
            walk(&v, path, &mut out);
        }
    }
    out
}

/// A fixture with its files' trees and texts edited.
fn mutated_fixture() -> BoxedStrategy<Files> {
    let line = prop_oneof![
        template_scalar().prop_map(|t| format!("  x: {t}")),
        (any_key(), scalar()).prop_map(|(k, v)| format!("{k}: {v}")),
        "\\PC{0,20}",
    ];
    (
        0..FIXTURES.len(),
        any::<usize>(),
        proptest::collection::vec(tree_edit(any_key(), leafy(scalar_y())), 0..5),
        proptest::collection::vec(text_edit(line), 0..3),
    )
        .prop_map(|(f, which, tree_edits, text_edits)| {
            let mut files = FIXTURES[f].clone();
            if let Some(i) = which.checked_rem(files.len()) {
                let text = &mut files[i].1;
                *text = mutate(text, &tree_edits, &text_edits);
            }
            files
        })
        .boxed()
}

fn mutate(text: &str, tree_edits: &[TreeEdit], text_edits: &[TextEdit]) -> String {
    let edited = match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(v) if !tree_edits.is_empty() => apply_tree_edits(from_value(&v), tree_edits).text(),
        _ => text.to_string(),
    };
    apply_text_edits(&edited, text_edits)
}

fn generated_project() -> BoxedStrategy<Files> {
    let line = prop_oneof![
        (any_key(), scalar()).prop_map(|(k, v)| format!("{k}: {v}")),
        "\\PC{0,20}"
    ];
    (
        hive_doc(),
        services_doc(),
        proptest::option::of(vars_doc()),
        sometimes(proptest::collection::vec(text_edit(line), 1..3)),
    )
        .prop_map(|(hive, services, vars, edits)| {
            let mut files = vec![
                (
                    "hive.yml".to_string(),
                    apply_text_edits(&hive.text(), &edits),
                ),
                ("services.yml".to_string(), services.text()),
            ];
            if let Some(v) = vars {
                files.push(("group_vars/all.yml".to_string(), v.text()));
            }
            files
        })
        .boxed()
}

/// Loads the project of `files`; problems in a file name a line of it, and
/// a project that loads renders every variable of two hosts.
fn load_project(files: Files) -> Check {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let inventory = dir.path().join("inventory");
    for (rel, text) in &files {
        let path = inventory.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
    }
    let project = match ProjectLoader::new(dir.path()).load() {
        Ok(p) => p,
        Err(errors) => {
            if errors.is_empty() {
                return Err("an Err without problems".into());
            }
            for e in &errors {
                check_location(e, &inventory)?;
            }
            return Ok(());
        }
    };
    let _ = project.to_ansible_json();
    let site = SiteBuilder::new(&project).build();
    let templar = Templar::new(project.root_dir());
    for host in project.hosts().take(2) {
        let vars = site
            .vars_for(host)
            .ok_or_else(|| format!("no variables for host {host}"))?;
        let names: Vec<String> = vars.names().take(40).map(str::to_string).collect();
        for name in names {
            if let Err(e) = templar.render_str(&format!("{{{{ {name} }}}}"), &vars) {
                let _ = e.full_message();
            }
        }
    }
    Ok(())
}

/// A problem of the inventory names a file of it and, unless it is about
/// the whole directory, a line.
fn check_location(e: &Error, inventory: &Path) -> Check {
    let Some(loc) = e.location() else {
        return Err(format!("a problem without a location: {e}"));
    };
    if !loc.file.starts_with(inventory) {
        return Err(format!("a problem outside the inventory: {e}"));
    }
    if loc.line == 0 && loc.file != inventory {
        return Err(format!("a problem without a line: {e}"));
    }
    Ok(())
}

#[test]
fn fuzz_loader_generated_projects() {
    fuzz(
        "inventory loader, generated",
        96,
        generated_project(),
        load_project,
    );
}

#[test]
fn fuzz_loader_mutated_fixtures() {
    fuzz(
        "inventory loader, mutated fixtures",
        96,
        mutated_fixture(),
        load_project,
    );
}

#[test]
fn fixtures_are_read() {
    assert!(FIXTURES.len() > 10, "{} fixtures", FIXTURES.len());
    assert!(
        FIXTURES
            .iter()
            .all(|f| f.iter().any(|(p, _)| p == "hive.yml"))
    );
}

// ---- the template engine -----------------------------------------------

static LOOKUP_ROOT: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}")));

fn variables() -> BoxedStrategy<Vec<(String, Y)>> {
    let value = prop_oneof![
        3 => template_scalar().prop_map(Y::Scalar),
        2 => scalar_y(),
        1 => value(),
    ];
    proptest::collection::vec((names(VAR_NAMES), value), 0..6).boxed()
}

/// Renders a template in every way the engine offers, with variables that
/// may refer to each other.
fn render((template, vars): (String, Vec<(String, Y)>)) -> Check {
    let mut scope = Vars::new();
    for (name, v) in vars {
        let text = v.text();
        let value = serde_yaml::from_str(&text).unwrap_or(serde_yaml::Value::String(text));
        scope.insert(name, value);
    }
    let templar = Templar::new(LOOKUP_ROOT.path());
    let results = [
        templar.render_str(&template, &scope).map(|_| ()),
        templar.render_text(&template, &scope).map(|_| ()),
        templar.is_true(&template, &scope).map(|_| ()),
        templar
            .render_value(&serde_yaml::Value::String(template.clone()), &scope)
            .map(|_| ()),
    ];
    for r in results {
        if let Err(e) = r {
            if e.full_message().is_empty() {
                return Err("an error without a message".into());
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_template_engine() {
    fuzz(
        "template engine",
        256,
        (garbled_template(), variables()),
        render,
    );
}

// ---- inputs that failed once -------------------------------------------

/// Renders `template` as [`render`] does, with no variables.
fn render_alone(template: &str) {
    if let Err(e) = support::bounded((template.to_string(), Vec::new()), render) {
        panic!("{template:?}: {e}");
    }
}

#[test]
fn condition_with_a_variable_end_is_a_syntax_error() {
    // minijinja's expression lexer panicked ("empty lexer stack")
    render_alone("-\t}}{{ (0 + 0 | default(0)) }}");
    let templar = Templar::new(LOOKUP_ROOT.path());
    let e = templar
        .is_true("1 }} 2", &Vars::new())
        .expect_err("not an expression");
    assert!(e.to_string().contains("at character 3"), "{e}");
    for fine in ["{'a': {'b': 1}} == {}", "'}}' == '}}'", "x is defined }}"] {
        let r = templar.is_true(fine, &Vars::new());
        assert_eq!(
            fine.ends_with("}}") && !fine.ends_with("'}}'"),
            r.is_err(),
            "{fine}: {r:?}"
        );
    }
}

#[test]
fn loops_and_long_sequences_are_bounded() {
    // `range(100000)` in `range(100000)` ran for hours; `[1] * 10**9` is a
    // lazy sequence that filters and the output made a list of
    let templar = Templar::new(LOOKUP_ROOT.path());
    let vars = Vars::new();
    for template in [
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% for a in [1] * 10**9 %}{% endfor %}",
        "{{ [1] * 10**9 }}",
        "{{ ([1] * 10**9) | list | length }}",
        "{{ ([1] * 10**9) | join(',') }}",
        "{{ ([1] * 10**9) | unique }}",
        "{{ ([1] * 10**9) | union([2]) }}",
        "{{ ([1] * 10**9) | to_json }}",
    ] {
        let start = std::time::Instant::now();
        let r = templar.render_text(template, &vars);
        assert!(r.is_err(), "{template} rendered");
        assert!(
            start.elapsed() < support::TIME_BOUND,
            "{template}: {:?}",
            start.elapsed()
        );
    }
    assert_eq!(
        templar
            .render_str("{{ ([1] * 10**5) | list | length }}", &vars)
            .map_err(|e| e.to_string()),
        Ok(serde_yaml::Value::from("100000"))
    );
}

#[test]
fn unique_of_long_lists_is_fast() {
    // `range(100000) | unique` compared every pair of items: minutes
    let templar = Templar::new(LOOKUP_ROOT.path());
    let vars = Vars::new();
    let start = std::time::Instant::now();
    let r = templar.render_str(
        "{{ (range(100000) | list + range(50000) | list) | unique | length }}",
        &vars,
    );
    assert_eq!(r.map_err(|e| e.to_string()), Ok("100000".into()));
    let r = templar.render_str(
        "{{ (range(100000) | map('string') | list + ['1']) | unique | length }}",
        &vars,
    );
    assert_eq!(r.map_err(|e| e.to_string()), Ok("100000".into()));
    assert!(
        start.elapsed() < support::TIME_BOUND,
        "{:?}",
        start.elapsed()
    );
    let mixed = templar.render_str("{{ [1, '1', 1, 'a', 'a', 2.0, 2] | unique }}", &vars);
    assert_eq!(
        mixed.map_err(|e| e.to_string()),
        Ok(serde_yaml::from_str("[1, '1', 'a', 2.0]").expect("YAML"))
    );
}
