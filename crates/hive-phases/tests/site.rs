//! The inventory model mapped into the phases' inputs, on the pdns fixture.

use std::path::{Path, PathBuf};

use hive_inventory::{ProjectLoader, StageName};
use hive_phases::site::StageSite;

fn pdns_copy() -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/inventory/pdns");
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(dir.path().join("pdns"))
        .status()
        .unwrap();
    assert!(status.success());
    let root = dir.path().join("pdns");
    (dir, root)
}

#[test]
fn private_vagrant_stage_maps_to_one_repository_hive() {
    let (_tmp, root) = pdns_copy();
    let project = ProjectLoader::new(&root)
        .stage(StageName::Private)
        .load()
        .unwrap();
    let site = StageSite::new(&project).unwrap();
    let spec = site.provider_stage().unwrap();
    assert_eq!(spec.site, "pdns");
    assert_eq!(spec.stage, "private");
    assert_eq!(spec.provider, "vagrant");
    assert_eq!(spec.cidr.to_string(), "192.168.56.0/27");
    assert_eq!(spec.admin.user, "vagrant");
    let names: Vec<_> = spec.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["p-hive0.pdns"]);
    // separate_repository: False makes the only hive the repository server.
    assert_eq!(spec.servers[0].role, hive_provider::ServerRole::Repository);
    assert_eq!(spec.servers[0].memory_size, Some(4096));
    assert!(spec.attributes.is_empty(), "{:?}", spec.attributes);
    assert!(spec.context_dir.ends_with(".hive/private"));
}

#[test]
fn staging_stage_keeps_provider_attributes_and_sizes() {
    let (_tmp, root) = pdns_copy();
    let project = ProjectLoader::new(&root)
        .stage(StageName::Staging)
        .load()
        .unwrap();
    let site = StageSite::new(&project).unwrap();
    let spec = site.provider_stage().unwrap();
    assert_eq!(spec.admin.user, "ec2-user");
    assert_eq!(spec.servers.len(), 4);
    let repo = spec.repository_server().unwrap();
    assert_eq!(repo.name, "s-hive3.pdns");
    assert_eq!(repo.mirrored_disk_size, None);
    assert_eq!(spec.servers[0].mirrored_disk_size, Some(20));
    assert_eq!(spec.servers[0].disk_size, Some(20));
    let mut keys: Vec<_> = spec.attributes.keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["instance_type", "region", "repository_instance_type"]
    );
    // The subnets and each server's subnet and zone, for cloud providers.
    let subnets: Vec<_> = spec
        .subnets
        .iter()
        .map(|s| (s.name.as_str(), s.cidr.to_string(), s.zone.as_deref()))
        .collect();
    assert_eq!(
        subnets,
        [
            (
                "subnet-a",
                "192.168.0.0/26".to_string(),
                Some("ap-northeast-1d")
            ),
            (
                "subnet-b",
                "192.168.0.64/26".to_string(),
                Some("ap-northeast-1b")
            ),
            (
                "subnet-c",
                "192.168.0.128/26".to_string(),
                Some("ap-northeast-1c")
            ),
        ]
    );
    assert_eq!(spec.servers[1].subnet.as_deref(), Some("subnet-b"));
    assert_eq!(spec.servers[1].zone.as_deref(), Some("ap-northeast-1b"));
    assert_eq!(repo.subnet.as_deref(), Some("subnet-a"));

    let drbd = site.drbd_stage().unwrap();
    let hives: Vec<_> = drbd.hives().iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hives, ["s-hive0.pdns", "s-hive1.pdns", "s-hive2.pdns"]);
    let volumes = site.drbd_volumes().unwrap();
    let mut names: Vec<_> = volumes.iter().map(|v| v.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "letsencrypt_data",
            "pdnsadmin_data",
            "pdnsdb_data",
            "proxy_config"
        ]
    );
    assert!(volumes.iter().all(|v| v.device_id >= 1));
    let cfg = volumes.iter().find(|v| v.name == "proxy_config").unwrap();
    assert_eq!(cfg.size, "80M");
}

#[test]
fn private_stage_has_no_drbd_volumes() {
    let (_tmp, root) = pdns_copy();
    let project = ProjectLoader::new(&root).load().unwrap();
    let site = StageSite::new(&project).unwrap();
    assert!(site.drbd_volumes().unwrap().is_empty());
}

#[test]
fn services_render_into_swarm_definitions() {
    let (_tmp, root) = pdns_copy();
    let project = ProjectLoader::new(&root)
        .stage(StageName::Staging)
        .load()
        .unwrap();
    let site = StageSite::new(&project).unwrap();
    let services = site.service_definitions().unwrap();
    let names: Vec<_> = services.keys().map(String::as_str).collect();
    assert!(
        names.contains(&"powerdns") && names.contains(&"pdnsdb"),
        "{names:?}"
    );
    let powerdns = &services["powerdns"];
    // `{{ db_password }}` is rendered from the password file lookup.
    let pw = powerdns.environment["MYSQL_PASSWORD"].to_docker_string();
    assert!(!pw.contains("{{") && pw.len() == 15, "{pw}");
    assert_eq!(powerdns.ports.len(), 2);
    // A built image becomes a build description.
    let pdnsdb = &services["pdnsdb"];
    assert!(
        matches!(pdnsdb.image, Some(hive_swarm::ImageSource::Build(_))),
        "{:?}",
        pdnsdb.image
    );

    let ctx = site.swarm_stage().unwrap();
    assert_eq!(ctx.registry, "s-hive3.pdns:5000");
    assert_eq!(
        ctx.logging.as_ref().unwrap().repository_server,
        "s-hive3.pdns"
    );
    assert_eq!(ctx.servers.len(), 4);
    assert_eq!(ctx.servers[0].private_ip.to_string(), "192.168.0.5");
}

/// Every service parameter of the inventory's table that is marked as
/// deployed changes hive-swarm's spec when set to its example value, and the
/// others are accepted by hive-swarm's definition: the bridge between the
/// inventory and hive-swarm goes by key name, so a parameter one side does
/// not know fails here rather than at deploy time.
#[test]
fn every_service_parameter_reaches_the_deployed_spec() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory");
    std::fs::create_dir_all(&inventory).unwrap();
    std::fs::write(
        inventory.join("hive.yml"),
        "plugin: hive_inventory\nname: params\nstages:\n  private:\n    provider: vagrant\n    cidr: 192.168.56.0/27\n",
    )
    .unwrap();
    let mut services =
        String::from("plugin: hive_services\nservices:\n  base:\n    image: nginx:1.25\n");
    for p in hive_inventory::SERVICE_PARAMETERS {
        services.push_str(&format!("  p_{}:\n", p.name));
        if p.name != "image" {
            services.push_str("    image: nginx:1.25\n");
        }
        services.push_str(&format!("    {}: {}\n", p.name, p.example));
    }
    std::fs::write(inventory.join("services.yml"), services).unwrap();
    let project = ProjectLoader::new(dir.path())
        .stage(StageName::Private)
        .load()
        .unwrap();
    let site = StageSite::new(&project).unwrap();
    let definitions = site.service_definitions().unwrap();
    let stage = site.swarm_stage().unwrap();
    let spec = |name: &str| {
        let spec = hive_swarm::service_spec("web", &definitions[name], &stage, None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::to_value(spec).unwrap()
    };
    let base = spec("base");
    for p in hive_inventory::SERVICE_PARAMETERS {
        let name = format!("p_{}", p.name);
        let changed = spec(&name) != base;
        assert_eq!(
            changed,
            p.deployed,
            "{}: deployed is {} in the table, but setting it to {} {} the spec",
            p.name,
            p.deployed,
            p.example,
            if changed {
                "changes"
            } else {
                "does not change"
            }
        );
    }
}
