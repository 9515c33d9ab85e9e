//! The steps, as tags for `-T`, and what each manages on a server.

use std::fmt;
use std::str::FromStr;

use super::error::SetupHostsError;
use super::item::Item;
use super::net::InternalNetworks;
use super::os::OsFamily;
use super::params::{Server, SetupHostsParams};
use super::pki::CertPair;
use hive_model::shell_quote;

/// A step of the phase; its name is the tag `-T` selects it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepTag {
    /// Packages, host name, time zone, locale, sshd, `/etc/hosts`, NTP,
    /// users and groups.
    Base,
    /// The site PKI and every server's certificate installed.
    Pki,
    /// The Docker engine with its TLS API, address pools and registry trust.
    Docker,
    /// The swarm: init, joins, node labels, internal networks.
    Swarm,
    /// The registry on the repository server; every server logged in.
    Registry,
    /// iptables: high ports and cluster ports reachable from the stage only.
    Firewall,
    /// DRBD on the hives (hive-drbd's host preparation), when the stage
    /// has DRBD volumes or `-T drbd` selects it.
    Drbd,
    /// rsyslog on the repository server collecting the services' logs.
    Logs,
    /// The backup command and its daily run at 01:00 on the repository
    /// server (the original's `backup-tools`).
    Backup,
    /// The project's `roles/addon`, run by the role runner.
    Addon,
}

impl StepTag {
    /// Every step, in the order they run.
    pub const ALL: [StepTag; 10] = [
        StepTag::Base,
        StepTag::Pki,
        StepTag::Docker,
        StepTag::Swarm,
        StepTag::Registry,
        StepTag::Firewall,
        StepTag::Drbd,
        StepTag::Logs,
        StepTag::Backup,
        StepTag::Addon,
    ];

    /// The tag.
    pub fn name(self) -> &'static str {
        match self {
            StepTag::Base => "base",
            StepTag::Pki => "pki",
            StepTag::Docker => "docker",
            StepTag::Swarm => "swarm",
            StepTag::Registry => "registry",
            StepTag::Firewall => "firewall",
            StepTag::Drbd => "drbd",
            StepTag::Logs => "logs",
            StepTag::Backup => "backup",
            StepTag::Addon => "addon",
        }
    }
}

impl fmt::Display for StepTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StepTag {
    type Err = SetupHostsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepTag::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| SetupHostsError::UnknownStep {
                name: s.to_string(),
            })
    }
}

/// Where the server's TLS files live on it.
pub(crate) const TLS_DIR: &str = "/etc/hive/tls";
pub(crate) const REGISTRY_DIR: &str = "/etc/hive/registry";

pub(crate) fn tls_paths() -> (String, String, String) {
    (
        format!("{TLS_DIR}/ca.pem"),
        format!("{TLS_DIR}/server_cert.pem"),
        format!("{TLS_DIR}/server_key.pem"),
    )
}

/// What the item builders need besides the parameters.
pub(crate) struct Inputs<'a> {
    pub ca_pem: &'a str,
    pub server_cert: Option<&'a CertPair>,
    pub registry_password: Option<&'a str>,
    pub htpasswd: Option<&'a str>,
    pub registry_archive: Option<&'a [u8]>,
}

/// The names a server's certificate is valid for.
pub(crate) fn cert_names(server: &Server) -> Vec<String> {
    let mut v = vec![server.name.clone()];
    if server.hostname() != server.name {
        v.push(server.hostname().to_string());
    }
    v.push(server.private_ip.to_string());
    v.push("localhost".into());
    v.push("127.0.0.1".into());
    v
}

fn reload_sshd(os: OsFamily, p: &SetupHostsParams) -> String {
    let s = os.sshd_service();
    let mut script = format!(
        "sshd -t && {{ systemctl reload {s} 2>/dev/null || systemctl restart {s} 2>/dev/null || kill -HUP \"$(cat /run/sshd.pid)\"; }}"
    );
    // A firewall from an earlier run closes ports of 10000 and above to the
    // mother machine until the firewall step rewrites it: open the new sshd
    // port first, or hive would lock itself out.
    if p.sshd_port >= 10000 {
        let sources: Vec<Option<&str>> = if p.ssh_source_ips.is_empty() {
            vec![None]
        } else {
            p.ssh_source_ips
                .iter()
                .map(|ip| Some(ip.as_str()))
                .collect()
        };
        let mut open = String::from("if iptables -w -n -L HIVE-FIREWALL >/dev/null 2>&1; then");
        for src in sources {
            let rule = match src {
                Some(ip) => format!("-p tcp -s {ip} --dport {} -j RETURN", p.sshd_port),
                None => format!("-p tcp --dport {} -j RETURN", p.sshd_port),
            };
            open.push_str(&format!(
                " iptables -w -C HIVE-FIREWALL {rule} 2>/dev/null || iptables -w -I HIVE-FIREWALL 1 {rule};"
            ));
        }
        open.push_str(" fi; ");
        script = open + &script;
    }
    script
}

/// The sshd settings hive enforces.
pub(crate) fn sshd_config(p: &SetupHostsParams) -> String {
    let mut s = String::from("# Managed by hive setup-hosts (base step).\n");
    s.push_str(&format!("Port {}\n", p.sshd_port));
    s.push_str("PasswordAuthentication no\n");
    s.push_str("KbdInteractiveAuthentication no\n");
    s.push_str("ChallengeResponseAuthentication no\n");
    s.push_str("UseDNS no\n");
    if p.refuse_root_login {
        s.push_str("PermitRootLogin no\n");
    }
    s
}

/// `/etc/hosts` lines for every server of the stage.
pub(crate) fn hosts_block(p: &SetupHostsParams) -> String {
    let mut s = String::new();
    for srv in &p.servers {
        if srv.hostname() != srv.name {
            s.push_str(&format!(
                "{} {} {}\n",
                srv.private_ip,
                srv.name,
                srv.hostname()
            ));
        } else {
            s.push_str(&format!("{} {}\n", srv.private_ip, srv.name));
        }
    }
    s
}

/// chrony's main configuration file and an extended regular expression for
/// the distribution's default NTP sources in it (Debian's `pool` lines,
/// the `*.pool.ntp.org` servers and pools of the Red Hat family; hive's own
/// `server` lines on Red Hat are left alone).
pub(crate) fn chrony_default_sources(os: OsFamily) -> (&'static str, &'static str) {
    match os {
        OsFamily::Debian => ("/etc/chrony/chrony.conf", "^(pool|server|peer) .*"),
        OsFamily::RedHat { .. } => (
            "/etc/chrony.conf",
            "^(pool .*|server [0-9]+\\.[a-z0-9.-]*pool\\.ntp\\.org.*)",
        ),
    }
}

/// The base step's items.
pub(crate) fn base_items(p: &SetupHostsParams, server: &Server, os: OsFamily) -> Vec<Item> {
    let mut items = Vec::new();
    let mut pkgs: Vec<&str> = os.base_packages().to_vec();
    if !p.ntp_servers.is_empty() {
        pkgs.push("chrony");
    }
    items.push(Item::state(
        format!("packages {}", pkgs.join(" ")),
        os.packages_installed(&pkgs),
        os.install_packages(&pkgs),
    ));
    let h = shell_quote(server.hostname());
    items.push(Item::state(
        format!("host name {}", server.hostname()),
        format!("[ \"$(hostname)\" = {h} ] && [ \"$(cat /etc/hostname)\" = {h} ]"),
        format!(
            "echo {h} >/etc/hostname; hostname {h} 2>/dev/null || hostnamectl set-hostname {h}"
        ),
    ));
    if let Some(tz) = &p.timezone {
        let zone = format!("/usr/share/zoneinfo/{tz}");
        let z = shell_quote(&zone);
        items.push(Item::state(
            format!("time zone {tz}"),
            format!("case \"$(readlink /etc/localtime)\" in {z}|..{z}) true;; *) false;; esac"),
            format!(
                "[ -f {z} ] || {{ echo \"unknown time zone {}\" >&2; exit 1; }}; ln -sf {z} /etc/localtime; echo {} >/etc/timezone",
                shell_quote(tz),
                shell_quote(tz)
            ),
        ));
    }
    if let Some(locale) = p.locale_name() {
        items.push(Item::state(
            format!("locale {locale}"),
            os.locale_is(locale),
            os.set_locale(locale),
        ));
    }
    items.push(Item::state(
        "sshd includes sshd_config.d",
        "grep -qiE '^Include /etc/ssh/sshd_config.d/\\*.conf' /etc/ssh/sshd_config",
        "sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config",
    ));
    items.push(
        Item::file("/etc/ssh/sshd_config.d/00-hive.conf", sshd_config(p), 0o644)
            .notify(reload_sshd(os, p)),
    );
    items.push(Item::block("/etc/hosts", "servers", hosts_block(p)));
    if !p.ntp_servers.is_empty() {
        let conf: String = p
            .ntp_servers
            .iter()
            .map(|s| format!("server {s} iburst\n"))
            .collect();
        let restart = format!("systemctl restart {}", os.chrony_service());
        let item = match os {
            OsFamily::Debian => Item::file(os.chrony_config(), conf, 0o644),
            OsFamily::RedHat { .. } => Item::block(os.chrony_config(), "ntp servers", conf),
        };
        items.push(item.notify(restart.clone()));
        // Only the servers asked for: the distribution's default sources
        // are commented out, as the original does.
        let (main, default_sources) = chrony_default_sources(os);
        items.push(
            Item::state(
                format!("default NTP sources off in {main}"),
                // Fails while chrony is not installed, so that a first run
                // (which installs it in this step) applies it.
                format!(
                    "[ -f {main} ] && ! grep -qE {} {main}",
                    shell_quote(default_sources)
                ),
                format!(
                    "sed -i -E {} {main}",
                    shell_quote(&format!("s/{default_sources}/# &/"))
                ),
            )
            .notify(restart),
        );
        let svc = os.chrony_service();
        items.push(Item::state(
            format!("{svc} running"),
            format!("systemctl is-enabled -q {svc} && systemctl is-active -q {svc}"),
            format!("systemctl enable -q {svc}; systemctl start {svc}"),
        ));
    }
    for (name, g) in &p.user_groups {
        let n = shell_quote(name);
        items.push(Item::state(
            format!("group {name} ({})", g.gid),
            format!("[ \"$(getent group {n} | cut -d: -f3)\" = {} ]", g.gid),
            format!(
                "if getent group {n} >/dev/null; then groupmod -g {gid} {n}; else groupadd -g {gid} {n}; fi",
                gid = g.gid
            ),
        ));
        items.push(Item::file(
            &format!("/etc/sudoers.d/{name}"),
            format!("%{name} ALL=(ALL) NOPASSWD: ALL\n"),
            0o440,
        ));
    }
    for (name, u) in &p.users {
        let n = shell_quote(name);
        let g = shell_quote(&u.group);
        items.push(Item::state(
            format!("user {name} ({})", u.uid),
            format!("[ \"$(id -u {n} 2>/dev/null)\" = {} ] && [ \"$(id -gn {n})\" = {g} ] && [ -d /home/{name}/.ssh ]", u.uid),
            format!(
                "if id -u {n} >/dev/null 2>&1; then usermod -u {uid} -g {g} {n}; else useradd -m -s /bin/bash -u {uid} -g {g} {n}; fi; install -d -m 700 -o {n} -g {g} /home/{name}/.ssh",
                uid = u.uid
            ),
        ));
        items.push(Item::block(
            &format!("/home/{name}/.ssh/authorized_keys"),
            "hive_users",
            u.id_rsa_pub.trim().to_string(),
        ));
    }
    let _ = server;
    items
}

/// The pki step's items: the CA trusted system-wide and the server's
/// certificate and key.
pub(crate) fn pki_items(inp: &Inputs<'_>, os: OsFamily) -> Vec<Item> {
    let (ca, cert, key) = tls_paths();
    let mut items = vec![Item::file(&ca, inp.ca_pem, 0o644)];
    if let Some(pair) = inp.server_cert {
        items.push(Item::file(&cert, pair.cert_pem.as_bytes(), 0o644));
        items.push(Item::file(&key, pair.key_pem.as_bytes(), 0o600));
    }
    let (trust, refresh) = os.ca_trust();
    items.push(Item::file(trust, inp.ca_pem, 0o644).notify(refresh));
    items
}

const DOCKER_RESTART: &str = "systemctl daemon-reload; systemctl restart docker; i=0; until docker info >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 120 ] || { echo 'docker did not come back' >&2; exit 1; }; sleep 0.5; done";

/// `daemon.json`: the TLS API on 2376 with client certificates required,
/// and the bridges' addresses from `internal_cidr`.
pub(crate) fn daemon_json(p: &SetupHostsParams) -> String {
    let (ca, cert, key) = tls_paths();
    let mut v = serde_json::json!({
        "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
        "tls": true,
        "tlsverify": true,
        "tlscacert": ca,
        "tlscert": cert,
        "tlskey": key,
        "iptables": true,
    });
    if let (Some(cidr), Some(obj)) = (p.internal_cidr, v.as_object_mut()) {
        let n = InternalNetworks::split(cidr);
        obj.insert("bip".into(), n.bip.clone().into());
        let size = (n.registry.prefix_len() + 2).min(29);
        obj.insert(
            "default-address-pools".into(),
            serde_json::json!([{"base": n.registry.to_string(), "size": size}]),
        );
    }
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// The systemd drop-in for docker: no `-H` on the command line (the hosts
/// are in `daemon.json`), restart policy as the original.
pub(crate) fn docker_override(os: OsFamily) -> String {
    format!(
        "# Managed by hive setup-hosts (docker step).\n[Service]\nRestart=always\nRestartSec=15s\nEnvironmentFile=-/etc/environment\nExecStart=\nExecStart={} --containerd=/run/containerd/containerd.sock\n",
        os.dockerd_path()
    )
}

/// The docker step's items.
pub(crate) fn docker_items(p: &SetupHostsParams, inp: &Inputs<'_>, os: OsFamily) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(setup) = os.docker_repository_setup() {
        items.push(Item::state(
            "Docker CE repository",
            "[ -f /etc/yum.repos.d/docker-ce.repo ]",
            setup,
        ));
    }
    items.push(Item::file("/etc/docker/daemon.json", daemon_json(p), 0o644).notify(DOCKER_RESTART));
    items.push(
        Item::file(
            "/etc/systemd/system/docker.service.d/hive.conf",
            docker_override(os),
            0o644,
        )
        .notify(DOCKER_RESTART),
    );
    if let Some(reg) = p.registry_address() {
        items.push(Item::file(
            &format!("/etc/docker/certs.d/{reg}/ca.crt"),
            inp.ca_pem,
            0o644,
        ));
    }
    let pkgs = os.docker_packages();
    items.push(Item::state(
        format!("packages {}", pkgs.join(" ")),
        os.packages_installed(pkgs),
        os.install_packages(pkgs),
    ));
    let a = shell_quote(&p.admin);
    items.push(Item::state(
        format!("{} in group docker", p.admin),
        format!("id -nG {a} | tr ' ' '\\n' | grep -qx docker"),
        format!(
            "getent group docker >/dev/null || groupadd docker; id -u {a} >/dev/null 2>&1 || useradd -m -s /bin/bash {a}; usermod -aG docker {a}"
        ),
    ));
    // The admin's Docker client speaks TLS to every hive with the server's
    // certificate, as the original's docker-client role sets up.
    let home = format!("/home/{}", p.admin);
    items.push(Item::state(
        format!("directory {home}/.docker"),
        format!(
            "[ \"$(stat -c %U:%a {}/.docker 2>/dev/null)\" = {}:700 ]",
            shell_quote(&home),
            shell_quote(&p.admin)
        ),
        format!(
            "install -d -m 700 -o {a} -g \"$(id -gn {a})\" {}/.docker",
            shell_quote(&home)
        ),
    ));
    if let Some(pair) = inp.server_cert {
        for (f, data) in [
            ("ca.pem", inp.ca_pem),
            ("cert.pem", pair.cert_pem.as_str()),
            ("key.pem", pair.key_pem.as_str()),
        ] {
            items.push(
                Item::file(&format!("{home}/.docker/{f}"), data, 0o600).owned(&p.admin, "docker"),
            );
        }
    }
    items.push(Item::state(
        "docker running",
        "systemctl is-enabled -q docker && systemctl is-active -q docker && docker info >/dev/null",
        format!("systemctl enable -q docker; {DOCKER_RESTART}"),
    ));
    items
}

mod firewall;
mod logs;
mod registry;
#[cfg(test)]
mod tests;

pub(crate) use firewall::*;
pub(crate) use logs::*;
pub(crate) use registry::*;
