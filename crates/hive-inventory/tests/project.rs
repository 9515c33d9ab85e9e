//! Loading projects through the library API.

use std::path::{Path, PathBuf};

use hive_inventory::{
    Error, Origin, Project, ProjectLoader, Protocol, ServerRole, ServiceImage, StageName,
    VolumeKind,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/inventory")
}

fn project_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join("inventory").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const HIVE: &str = "plugin: hive_inventory\nname: t.example\nstages:\n  private:\n    provider: docker\n    separate_repository: SEP\n    number_of_hosts: 3\n    cidr: 192.168.201.0/24\n";

#[test]
fn yaml_1_1_booleans_are_accepted_where_a_boolean_is_expected() {
    for (word, separate) in [
        ("yes", true),
        ("no", false),
        ("True", true),
        ("off", false),
        ("On", true),
        ("FALSE", false),
    ] {
        let dir = project_with(&[("hive.yml", &HIVE.replace("SEP", word))]);
        let p = Project::load(dir.path()).unwrap_or_else(|e| panic!("{word}: {e}"));
        let stage = p.stage_def(StageName::Private).unwrap();
        assert_eq!(stage.separate_repository, separate, "{word}");
        let hives = p.servers().iter().filter(|s| s.role.is_hive()).count();
        assert_eq!(hives, if separate { 2 } else { 3 }, "{word}");
    }
    let dir = project_with(&[("hive.yml", &HIVE.replace("SEP", "'yes'"))]);
    let err = Project::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("must be a boolean"), "{err}");
}

#[test]
fn typed_model_of_pdns() {
    let p = ProjectLoader::new(fixtures().join("pdns"))
        .inventory(fixtures().join("pdns/inventory"))
        .load()
        .unwrap();
    assert_eq!(p.name(), "pdns");
    let staging: Vec<_> = p.servers_of(StageName::Staging).collect();
    assert_eq!(staging.len(), 4);
    assert_eq!(staging[3].role, ServerRole::Repository);
    assert_eq!(staging[1].subnet, "subnet-b");
    assert_eq!(staging[1].private_ip.to_string(), "192.168.0.69");
    let private: Vec<_> = p.servers_of(StageName::Private).collect();
    assert_eq!(private[0].role, ServerRole::HiveAndRepository);
    assert_eq!(
        p.first_hive(StageName::Staging).unwrap().name,
        "s-hive0.pdns"
    );

    let pdnsdb = p.services().iter().find(|s| s.name == "pdnsdb").unwrap();
    assert!(
        matches!(&pdnsdb.image, Some(ServiceImage::Build(b)) if b.from == "mariadb:10.4" && b.host == "image_pdnsdb")
    );
    let powerdns = p.services().iter().find(|s| s.name == "powerdns").unwrap();
    assert_eq!(powerdns.ports.len(), 2);
    assert_eq!(powerdns.ports[1].protocol, Protocol::Udp);
    assert_eq!(powerdns.ports[1].published_port, 53);

    let vol = p
        .volumes()
        .iter()
        .find(|v| v.name == "pdnsdb_data")
        .unwrap();
    assert!(
        matches!(&vol.kind, VolumeKind::Drbd { device_id: 1, fstype: Some(f), .. } if f == "xfs")
    );
    assert_eq!(
        vol.available_on,
        vec![StageName::Production, StageName::Staging]
    );
    assert!(
        p.networks()
            .iter()
            .any(|n| n.name == "hive_default_network")
    );
}

#[test]
fn variables_are_merged_with_origins() {
    let case = fixtures().join("v10-networks-groupvars-multifile");
    let p = ProjectLoader::new(&case)
        .inventory(case.join("inventory"))
        .load()
        .unwrap();
    let front = p.host_vars("front").unwrap();
    let layered = &front["layered"];
    assert_eq!(layered.value.as_str(), Some("from-host_vars"));
    assert!(
        matches!(&layered.origin, Origin::HostVars { host, line: Some(1), .. } if host == "front")
    );
    let back = p.host_vars("back").unwrap();
    assert_eq!(back["layered"].value.as_str(), Some("from-services"));
    assert!(
        matches!(&back["layered"].origin, Origin::GroupVars { group, .. } if group == "services")
    );
    assert!(matches!(
        &back["hive_image"].origin,
        Origin::Plugin { line: Some(_), .. }
    ));
    let hive0 = p.host_vars("hive0.net").unwrap();
    assert_eq!(hive0["layered"].value.as_str(), Some("from-hives"));
    assert!(p.host_vars("nonexistent").is_none());

    let groups = p.groups();
    assert!(
        groups["servers"].contains(&"hive3.net".to_string()),
        "descendants' hosts"
    );
    assert!(groups["all"].contains(&"front".to_string()));
    assert_eq!(
        p.group_names("hive0.net"),
        vec!["first_hive", "hives", "hosts", "production", "servers"]
    );
}

#[test]
fn errors_name_file_line_column_and_suggestion() {
    let dir = project_with(&[
        (
            "hive.yml",
            "plugin: hive_inventory\nname: t\nstages:\n  private:\n    provder: docker\n    cidr: 10.0.0.0/24\n",
        ),
        (
            "svc.yml",
            "plugin: hive_services\nservices:\n  a:\n    image: x\n    volumes:\n    - {source: d, target: /d, drbd: {size: 1G, fstype: zfs, device_id: 300}}\n",
        ),
    ]);
    let errors = Project::load(dir.path()).unwrap_err();
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let find = |needle: &str| {
        all.iter()
            .find(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in {all:#?}"))
            .clone()
    };
    assert!(find("unknown parameter provder").contains("did you mean `provider`?"));
    assert!(find("provider must be specified").contains("hive.yml:4:3"));
    assert!(find("unknown fstype").contains("services.a.volumes[0].drbd.fstype"));
    assert!(find("device_id must be an integer from 1 to 255").contains("svc.yml:6:"));
    assert_eq!(all.len(), 4, "{all:#?}");
    let located = errors.iter().filter_map(Error::location).count();
    assert_eq!(located, 4);
    assert!(!dir.path().join(".hive").exists());
}

#[test]
fn drbd_ids_and_ports_are_allocated_and_kept() {
    let svc = "plugin: hive_services\nservices:\n  a:\n    image: x\n    ports: ['80', '81:81']\n    volumes:\n    - {source: d1, target: /d, drbd: {size: 1G, fstype: xfs}}\n    - {source: d2, target: /e, drbd: {size: 1G, fstype: xfs, device_id: 1}}\n";
    let dir = project_with(&[("hive.yml", &HIVE.replace("SEP", "no")), ("svc.yml", svc)]);
    let err = Project::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("duplicate device_id 1"), "{err}");

    let svc = svc.replace("device_id: 1", "device_id: 7");
    let dir = project_with(&[("hive.yml", &HIVE.replace("SEP", "no")), ("svc.yml", &svc)]);
    let mut p = Project::load(dir.path()).unwrap();
    let ids: Vec<u8> = p
        .volumes()
        .iter()
        .filter_map(|v| match v.kind {
            VolumeKind::Drbd { device_id, .. } => Some(device_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![1, 7]);
    let ports: Vec<u16> = p.services()[0]
        .ports
        .iter()
        .map(|p| p.published_port)
        .collect();
    assert_eq!(ports, vec![61001, 81]);
    assert!(p.save_persistents().unwrap());
    assert!(!p.save_persistents().unwrap());

    // A new volume placed first keeps the others' ids and takes a free one.
    let svc2 = svc.replace(
        "    volumes:\n",
        "    volumes:\n    - {source: d0, target: /c, drbd: {size: 1G, fstype: xfs}}\n",
    );
    std::fs::write(dir.path().join("inventory/svc.yml"), svc2).unwrap();
    let p = Project::load(dir.path()).unwrap();
    let d0 = p.volumes().iter().find(|v| v.name == "d0").unwrap();
    assert!(matches!(d0.kind, VolumeKind::Drbd { device_id: 2, .. }));
    let d1 = p.volumes().iter().find(|v| v.name == "d1").unwrap();
    assert!(matches!(d1.kind, VolumeKind::Drbd { device_id: 1, .. }));
}

/// Truncated and corrupted inputs give errors, never a panic.
#[test]
fn no_panic_on_mangled_input() {
    let sources: Vec<(String, String)> = [
        "pdns",
        "v06-images-standalone",
        "v07-volumes",
        "v10-networks-groupvars-multifile",
    ]
    .iter()
    .flat_map(|case| {
        let dir = fixtures().join(case).join("inventory");
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                p.is_file().then(|| {
                    (
                        p.file_name().unwrap().to_string_lossy().to_string(),
                        std::fs::read_to_string(&p).unwrap(),
                    )
                })
            })
            .collect::<Vec<_>>()
    })
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv).unwrap();
    let mut runs = 0;
    for (name, text) in &sources {
        let bytes = text.as_bytes();
        let step = (bytes.len() / 40).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            for variant in 0..3 {
                let mut mangled = bytes[..cut].to_vec();
                match variant {
                    0 => {}
                    1 => {
                        mangled.extend_from_slice(b": [{\n");
                        mangled.extend_from_slice(&bytes[cut..]);
                    }
                    _ => {
                        mangled.extend_from_slice(b"\n  - 53:53\n  ~: yes\n");
                        mangled.extend_from_slice(&bytes[cut..]);
                    }
                }
                let _ = std::fs::remove_dir_all(&inv);
                std::fs::create_dir_all(&inv).unwrap();
                if name != "hive.yml" {
                    std::fs::write(inv.join("hive.yml"), HIVE.replace("SEP", "no")).unwrap();
                }
                std::fs::write(inv.join(name), &mangled).unwrap();
                let _ = Project::load(dir.path());
                runs += 1;
            }
        }
    }
    assert!(runs > 300, "{runs} runs");
    assert!(!dir.path().join(".hive").exists(), "loading never writes");
}

#[test]
fn standalone_service_gets_implicit_volumes_capabilities_and_command() {
    let svc = "plugin: hive_services\nservices:\n  sa:\n    standalone: yes\n    image: {from: 'almalinux:9', roles: [r]}\n";
    let dir = project_with(&[("hive.yml", &HIVE.replace("SEP", "no")), ("svc.yml", svc)]);
    let p = Project::load(dir.path()).unwrap();
    let sa = &p.services()[0];
    assert!(sa.standalone);
    let targets: Vec<&str> = sa.mounts.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(targets, vec!["/run", "/tmp", "/sys/fs/cgroup"]);
    let caps = sa.params["cap_add"].as_sequence().unwrap();
    assert_eq!(caps.len(), 5);
    let image_vars = p.host_vars("image_sa").unwrap();
    assert_eq!(
        image_vars["hive_privileged"].value,
        serde_yaml::Value::Bool(true)
    );
}

#[test]
fn provider_names_are_checked_against_the_given_list_only() {
    let custom = "plugin: hive_inventory\nname: t.example\nstages:\n  private:\n    provider: script\n    script: /usr/local/bin/my-cloud\n    cidr: 192.168.201.0/24\n";
    let dir = project_with(&[("hive.yml", custom)]);
    // Without a list, the name is text and the provider's settings are data.
    let p = ProjectLoader::new(dir.path()).load().unwrap();
    let stage = p.stage_def(StageName::Private).unwrap();
    assert_eq!(stage.provider, "script");
    assert_eq!(
        stage.attributes.get("script").and_then(|v| v.as_str()),
        Some("/usr/local/bin/my-cloud")
    );
    // The provider is given its own settings (the key no table lists), not
    // those hive reads for every provider (`provider`, `cidr`).
    let own: Vec<&str> = stage.provider_settings().map(|(k, _)| k.as_str()).collect();
    assert_eq!(own, ["script"]);
    // A list that has the name accepts it; one that has not names the line.
    ProjectLoader::new(dir.path())
        .providers(["docker", "script"])
        .load()
        .unwrap();
    let err = ProjectLoader::new(dir.path())
        .providers(["docker", "vagrant"])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hive.yml:5:15: stages.private.provider: unknown provider script"),
        "{err}"
    );
    assert!(err.contains("docker, vagrant"), "{err}");
    // The settings of a provider the inventory has rules for are still checked.
    let typo = HIVE.replace("SEP", "true") + "    scritp: x\n";
    let dir = project_with(&[("hive.yml", &typo)]);
    let err = Project::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("unknown parameter scritp in stage private"),
        "{err}"
    );
}
