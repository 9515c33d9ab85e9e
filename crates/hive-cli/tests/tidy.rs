//! The workspace's own rules, read from its sources (as rust-analyzer's
//! tidy tests do): no library or binary source file over 1,000 lines, and
//! no import circle between the files of one crate (a file names another
//! with `crate::`, `super::` or `self::`, and that one names it back, in
//! one or more steps). A failure names the file or the circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1000;

fn workspace_crates() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 8, "crates found: {dirs:?}");
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under `src` (`load/stages.rs` is
/// `load::stages`; `lib.rs`, `main.rs` and `mod.rs` stand for their folder).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("lib" | "main" | "mod")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and its `#[cfg(test)] mod tests`
/// block (tests may use anything).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths the code names from `crate`, `super` or `self`, resolved
/// against `module`.
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start).map(|i| i + from) {
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let tail: String = code[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segs: Vec<&str> = tail.split("::").filter(|s| !s.is_empty()).collect();
            let mut base: Vec<String> = match segs.first() {
                Some(&"crate") => Vec::new(),
                Some(&"self") => module.to_vec(),
                _ => module[..module.len().saturating_sub(1)].to_vec(),
            };
            segs.remove(0);
            while segs.first() == Some(&"super") {
                base.pop();
                segs.remove(0);
            }
            base.extend(segs.iter().map(|s| s.to_string()));
            found.push(base);
        }
    }
    found
}

/// Files (by module path) each file of the crate names, parents and
/// children left out (a module and its submodules are one unit).
fn file_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let edges = graph.entry(module.join("::")).or_default();
        for path in named_paths(module, &code) {
            let target = (1..=path.len())
                .rev()
                .map(|k| &path[..k])
                .find(|p| modules.contains_key(*p));
            let Some(target) = target else { continue };
            let related = target.starts_with(module) || module.starts_with(target);
            if !related {
                edges.insert(target.join("::"));
            }
        }
    }
    graph
}

/// The strongly connected components with more than one file (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut long = Vec::new();
    for krate in workspace_crates() {
        let mut files = Vec::new();
        rust_files(&krate.join("src"), &mut files);
        for f in files {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > MAX_LINES {
                long.push(format!("{} ({n} lines)", f.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these by concern (at most {MAX_LINES} lines a file):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_import_circle_between_the_files_of_a_crate() {
    let mut found = Vec::new();
    for krate in workspace_crates() {
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        for circle in circles(&file_graph(&krate.join("src"))) {
            found.push(format!("{name}: {}", circle.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("load")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod load;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::f;\n").unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub fn f() { super::load::stages::g() }\n",
    )
    .unwrap();
    std::fs::write(src.join("load/mod.rs"), "mod stages;\n").unwrap();
    std::fs::write(
        src.join("load/stages.rs"),
        "// crate::c is only a comment\npub fn g() { crate::a::h() }\n\
         #[cfg(test)]\nmod tests {\n    use crate::lib;\n}\n",
    )
    .unwrap();
    let graph = file_graph(src);
    assert_eq!(
        circles(&graph),
        [vec!["a".to_string(), "b".into(), "load::stages".into()]]
    );
    std::fs::write(src.join("a.rs"), "pub fn h() {}\n").unwrap();
    assert!(circles(&file_graph(src)).is_empty());
}
