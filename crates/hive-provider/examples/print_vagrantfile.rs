//! Print the Vagrantfile the `vagrant` provider generates for a sample
//! stage (3 hives with mirrored disks and a repository server).

use hive_provider::{ServerRole, ServerSpec, StageSpec, VagrantProvider};

fn main() -> Result<(), hive_provider::ProviderError> {
    let mut s = StageSpec::new(
        "pdns",
        "private",
        "vagrant",
        "192.168.0.96/27".parse().expect("cidr"),
        "/tmp/x",
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
            format!("192.168.0.{}", 100 + i).parse().expect("ip"),
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
    print!("{}", VagrantProvider::vagrantfile(&s)?);
    Ok(())
}
