//! Waiting for the package manager's locks: a run killed during
//! setup-hosts leaves its `apt-get` running on the servers, and the next
//! run must wait for it instead of failing on "Could not get lock".
//!
//! apt's own `DPkg::Lock::Timeout` covers dpkg's locks (`lock-frontend`,
//! `lock`) but not the lists lock `apt-get update` takes (apt 2.6 of
//! Debian 12 fails at once on `/var/lib/apt/lists/lock`), so the holders
//! of every lock are read from `/proc/locks` and waited for here, with a
//! message naming them, before a step that installs packages; the install
//! script itself retries on a lock taken in between (see
//! [`OsFamily::install_packages`](crate::OsFamily::install_packages)).

use std::time::{Duration, Instant};

use super::error::{Result, SetupHostsError};
use super::shell::{Transport, run_checked};

/// How long a step waits for locks held by other processes.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(600);

/// Prints `LOCK PID NAME` for every process holding one of the package
/// manager's locks (POSIX locks, as apt and dpkg take them).
const PROBE: &str = r#"for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock /var/lib/rpm/.rpm.lock /var/run/yum.pid; do
  [ -e "$f" ] || continue
  i=$(stat -c %i "$f")
  for p in $(awk -v i="$i" '$2 != "->" && $5 != "-1" { n = split($6, a, ":"); if (a[n] == i) print $5 }' /proc/locks 2>/dev/null | sort -u); do
    echo "$f $p $(cat /proc/$p/comm 2>/dev/null || echo '?')"
  done
done
true"#;

/// The holders of the package manager's locks on the server, as
/// `LOCK by process PID (NAME)`.
pub(crate) async fn lock_holders(server: &dyn Transport) -> Result<Vec<String>> {
    let out = run_checked(server, PROBE, None, "package lock probe").await?;
    Ok(out
        .stdout_text()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (lock, pid, name) = (f.next()?, f.next()?, f.next().unwrap_or("?"));
            Some(format!("{lock} by process {pid} ({name})"))
        })
        .collect())
}

/// Waits until no process holds a package manager lock on the server,
/// calling `waiting` with the holders whenever they change, for at most
/// `limit`.
pub(crate) async fn wait_for_package_locks(
    server: &dyn Transport,
    limit: Duration,
    waiting: impl Fn(&str),
) -> Result<()> {
    let start = Instant::now();
    let mut last = Vec::new();
    loop {
        let holders = lock_holders(server).await?;
        if holders.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(SetupHostsError::PackageLocks {
                host: server.host().to_string(),
                holders: holders.join(", "),
                waited_secs: start.elapsed().as_secs(),
            });
        }
        if holders != last {
            waiting(&format!(
                "waiting up to {} s for {} (a command of an interrupted run?)",
                limit.as_secs(),
                holders.join(", ")
            ));
            last = holders;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
