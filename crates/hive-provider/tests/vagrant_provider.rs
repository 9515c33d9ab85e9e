//! The `vagrant` provider against a recording stand-in for `vagrant` on
//! `PATH` (Vagrant and a hypervisor cannot run here), and its Vagrantfile
//! against a reviewed golden file.

use std::path::{Path, PathBuf};

use hive_provider::{
    Provider, ProviderError, ServerChange, ServerRole, ServerSpec, StageSpec, VagrantProvider,
    provider_for,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vagrant")
}

fn stage(ctx: &Path) -> StageSpec {
    let mut s = StageSpec::new(
        "pdns",
        "private",
        "vagrant",
        "192.168.0.96/27".parse().unwrap(),
        ctx,
    );
    for i in 0..4u8 {
        let role = if i == 3 {
            ServerRole::Repository
        } else {
            ServerRole::Hive
        };
        let mut server = ServerSpec::new(
            format!("p-hive{i}.pdns"),
            role,
            format!("192.168.0.{}", 100 + i).parse().unwrap(),
        );
        server.memory_size = Some(if i == 3 { 4096 } else { 2048 });
        server.cpus = Some(2);
        if i < 3 {
            server.disk_size = Some(20);
            server.mirrored_disk_size = Some(10);
        }
        s.servers.push(server);
    }
    s.attributes.insert("box".into(), "almalinux/9".into());
    s
}

fn provider() -> VagrantProvider {
    let path = format!(
        "{}:{}",
        fixtures().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    VagrantProvider::with_path(path)
}

fn calls(ctx: &Path) -> Vec<String> {
    std::fs::read_to_string(ctx.join("vagrant-calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn vagrantfile_matches_the_reviewed_golden_file() {
    let generated = VagrantProvider::vagrantfile(&stage(Path::new("/tmp/x"))).unwrap();
    let golden = std::fs::read_to_string(fixtures().join("Vagrantfile.golden")).unwrap();
    assert_eq!(generated, golden);
}

#[test]
fn bridge_and_dev_networks() {
    let mut s = stage(Path::new("/tmp/x"));
    s.attributes.insert("bridge".into(), "brHive".into());
    let v = VagrantProvider::vagrantfile(&s).unwrap();
    assert!(v.contains(r#"node.vm.network "public_network", ip: "192.168.0.100", netmask: "255.255.255.224", bridge: "brHive""#), "{v}");
    s.attributes.insert("dev".into(), "br0".into());
    let v = VagrantProvider::vagrantfile(&s).unwrap();
    assert!(v.contains(r#"dev: "br0", type: "bridge""#), "{v}");
    assert!(!v.contains("brHive"));
    assert_eq!(
        provider().validate(&s).unwrap().len(),
        1,
        "both set: a warning"
    );
    s.attributes
        .insert("instance_type".into(), "t3.medium".into());
    let err = provider().validate(&s).unwrap_err().to_string();
    assert!(
        err.contains("stage private: attribute `instance_type`")
            && err.contains("box, bridge, dev"),
        "{err}"
    );
}

#[tokio::test]
async fn up_halt_destroy_and_ssh_config() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join(".hive/private");
    std::fs::create_dir_all(&ctx).unwrap();
    let s = stage(&ctx);
    let p = provider();

    let built = p.build(&s).await.unwrap();
    assert!(
        built
            .servers
            .iter()
            .all(|(_, c)| *c == ServerChange::Created),
        "{built:?}"
    );
    assert_eq!(
        calls(&ctx),
        ["status --machine-readable", "up --provider=libvirt"]
    );
    assert!(ctx.join("Vagrantfile").exists());

    let endpoints = p.endpoints(&s).await.unwrap();
    assert_eq!(endpoints.len(), 4);
    assert_eq!(endpoints[1].address, "192.168.121.41");
    assert_eq!(endpoints[1].user, "vagrant");
    assert_eq!(endpoints[3].role, ServerRole::Repository);
    assert!(
        endpoints[0]
            .key
            .ends_with(".vagrant/machines/p-hive0.pdns/libvirt/private_key")
    );

    let again = p.build(&s).await.unwrap();
    assert!(!again.changed(), "running machines are unchanged");

    let halted = p.halt(&s).await.unwrap();
    assert!(
        halted
            .servers
            .iter()
            .all(|(_, c)| *c == ServerChange::Stopped)
    );
    let restarted = p.build(&s).await.unwrap();
    assert!(
        restarted
            .servers
            .iter()
            .all(|(_, c)| *c == ServerChange::Started)
    );

    let destroyed = p.destroy(&s).await.unwrap();
    assert!(
        destroyed
            .servers
            .iter()
            .all(|(_, c)| *c == ServerChange::Destroyed)
    );
    let log = calls(&ctx);
    assert_eq!(
        &log[log.len() - 2..],
        ["status --machine-readable", "destroy -f"]
    );
    let err = p.endpoints(&s).await.unwrap_err().to_string();
    assert!(
        err.contains("vagrant ssh-config") && err.contains("not yet ready for SSH"),
        "{err}"
    );
}

#[tokio::test]
async fn virtualbox_is_tried_when_libvirt_fails() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().to_path_buf();
    std::fs::write(ctx.join(".no-libvirt"), "").unwrap();
    let s = stage(&ctx);
    provider().build(&s).await.unwrap();
    assert_eq!(
        calls(&ctx),
        [
            "status --machine-readable",
            "up --provider=libvirt",
            "up --provider=virtualbox"
        ]
    );
}

#[tokio::test]
async fn missing_vagrant_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = stage(dir.path());
    let err = VagrantProvider::with_path("/nonexistent")
        .build(&s)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Program { .. }));
    assert!(err.to_string().contains("is Vagrant installed?"), "{err}");
}

#[test]
fn other_providers_are_not_yet_supported() {
    for (name, ok) in [
        ("docker", true),
        ("prepared", true),
        ("vagrant", true),
        ("aws", false),
        ("gcp", false),
        ("azure", false),
        ("openstack", false),
        ("kickstart", true),
    ] {
        let mut s = stage(Path::new("/tmp/x"));
        s.provider = name.into();
        match provider_for(&s) {
            Ok(p) => {
                assert!(ok, "{name}");
                assert_eq!(p.name(), name);
            }
            Err(e) => {
                assert!(!ok, "{name}");
                assert_eq!(
                    e.to_string(),
                    format!(
                        "stage private: provider `{name}` is not yet supported by hive; supported providers: docker, kickstart, prepared, vagrant"
                    )
                );
            }
        }
    }
    let mut s = stage(Path::new("/tmp/x"));
    s.provider = "vmware".into();
    assert!(
        provider_for(&s)
            .err()
            .unwrap()
            .to_string()
            .contains("unknown provider `vmware`")
    );
}

#[test]
fn a_provider_joins_the_registry_by_name() {
    let mut registry = hive_provider::ProviderRegistry::builtin();
    assert_eq!(
        registry.names(),
        [
            "aws",
            "azure",
            "docker",
            "gcp",
            "kickstart",
            "openstack",
            "prepared",
            "vagrant"
        ]
    );
    let mut s = stage(Path::new("/tmp/x"));
    s.provider = "own".into();
    assert!(registry.provider_for(&s).is_err());
    // Any provider type joins under a name; here the prepared one as "own".
    registry.register("own", || Box::new(hive_provider::PreparedProvider));
    assert!(registry.names().contains(&"own"));
    assert_eq!(registry.provider_for(&s).unwrap().name(), "prepared");
    // Registering a not-yet-supported name makes it supported.
    registry.register("aws", || Box::new(hive_provider::PreparedProvider));
    s.provider = "aws".into();
    assert!(registry.provider_for(&s).is_ok());
    assert_eq!(
        registry.supported(),
        ["aws", "docker", "kickstart", "own", "prepared", "vagrant"]
    );
}
