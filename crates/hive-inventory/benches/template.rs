//! Rendering every variable of every host of the pdns-like template fixture
//! (tests/fixtures/templates/fixture/project), as `hive vars` does for each
//! host: the site is built afresh each iteration, so nothing is cached
//! between iterations.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use hive_inventory::ProjectLoader;
use hive_inventory::template::{SiteBuilder, Templar};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/templates/fixture/project")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Renders every variable of every host; returns (rendered, undefined).
fn render_all(project: &hive_inventory::Project, templar: &Templar) -> (usize, usize) {
    let site = SiteBuilder::new(project).build();
    let (mut ok, mut undefined) = (0, 0);
    for host in project.hosts() {
        let vars = site.vars_for(host).unwrap();
        for name in vars.names() {
            match templar.render_value(vars.get(name).unwrap(), &vars) {
                Ok(_) => ok += 1,
                Err(e) if e.is_undefined() => undefined += 1,
                Err(e) => panic!("{host}/{name}: {}", e.full_message()),
            }
        }
    }
    (ok, undefined)
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let project = ProjectLoader::new(tmp.path()).load().unwrap();
    let templar = Templar::new(project.root_dir());
    let (ok, undefined) = render_all(&project, &templar);
    eprintln!(
        "{} hosts, {ok} variables rendered, {undefined} undefined by design",
        project.hosts().count()
    );
    c.bench_function("render every variable of every host (pdns fixture)", |b| {
        b.iter(|| render_all(&project, &templar))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
