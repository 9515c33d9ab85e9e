use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// Who holds a stage's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The user running hive.
    pub user: String,
    /// The host hive runs on.
    pub host: String,
    /// The process id of the hive run.
    pub pid: u32,
    /// The command line of the run, e.g. `hive -s private all`.
    pub command: String,
    /// When the run took the lock (RFC 3339).
    pub since: String,
}

impl LockHolder {
    /// The holder describing the current process.
    pub fn current(command: &str) -> Self {
        LockHolder {
            user: current_user(),
            host: current_host(),
            pid: std::process::id(),
            command: command.to_string(),
            since: crate::journal::now_rfc3339(),
        }
    }

    /// Whether the holder's process is known to be gone: it ran on this host
    /// and no process has its pid any more. A holder on another host is
    /// never known to be gone.
    pub fn is_gone(&self) -> bool {
        if self.host != current_host() {
            return false;
        }
        let Ok(pid) = i32::try_from(self.pid) else {
            return true;
        };
        matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} (pid {}, `{}`, since {})",
            self.user, self.host, self.pid, self.command, self.since
        )
    }
}

fn current_user() -> String {
    if let Ok(u) = std::env::var("USER") {
        if !u.is_empty() {
            return u;
        }
    }
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

fn current_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The lock of one stage: held while a run changes the stage, released when
/// dropped.
///
/// The lock is a file `lock` in the stage's state directory
/// (`.hive/<stage>/`), created atomically with the holder's description.
///
/// ```
/// use hive_phases::StageLock;
///
/// let dir = tempfile::tempdir()?;
/// let lock = StageLock::acquire(dir.path(), "private", "hive all", false)?;
/// // A second run on the same stage is refused and told who holds it.
/// let err = StageLock::acquire(dir.path(), "private", "hive all", false).unwrap_err();
/// assert!(err.to_string().contains("is locked by"));
/// drop(lock);
/// StageLock::acquire(dir.path(), "private", "hive all", false)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StageLock {
    path: PathBuf,
    holder: LockHolder,
}

impl StageLock {
    /// The lock file of the stage state directory `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("lock")
    }

    /// Take the lock of `stage`, whose state directory is `dir`, for a run
    /// of `command`.
    ///
    /// Fails with [`Error::Locked`] when another live run holds it and with
    /// [`Error::StaleLock`] when its holder's process is gone, unless
    /// `force_unlock` is set: then a lock whose holder is gone, or runs on
    /// another host (where hive cannot check it), is taken over. A holder
    /// alive on this host is never taken over.
    pub fn acquire(
        dir: &Path,
        stage: &str,
        command: &str,
        force_unlock: bool,
    ) -> Result<StageLock, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let path = Self::path_in(dir);
        let holder = LockHolder::current(command);
        let body = serde_json::to_vec_pretty(&holder).map_err(|e| Error::BadLock {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = dir.join(format!(".lock.{}", holder.pid));
        {
            let mut f = fs::File::create(&tmp).map_err(|e| Error::io("write", &tmp, e))?;
            f.write_all(&body)
                .map_err(|e| Error::io("write", &tmp, e))?;
            f.sync_all().map_err(|e| Error::io("write", &tmp, e))?;
        }
        let result = Self::link(&tmp, &path, stage, force_unlock);
        let _ = fs::remove_file(&tmp);
        result?;
        Ok(StageLock { path, holder })
    }

    fn link(tmp: &Path, path: &Path, stage: &str, force_unlock: bool) -> Result<(), Error> {
        // Two attempts: the second after a stale lock was removed.
        for _ in 0..2 {
            match fs::hard_link(tmp, path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create", path, e)),
            }
            let other = Self::read_holder(path)?;
            let Some(other) = other else { continue };
            let gone = other.is_gone();
            let remote = other.host != current_host();
            if force_unlock && (gone || remote) {
                match fs::remove_file(path) {
                    Ok(()) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("remove", path, e)),
                }
            }
            return Err(if gone {
                Error::StaleLock {
                    stage: stage.to_string(),
                    holder: Box::new(other),
                    path: path.to_path_buf(),
                }
            } else {
                Error::Locked {
                    stage: stage.to_string(),
                    holder: Box::new(other),
                    path: path.to_path_buf(),
                }
            });
        }
        Err(Error::io(
            "create",
            path,
            std::io::Error::other("the lock changed hands while taking it"),
        ))
    }

    /// Who holds the lock file at `path`, or `None` when there is none.
    pub fn read_holder(path: &Path) -> Result<Option<LockHolder>, Error> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::BadLock {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// This run's description, as written in the lock file.
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }
}

impl Drop for StageLock {
    fn drop(&mut self) {
        // Remove the file only while it is still ours.
        if let Ok(Some(h)) = Self::read_holder(&self.path) {
            if h == self.holder {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_holder(dir: &Path, holder: &LockHolder) {
        fs::write(StageLock::path_in(dir), serde_json::to_vec(holder).unwrap()).unwrap();
    }

    #[test]
    fn second_run_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = StageLock::acquire(dir.path(), "private", "hive all", false).unwrap();
        let err =
            StageLock::acquire(dir.path(), "private", "hive deploy-services", true).unwrap_err();
        match &err {
            Error::Locked { holder, stage, .. } => {
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.command, "hive all");
                assert_eq!(stage, "private");
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("hive all") && msg.contains("pid"), "{msg}");
    }

    #[test]
    fn lock_of_a_gone_process_is_stale_and_can_be_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // A child process that has exited: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut dead = LockHolder::current("hive all");
        dead.pid = pid;
        write_holder(dir.path(), &dead);

        let err = StageLock::acquire(dir.path(), "private", "hive all", false).unwrap_err();
        assert!(matches!(err, Error::StaleLock { .. }), "{err:?}");
        assert!(err.to_string().contains("--force-unlock"));

        let lock = StageLock::acquire(dir.path(), "private", "hive all", true).unwrap();
        assert_eq!(lock.holder().pid, std::process::id());
        drop(lock);
        assert!(!StageLock::path_in(dir.path()).exists());
    }

    #[test]
    fn live_holder_on_this_host_is_never_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut alive = LockHolder::current("hive all");
        alive.pid = child.id();
        write_holder(dir.path(), &alive);
        let err = StageLock::acquire(dir.path(), "private", "hive all", true).unwrap_err();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    }

    #[test]
    fn garbage_lock_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(StageLock::path_in(dir.path()), "not json").unwrap();
        let err = StageLock::acquire(dir.path(), "private", "hive all", false).unwrap_err();
        assert!(matches!(err, Error::BadLock { .. }), "{err:?}");
    }
}
