//! Loading, validating and printing the inventory of the pdns example and of
//! a generated large project (1,000 services, 100 hosts per stage).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use hive_inventory::ProjectLoader;

fn pdns() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/inventory/pdns")
}

/// Writes a project with `services` services and `hosts` servers per stage.
pub fn generate(root: &Path, services: usize, hosts: usize) {
    let inv = root.join("inventory");
    std::fs::create_dir_all(inv.join("group_vars")).unwrap();
    let mut hive = String::from("plugin: hive_inventory\nname: large.example\nstages:\n");
    for (stage, net) in [("private", 10), ("staging", 11), ("production", 12)] {
        let _ = write!(
            hive,
            "  {stage}:\n    provider: prepared\n    number_of_hosts: {hosts}\n    cidr: 10.{net}.0.0/16\n    memory_size: 4096\n"
        );
    }
    std::fs::write(inv.join("hive.yml"), hive).unwrap();
    let mut svc = String::from("plugin: hive_services\nservices:\n");
    for i in 0..services {
        let _ = write!(
            svc,
            "  svc{i}:\n    image: registry.example/app{i}:1.0\n    replicas: 2\n    environment:\n      DB: \"{{{{ db_password }}}}\"\n      INDEX: \"{i}\"\n    ports:\n    - \"{}\"\n    labels: {{tier: app}}\n",
            8000 + i % 1000
        );
        if i < 200 {
            let _ = write!(
                svc,
                "    volumes:\n    - source: data{i}\n      target: /data\n      type: volume\n      drbd: {{size: 1G, fstype: xfs}}\n"
            );
        }
    }
    std::fs::write(inv.join("services.yml"), svc).unwrap();
    std::fs::write(
        inv.join("group_vars/all.yml"),
        "db_password: secret\nhive_timezone: Asia/Tokyo\n",
    )
    .unwrap();
}

fn load_and_print(root: &Path) -> usize {
    let project = ProjectLoader::new(root).load().expect("valid project");
    serde_json::to_string_pretty(&project.to_ansible_json())
        .unwrap()
        .len()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("inventory");
    let pdns = pdns();
    group.bench_function("pdns", |b| b.iter(|| load_and_print(&pdns)));
    let large = tempfile::tempdir().unwrap();
    generate(large.path(), 1000, 100);
    group.sample_size(20);
    group.bench_function("large_1000_services_100_hosts", |b| {
        b.iter(|| load_and_print(large.path()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
