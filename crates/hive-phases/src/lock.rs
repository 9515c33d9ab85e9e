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

impl LockHolder {
    /// A holder whose description could not be read (being written).
    fn unknown() -> Self {
        LockHolder {
            user: "another run".into(),
            host: current_host(),
            pid: 0,
            command: "unknown".into(),
            since: "just now".into(),
        }
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
/// dropped, or by the kernel when the process dies.
///
/// The lock is an exclusive `flock(2)` on the file `lock` in the stage's
/// state directory (`.hive/<stage>/`); the file holds the holder's
/// description for the message a second run gets. A run killed with
/// `kill -9` leaves no lock behind: the next run takes it at once.
/// `--force-unlock` is only for a description written by a run on another
/// host (a shared project directory), which this host cannot check.
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
pub struct StageLock {
    holder: LockHolder,
    file: nix::fcntl::Flock<fs::File>,
}

impl fmt::Debug for StageLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageLock")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl StageLock {
    /// The lock file of the stage state directory `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("lock")
    }

    /// Take the lock of `stage`, whose state directory is `dir`, for a run
    /// of `command`.
    ///
    /// Fails with [`Error::Locked`] when another live run holds it. A lock
    /// whose process died is taken over (the kernel released it). A
    /// description left by a run on another host is taken over only with
    /// `force_unlock`; one naming a live process of this host (a hive that
    /// locked without `flock`) never is.
    pub fn acquire(
        dir: &Path,
        stage: &str,
        command: &str,
        force_unlock: bool,
    ) -> Result<StageLock, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let path = Self::path_in(dir);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let locked = |holder: Option<LockHolder>| Error::Locked {
            stage: stage.to_string(),
            holder: Box::new(holder.unwrap_or_else(LockHolder::unknown)),
            path: path.clone(),
        };
        let file = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            Ok(f) => f,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(locked(Self::read_holder(&path).ok().flatten()));
            }
            Err((_, e)) => return Err(Error::io("lock", &path, e.into())),
        };
        if let Some(other) = Self::read_holder(&path)? {
            let remote = other.host != current_host();
            let mine = !remote && other.pid == std::process::id();
            if remote && !force_unlock {
                return Err(Error::StaleLock {
                    stage: stage.to_string(),
                    holder: Box::new(other),
                    path: path.clone(),
                });
            }
            if !remote && !mine && !other.is_gone() {
                return Err(locked(Some(other)));
            }
        }
        let holder = LockHolder::current(command);
        let body = serde_json::to_vec_pretty(&holder).map_err(|e| Error::BadLock {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f: &fs::File = &file;
        f.set_len(0)
            .and_then(|()| f.write_all(&body))
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("write", &path, e))?;
        Ok(StageLock { holder, file })
    }

    /// Who holds the lock file at `path`, or `None` when there is none (no
    /// file, or an empty one: no run holds it).
    pub fn read_holder(path: &Path) -> Result<Option<LockHolder>, Error> {
        match fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
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
        // Empty the description while the lock is still ours; closing the
        // file releases the lock.
        let _ = self.file.set_len(0);
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
    fn the_description_of_a_gone_process_is_taken_over_without_force() {
        let dir = tempfile::tempdir().unwrap();
        // A child process that has exited: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut dead = LockHolder::current("hive all");
        dead.pid = pid;
        write_holder(dir.path(), &dead);
        let lock = StageLock::acquire(dir.path(), "private", "hive all", false).unwrap();
        assert_eq!(lock.holder().pid, std::process::id());
        drop(lock);
        assert_eq!(
            StageLock::read_holder(&StageLock::path_in(dir.path())).unwrap(),
            None
        );
    }

    #[test]
    fn a_run_killed_with_sigkill_leaves_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = StageLock::path_in(dir.path());
        fs::write(&path, "").unwrap();
        // Another process holds the OS lock (as a running hive does).
        let mut holder = std::process::Command::new("flock")
            .args(["-x", "--no-fork"])
            .arg(&path)
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        let mut held = false;
        for _ in 0..50 {
            match StageLock::acquire(dir.path(), "private", "hive all", true) {
                Err(Error::Locked { .. }) => {
                    held = true;
                    break;
                }
                Ok(lock) => drop(lock),
                Err(e) => panic!("{e}"),
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(held, "the other process's lock was not seen");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(holder.id()).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        holder.wait().unwrap();
        let mut taken = false;
        for _ in 0..50 {
            if StageLock::acquire(dir.path(), "private", "hive all", false).is_ok() {
                taken = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(taken, "the lock of a killed run was not released");
    }

    #[test]
    fn a_description_from_another_host_needs_force_unlock() {
        let dir = tempfile::tempdir().unwrap();
        let mut remote = LockHolder::current("hive all");
        remote.host = "elsewhere.invalid".into();
        write_holder(dir.path(), &remote);
        let err = StageLock::acquire(dir.path(), "private", "hive all", false).unwrap_err();
        assert!(err.to_string().contains("--force-unlock"), "{err}");
        StageLock::acquire(dir.path(), "private", "hive all", true).unwrap();
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
