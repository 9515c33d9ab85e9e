//! The registry's secrets on the mother machine (password, htpasswd) and
//! its garbage collection on the repository server.

use crate::pki::write_atomic;
use std::path::Path;

use crate::error::{Result, SetupHostsError};
use crate::shell::{Transport, run_checked};

fn read_secret(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim_end_matches('\n').to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SetupHostsError::io("read", path, e)),
    }
}

/// The registry password in `<context>/registry_password` (15 characters,
/// as the original's `lookup('password', ... length=15)`), created when
/// missing, and the htpasswd line for `user` in `<context>/registry_htpasswd`,
/// reused while it matches. Both files mode 0600. Returns whether anything
/// was created.
pub fn registry_credentials(
    context_dir: &Path,
    user: &str,
    write: bool,
) -> Result<(String, String, bool)> {
    let pw_path = context_dir.join("registry_password");
    let ht_path = context_dir.join("registry_htpasswd");
    let (password, mut created) = hive_provider::stage_password(context_dir, write)
        .map_err(|e| SetupHostsError::io("write", &pw_path, e))?;
    let reuse = read_secret(&ht_path)?.filter(|line| {
        line.split_once(':')
            .is_some_and(|(u, h)| u == user && bcrypt::verify(&password, h).unwrap_or(false))
    });
    let htpasswd = match reuse {
        Some(line) => format!("{line}\n"),
        None => {
            let hash = bcrypt::hash(&password, 10).map_err(SetupHostsError::Bcrypt)?;
            let line = format!("{user}:{hash}\n");
            if write {
                write_atomic(&ht_path, line.as_bytes(), 0o600)?;
            }
            created = true;
            line
        }
    };
    Ok((password, htpasswd, created))
}

/// The registry's garbage collection command, as the seed's clean-up
/// instruction runs it on the repository server.
pub const REGISTRY_GC_COMMAND: &str =
    "docker exec registry registry garbage-collect -m /etc/docker/registry/config.yml";

/// Run the registry's garbage collector on the repository server (what
/// `hive registry gc` does from the mother machine) and return its output.
pub async fn registry_garbage_collect(repository: &dyn Transport) -> Result<String> {
    let out = run_checked(
        repository,
        REGISTRY_GC_COMMAND,
        None,
        "registry garbage-collect",
    )
    .await?;
    Ok(out.stdout_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_credentials_are_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (pw, ht, created) = registry_credentials(dir.path(), "hive", true).unwrap();
        assert!(created);
        assert_eq!(pw.len(), 15);
        assert!(ht.starts_with("hive:$2"));
        let mode = |f: &str| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("registry_password"), 0o600);
        assert_eq!(mode("registry_htpasswd"), 0o600);
        let (pw2, ht2, created) = registry_credentials(dir.path(), "hive", true).unwrap();
        assert_eq!(
            (pw2.as_str(), ht2.as_str(), created),
            (pw.as_str(), ht.as_str(), false)
        );
        // A different user name: new htpasswd, same password.
        let (pw3, ht3, created) = registry_credentials(dir.path(), "other", true).unwrap();
        assert!(created && pw3 == pw && ht3.starts_with("other:"));
        // Check mode writes nothing.
        let fresh = tempfile::tempdir().unwrap();
        let (_, _, created) = registry_credentials(fresh.path(), "hive", false).unwrap();
        assert!(created);
        assert!(!fresh.path().join("registry_password").exists());
    }
}
