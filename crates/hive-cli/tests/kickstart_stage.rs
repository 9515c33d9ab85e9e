//! The kickstart provider through the `hive` binary: build-infra writes a
//! kickstart file per server that `ksvalidator` (pykickstart, installed by
//! scripts/setup-machine.sh) accepts for RHEL 8, idempotently, with `-C`
//! listing what it would write; with a source image it writes the
//! installation image with a boot entry per server.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{hive, text};

const SERVERS: [&str; 4] = ["hive0.bare", "hive1.bare", "hive2.bare", "hive3.bare"];

fn ksvalidator() -> PathBuf {
    let path = std::env::var_os("KSVALIDATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/hive-tools/pykickstart/bin/ksvalidator"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-machine.sh (it installs pykickstart)",
        path.display()
    );
    path
}

/// `ksvalidator -v VERSION FILE` for the release the files are written for
/// (RHEL8) and the next one: its output when it refuses the file.
fn validate(file: &Path) -> Result<(), String> {
    for version in [hive_provider::KICKSTART_VERSION, "RHEL9"] {
        let o = Command::new(ksvalidator())
            .args(["-v", version])
            .arg(file)
            .output()
            .expect("run ksvalidator");
        if !o.status.success() {
            return Err(format!("ksvalidator -v {version}: {}", text(&o)));
        }
    }
    Ok(())
}

/// Both outputs of a run that must succeed.
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A project with a production stage on the kickstart provider: three
/// hives and a repository server on bonded interfaces with a VLAN.
fn project(kickstart_extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir_all(root.join("inventory/group_vars")).unwrap();
    std::fs::write(
        root.join("inventory/hive.yml"),
        format!(
            r#"plugin: hive_inventory
name: bare
stages:
  production:
    provider: kickstart
    separate_repository: true
    number_of_hosts: 4
    cidr: 192.0.2.0/24
    memory_size: 4096
    disk_size: 40
    repository_disk_size: 60
    kickstart_config:
{kickstart_extra}      target: sdb
      networks:
      - interface: bond0
        bonding_interfaces: [eth0, eth1]
        ips: [198.51.100.20, 198.51.100.21, 198.51.100.22, 198.51.100.23]
        netmask: 255.255.255.0
        gateway: 198.51.100.1
        nameservers: [198.51.100.1, 198.51.100.2]
      - interface: eth2
        vlanid: 1001
"#
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("inventory/group_vars/all.yml"),
        "hive_timezone: Asia/Tokyo\n",
    )
    .unwrap();
    (dir, root)
}

fn media(root: &Path) -> PathBuf {
    root.join(".hive/production/iso")
}

fn mtimes(paths: &[PathBuf]) -> Vec<std::time::SystemTime> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect()
}

#[test]
fn build_infra_writes_a_valid_kickstart_file_per_server_once() {
    let (_d, root) = project("");
    let run = |args: &[&str]| hive(&root, &[&["-s", "production"], args].concat());
    ok(&run(&["check"]));

    // The plan lists every file and writes nothing.
    let plan = ok(&run(&["build-infra", "-C"]));
    let files: Vec<PathBuf> = SERVERS
        .iter()
        .map(|s| media(&root).join(format!("{}.ks", &s[..5])))
        .collect();
    for f in &files {
        assert!(plan.contains(&format!("{}: create", f.display())), "{plan}");
    }
    assert!(!media(&root).exists(), "{plan}");
    assert!(!root.join(".hive/production/registry_password").exists());

    let first = ok(&run(&["build-infra"]));
    for (s, f) in SERVERS.iter().zip(&files) {
        assert!(
            first.contains(&format!("{}: created", f.display())),
            "{first}"
        );
        assert!(
            first.contains(&format!("{s}: not installed yet")),
            "{first}"
        );
    }
    let ssh_config = std::fs::read_to_string(root.join(".hive/production/ssh_config")).unwrap();
    for s in SERVERS {
        assert!(ssh_config.contains(&format!("Host {s}\n")), "{ssh_config}");
    }

    let password =
        std::fs::read_to_string(root.join(".hive/production/registry_password")).unwrap();
    let public_key = std::fs::read_to_string(root.join(".hive/production/id_ed25519.pub")).unwrap();
    for (i, f) in files.iter().enumerate() {
        if let Err(e) = validate(f) {
            panic!("{} is refused:\n{e}", f.display());
        }
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} holds a password", f.display());
        let ks = std::fs::read_to_string(f).unwrap();
        assert!(ks.starts_with("#version=RHEL8\n"), "{ks}");
        assert!(
            ks.contains(&format!(
                "network --bootproto=static --device=bond0 --noipv6 --gateway=198.51.100.1 --nameserver=198.51.100.1,198.51.100.2 --ip=198.51.100.2{i} --netmask=255.255.255.0 --bondslaves=eth0,eth1"
            )),
            "{ks}"
        );
        assert!(
            ks.contains(
                "network --bootproto=static --device=eth2 --noipv6 --noipv4 --vlanid=1001\n"
            ),
            "{ks}"
        );
        assert!(
            ks.contains("part swap --fstype=swap --ondisk=sdb --size=4096\n"),
            "{ks}"
        );
        // 40 GB (60 for the repository server) in MiB, as the original
        // computes it.
        let root_size = if i == 3 { 57220 } else { 38146 };
        assert!(
            ks.contains(&format!(
                "part / --fstype=xfs --ondisk=sdb --size={root_size}\n"
            )),
            "{ks}"
        );
        assert!(ks.contains("timezone Asia/Tokyo --utc\n"), "{ks}");
        assert!(
            ks.contains(&format!("rootpw --plaintext \"{}\"\n", password.trim())),
            "{ks}"
        );
        assert!(
            ks.contains(&format!("echo '{}' >", public_key.trim())),
            "{ks}"
        );
        assert!(ks.contains("echo '%admin ALL=(ALL) NOPASSWD: ALL'"), "{ks}");
    }

    // ksvalidator refuses what is not kickstart: its verdict above counts.
    let broken = root.join("broken.ks");
    let mut bad = std::fs::read_to_string(&files[0]).unwrap();
    bad.push_str("part /var --fstype=xfs --size=lots\n");
    std::fs::write(&broken, bad).unwrap();
    assert!(
        validate(&broken).is_err(),
        "ksvalidator accepted a broken file"
    );

    // A second run and its plan: nothing to write.
    let before = mtimes(&files);
    let second = ok(&run(&["build-infra"]));
    assert!(second.contains("build-infra: no change"), "{second}");
    assert_eq!(mtimes(&files), before);
    let plan = ok(&run(&["build-infra", "-C"]));
    assert!(plan.contains("provider kickstart: no change"), "{plan}");

    // A changed setting: the plan names the files it changes, the run
    // rewrites only those.
    let hive_yml = root.join("inventory/hive.yml");
    let inventory = std::fs::read_to_string(&hive_yml).unwrap();
    std::fs::write(
        &hive_yml,
        inventory.replace("    disk_size: 40\n", "    disk_size: 50\n"),
    )
    .unwrap();
    let plan = ok(&run(&["build-infra", "-C"]));
    for f in &files[..3] {
        assert!(plan.contains(&format!("{}: update", f.display())), "{plan}");
    }
    assert!(!plan.contains(&files[3].display().to_string()), "{plan}");
    let third = ok(&run(&["build-infra"]));
    assert!(
        third.contains(&format!("{}: updated", files[0].display())),
        "{third}"
    );
    assert_eq!(mtimes(&files[3..]), before[3..]);
    assert!(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .contains("--size=47683\n")
    );

    // The files are made for the whole stage.
    let o = run(&["build-infra", "-l", "hive2.bare"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("build-infra -l is not supported with the kickstart provider"),
        "{}",
        text(&o)
    );

    // -D removes the media, never the servers.
    let destroy = ok(&run(&["build-infra", "-D", "--yes"]));
    assert!(destroy.contains("does not destroy servers"), "{destroy}");
    assert!(!media(&root).exists(), "{destroy}");
}

#[test]
fn kickstart_settings_are_checked_before_anything_is_written() {
    let (_d, root) = project("");
    let hive_yml = root.join("inventory/hive.yml");
    let inventory = std::fs::read_to_string(&hive_yml).unwrap();
    std::fs::write(&hive_yml, inventory.replace(", 198.51.100.23]", "]")).unwrap();
    for args in [&["check"][..], &["build-infra", "-C"], &["build-infra"]] {
        let o = hive(&root, &[&["-s", "production"], args].concat());
        let all = text(&o);
        assert_eq!(o.status.code(), Some(1), "{all}");
        assert!(
            all.contains("kickstart_config.networks[0].ips")
                && all.contains("3 addresses for 4 servers (none for hive3.bare)"),
            "{all}"
        );
    }
    std::fs::write(
        &hive_yml,
        inventory.replace(
            "      target: sdb\n",
            "      target: sdb\n      tagret: sdc\n",
        ),
    )
    .unwrap();
    let o = hive(&root, &["-s", "production", "build-infra", "-C"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("tagret"), "{}", text(&o));
    assert!(!media(&root).exists());
}

/// A stand-in for a RHEL installation image: the boot menus and images the
/// original's role edits and `xorriso` boots from.
fn source_image(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    for (rel, data) in [
        (
            "isolinux/isolinux.cfg",
            b"default vesamenu.c32\nlabel linux\n  menu label ^Install\n  kernel vmlinuz\n"
                .to_vec(),
        ),
        ("isolinux/isolinux.bin", vec![0; 2048]),
        (
            "EFI/BOOT/grub.cfg",
            b"menuentry 'Install' {\n}\nmenuentry 'Test this media & install' {\n}\n".to_vec(),
        ),
        ("images/efiboot.img", vec![0; 65536]),
    ] {
        let path = tree.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    let iso = dir.join("source.iso");
    let o = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", "SOURCE", "-o"])
        .arg(&iso)
        .arg(&tree)
        .output()
        .expect("run xorriso (scripts/setup-machine.sh installs it)");
    assert!(o.status.success(), "{}", text(&o));
    iso
}

#[test]
fn a_source_image_becomes_an_installer_with_an_entry_per_server() {
    let scratch = tempfile::tempdir().unwrap();
    let src = source_image(scratch.path());
    let dest = scratch.path().join("installer.iso");
    let (_d, root) = project(&format!(
        "      iso_src: {}\n      iso_dest: {}\n",
        src.display(),
        dest.display()
    ));
    let run = |args: &[&str]| hive(&root, &[&["-s", "production"], args].concat());

    let plan = ok(&run(&["build-infra", "-C"]));
    assert!(
        plan.contains(&format!("{}: create", dest.display())),
        "{plan}"
    );
    assert!(!dest.exists());

    let first = ok(&run(&["build-infra"]));
    assert!(
        first.contains(&format!("{}: created", dest.display())),
        "{first}"
    );
    let grub = std::fs::read_to_string(media(&root).join("EFI/BOOT/grub.cfg")).unwrap();
    let isolinux = std::fs::read_to_string(media(&root).join("isolinux/isolinux.cfg")).unwrap();
    for s in SERVERS {
        let ks = format!("inst.ks=hd:LABEL=HiveInstaller:/{}.ks", &s[..5]);
        assert!(grub.contains(&ks), "{grub}");
        assert!(
            isolinux.contains(&format!("{ks} net.ifnames=0")),
            "{isolinux}"
        );
    }
    // The entries go before the media test and the plain install.
    assert!(grub.find("hive3.bare").unwrap() < grub.find("Test this media").unwrap());
    assert!(isolinux.find("hive3.bare").unwrap() < isolinux.find("label linux").unwrap());

    // The image: labelled for the menus, holding the kickstart files.
    let o = Command::new("xorriso")
        .args(["-indev"])
        .arg(&dest)
        .args(["-pvd_info", "-find", "/", "-name", "*.ks"])
        .output()
        .unwrap();
    let listing = text(&o);
    assert!(
        listing.contains("Volume Id    : HiveInstaller"),
        "{listing}"
    );
    for s in SERVERS {
        assert!(listing.contains(&format!("'/{}.ks'", &s[..5])), "{listing}");
    }
    for s in SERVERS {
        validate(&media(&root).join(format!("{}.ks", &s[..5]))).unwrap();
    }

    let before = mtimes(std::slice::from_ref(&dest));
    let second = ok(&run(&["build-infra"]));
    assert!(second.contains("build-infra: no change"), "{second}");
    assert_eq!(mtimes(std::slice::from_ref(&dest)), before);
    let plan = ok(&run(&["build-infra", "-C"]));
    assert!(plan.contains("provider kickstart: no change"), "{plan}");
}
