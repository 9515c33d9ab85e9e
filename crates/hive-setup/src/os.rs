//! Operating system families and the commands that differ between them.

use crate::error::{Result, SetupHostsError};
use crate::shell::{Transport, run_checked};
use hive_model::{shell_join, shell_quote};

/// The family of a server's operating system, from `/etc/os-release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OsFamily {
    /// Debian, Ubuntu and derivatives: apt, dpkg.
    Debian,
    /// RHEL, AlmaLinux, Rocky, CentOS, Fedora, Amazon Linux: dnf or yum.
    RedHat {
        /// `dnf` when present, else `yum`.
        dnf: bool,
    },
}

/// The probe that prints what [`OsFamily::parse`] reads.
pub(crate) const DETECT_SCRIPT: &str = ". /etc/os-release 2>/dev/null; \
echo \"id=$ID\"; echo \"like=$ID_LIKE\"; \
command -v dnf >/dev/null 2>&1 && echo dnf=1; command -v apt-get >/dev/null 2>&1 && echo apt=1; true";

impl OsFamily {
    /// Read the output of the detection probe; `None` for an unsupported
    /// system.
    ///
    /// ```
    /// use hive_setup::OsFamily;
    /// assert_eq!(OsFamily::parse("id=debian\nlike=\napt=1\n"), Some(OsFamily::Debian));
    /// assert_eq!(OsFamily::parse("id=almalinux\nlike=rhel centos fedora\ndnf=1\n"), Some(OsFamily::RedHat { dnf: true }));
    /// ```
    pub fn parse(probe: &str) -> Option<OsFamily> {
        let mut id = "";
        let mut like = "";
        let mut dnf = false;
        let mut apt = false;
        for line in probe.lines() {
            match line.split_once('=') {
                Some(("id", v)) => id = v.trim().trim_matches('"'),
                Some(("like", v)) => like = v.trim().trim_matches('"'),
                Some(("dnf", _)) => dnf = true,
                Some(("apt", _)) => apt = true,
                _ => {}
            }
        }
        let words: Vec<&str> = std::iter::once(id).chain(like.split_whitespace()).collect();
        let any = |names: &[&str]| words.iter().any(|w| names.contains(w));
        if any(&["debian", "ubuntu"]) || (id.is_empty() && apt) {
            Some(OsFamily::Debian)
        } else if any(&["rhel", "centos", "fedora", "almalinux", "rocky", "amzn"]) {
            Some(OsFamily::RedHat { dnf })
        } else {
            None
        }
    }

    fn rpm_tool(self) -> &'static str {
        match self {
            OsFamily::RedHat { dnf: true } => "dnf",
            _ => "yum",
        }
    }

    /// A script that exits 0 when every package of `pkgs` is installed.
    pub fn packages_installed(self, pkgs: &[&str]) -> String {
        let list = shell_join(pkgs);
        match self {
            OsFamily::Debian => format!(
                "[ \"$(dpkg-query -W -f='${{Status}}\\n' {list} 2>/dev/null | grep -c 'install ok installed')\" = {} ]",
                pkgs.len()
            ),
            OsFamily::RedHat { .. } => format!("rpm -q {list} >/dev/null 2>&1"),
        }
    }

    /// A script that installs `pkgs` without questions.
    pub fn install_packages(self, pkgs: &[&str]) -> String {
        let list = shell_join(pkgs);
        match self {
            // apt-get waits for dpkg's locks (DPkg::Lock::Timeout) and is
            // retried while another apt holds the lists lock, which that
            // option does not cover; both bounded. A dpkg killed half-way
            // (by a killed run) is completed once with `dpkg --configure -a`.
            OsFamily::Debian => format!(
                "export DEBIAN_FRONTEND=noninteractive; : >/tmp/hive-apt.log; \
                 hive_apt() {{ n=0; c=0; while :; do apt-get -o DPkg::Lock::Timeout={secs} \"$@\" >/tmp/hive-apt.out 2>&1; s=$?; cat /tmp/hive-apt.out >>/tmp/hive-apt.log; \
                 if [ $s -ne 0 ] && [ $n -lt {tries} ] && grep -q 'Could not get lock' /tmp/hive-apt.out; then n=$((n+1)); sleep 2; \
                 elif [ $s -ne 0 ] && [ $c = 0 ] && grep -q 'dpkg was interrupted' /tmp/hive-apt.out; then c=1; dpkg --configure -a >>/tmp/hive-apt.log 2>&1; \
                 else return $s; fi; done; }}; \
                 hive_apt install -y -q --no-install-recommends {list} || \
                 {{ hive_apt update -q && hive_apt install -y -q --no-install-recommends {list}; }} || \
                 {{ tail -n 20 /tmp/hive-apt.log >&2; exit 1; }}",
                secs = super::locks::LOCK_WAIT.as_secs(),
                tries = super::locks::LOCK_WAIT.as_secs() / 2,
            ),
            OsFamily::RedHat { .. } => {
                format!("{} install -y -q {list} >&2", self.rpm_tool())
            }
        }
    }

    /// The base packages (the original's `base` role, trimmed to what hive
    /// uses).
    pub fn base_packages(self) -> &'static [&'static str] {
        match self {
            OsFamily::Debian => &[
                "sudo",
                "rsyslog",
                "iptables",
                "tzdata",
                "locales",
                "conntrack",
                "procps",
                "ca-certificates",
            ],
            OsFamily::RedHat { .. } => &[
                "sudo",
                "rsyslog",
                "iptables",
                "tzdata",
                "conntrack-tools",
                "procps-ng",
                "ca-certificates",
            ],
        }
    }

    /// The Docker engine's packages.
    pub fn docker_packages(self) -> &'static [&'static str] {
        match self {
            OsFamily::Debian => &["docker.io"],
            OsFamily::RedHat { .. } => &["docker-ce", "docker-ce-cli", "containerd.io"],
        }
    }

    /// What to run before installing the engine (the Docker CE repository
    /// on RHEL; nothing on Debian, whose `docker.io` is in the archive).
    pub fn docker_repository_setup(self) -> Option<String> {
        match self {
            OsFamily::Debian => None,
            OsFamily::RedHat { .. } => Some(
                "[ -f /etc/yum.repos.d/docker-ce.repo ] || \
                 curl -fsSL -o /etc/yum.repos.d/docker-ce.repo https://download.docker.com/linux/centos/docker-ce.repo"
                    .to_string(),
            ),
        }
    }

    /// Path of `dockerd`.
    pub fn dockerd_path(self) -> &'static str {
        match self {
            OsFamily::Debian => "/usr/sbin/dockerd",
            OsFamily::RedHat { .. } => "/usr/bin/dockerd",
        }
    }

    /// The sshd unit's name.
    pub fn sshd_service(self) -> &'static str {
        match self {
            OsFamily::Debian => "ssh",
            OsFamily::RedHat { .. } => "sshd",
        }
    }

    /// chrony's configuration: a drop-in file on Debian, the main file on
    /// RHEL (where hive manages a marked block).
    pub fn chrony_config(self) -> &'static str {
        match self {
            OsFamily::Debian => "/etc/chrony/conf.d/hive.conf",
            OsFamily::RedHat { .. } => "/etc/chrony.conf",
        }
    }

    /// The chrony unit's name.
    pub fn chrony_service(self) -> &'static str {
        match self {
            OsFamily::Debian => "chrony",
            OsFamily::RedHat { .. } => "chronyd",
        }
    }

    /// Where the site CA goes to be trusted system-wide, and the command
    /// that refreshes the trust store.
    pub fn ca_trust(self) -> (&'static str, &'static str) {
        match self {
            OsFamily::Debian => (
                "/usr/local/share/ca-certificates/hive-ca.crt",
                "update-ca-certificates >/dev/null",
            ),
            OsFamily::RedHat { .. } => (
                "/etc/pki/ca-trust/source/anchors/hive-ca.pem",
                "update-ca-trust extract",
            ),
        }
    }

    /// A script that makes `locale` available and the system default.
    pub fn set_locale(self, locale: &str) -> String {
        let l = shell_quote(locale);
        match self {
            OsFamily::Debian => format!(
                "grep -q \"^{locale} \" /etc/locale.gen 2>/dev/null || echo \"{locale} $(echo {l} | sed -n 's/.*\\.//p' | tr a-z A-Z | sed 's/UTF8/UTF-8/')\" >>/etc/locale.gen; \
                 locale-gen >/dev/null; printf 'LANG=%s\\n' {l} >/etc/default/locale"
            ),
            OsFamily::RedHat { .. } => {
                let lang = locale.split(['_', '.']).next().unwrap_or(locale);
                format!(
                    "{} install -y -q glibc-langpack-{} >&2; localectl set-locale LANG={l}",
                    self.rpm_tool(),
                    shell_quote(lang)
                )
            }
        }
    }

    /// A script that exits 0 when `locale` is the system default.
    pub fn locale_is(self, locale: &str) -> String {
        let l = shell_quote(locale);
        match self {
            OsFamily::Debian => format!(
                "grep -qx \"LANG={locale}\" /etc/default/locale 2>/dev/null && locale -a 2>/dev/null | grep -qix \"$(echo {l} | sed 's/UTF-8/utf8/I')\""
            ),
            OsFamily::RedHat { .. } => format!("grep -qx \"LANG={locale}\" /etc/locale.conf"),
        }
    }
}

pub(crate) async fn detect_os(server: &dyn Transport) -> Result<OsFamily> {
    let out = run_checked(server, DETECT_SCRIPT, None, "operating system detection").await?;
    let text = out.stdout_text();
    OsFamily::parse(&text).ok_or_else(|| SetupHostsError::Unexpected {
        host: server.host().to_string(),
        what: "operating system detection".into(),
        detail: format!(
            "unsupported system ({}); hive supports Debian, Ubuntu and the RHEL family",
            text.lines().next().unwrap_or("").trim()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_families() {
        fn check(probe: &str, expected: Option<OsFamily>) {
            assert_eq!(OsFamily::parse(probe), expected, "{probe}");
        }
        check("id=debian\nlike=\napt=1\n", Some(OsFamily::Debian));
        check("id=ubuntu\nlike=debian\napt=1\n", Some(OsFamily::Debian));
        check(
            "id=\"rocky\"\nlike=\"rhel centos fedora\"\ndnf=1\n",
            Some(OsFamily::RedHat { dnf: true }),
        );
        check(
            "id=\"amzn\"\nlike=\"centos rhel fedora\"\n",
            Some(OsFamily::RedHat { dnf: false }),
        );
        check(
            "id=rhel\nlike=fedora\ndnf=1\n",
            Some(OsFamily::RedHat { dnf: true }),
        );
        check("id=alpine\nlike=\n", None);
    }

    #[test]
    fn redhat_commands() {
        let dnf = OsFamily::RedHat { dnf: true };
        let yum = OsFamily::RedHat { dnf: false };
        assert_eq!(
            dnf.install_packages(&["docker-ce", "containerd.io"]),
            "dnf install -y -q docker-ce containerd.io >&2"
        );
        assert_eq!(
            yum.install_packages(&["chrony"]),
            "yum install -y -q chrony >&2"
        );
        assert_eq!(
            dnf.packages_installed(&["docker-ce", "rsyslog"]),
            "rpm -q docker-ce rsyslog >/dev/null 2>&1"
        );
        assert!(
            dnf.docker_repository_setup()
                .unwrap()
                .contains("https://download.docker.com/linux/centos/docker-ce.repo")
        );
        assert_eq!(
            dnf.docker_packages(),
            ["docker-ce", "docker-ce-cli", "containerd.io"]
        );
        assert_eq!(dnf.dockerd_path(), "/usr/bin/dockerd");
        assert_eq!(dnf.sshd_service(), "sshd");
        assert_eq!(dnf.chrony_config(), "/etc/chrony.conf");
        assert_eq!(
            dnf.ca_trust().0,
            "/etc/pki/ca-trust/source/anchors/hive-ca.pem"
        );
        assert_eq!(
            dnf.set_locale("ja_JP.UTF-8"),
            "dnf install -y -q glibc-langpack-ja >&2; localectl set-locale LANG=ja_JP.UTF-8"
        );
        assert_eq!(
            dnf.locale_is("ja_JP.UTF-8"),
            "grep -qx \"LANG=ja_JP.UTF-8\" /etc/locale.conf"
        );
    }

    #[test]
    fn debian_commands() {
        let d = OsFamily::Debian;
        assert_eq!(
            d.packages_installed(&["docker.io", "sudo"]),
            "[ \"$(dpkg-query -W -f='${Status}\\n' docker.io sudo 2>/dev/null | grep -c 'install ok installed')\" = 2 ]"
        );
        let install = d.install_packages(&["docker.io"]);
        assert!(
            install.contains("hive_apt install -y -q --no-install-recommends docker.io"),
            "{install}"
        );
        // dpkg's locks are waited for by apt itself, the lists lock by the
        // retry on "Could not get lock".
        assert!(
            install.contains("apt-get -o DPkg::Lock::Timeout=600 \"$@\""),
            "{install}"
        );
        assert!(
            install.contains("grep -q 'Could not get lock'"),
            "{install}"
        );
        assert_eq!(d.docker_repository_setup(), None);
        assert_eq!(d.sshd_service(), "ssh");
    }
}
