//! The stage's `known_hosts` file: host keys pinned on first contact and
//! checked strictly afterwards, in OpenSSH's format so that plain `ssh -F
//! .hive/<stage>/ssh_config` uses the same pins.

use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use sha2::Digest;

use crate::error::{HostKeyMismatch, ProviderError, Result};
use crate::stage::write_atomic;

/// Serialises read-modify-write cycles on known_hosts files in this process
/// (many servers are pinned in parallel).
static LOCK: Mutex<()> = Mutex::new(());

/// How a session treats the server's host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Pin an unknown key (first contact during build-infra); refuse a
    /// changed one.
    PinOnFirstContact,
    /// Refuse unknown and changed keys.
    Strict,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// The key matches the pinned one.
    Verified,
    /// The key was unknown and has just been pinned.
    Pinned,
}

/// The known_hosts pattern for an address: `IP` for port 22, `[IP]:PORT`
/// otherwise (as OpenSSH writes it).
pub fn host_pattern(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// `SHA256:...` fingerprint of a public key blob, as `ssh-keygen -l` shows.
pub fn fingerprint(key: &[u8]) -> String {
    let digest = sha2::Sha256::digest(key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// The key type name found inside a public key blob.
pub fn key_type_of(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(0..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// Entries for `pattern` in the file: (key type, base64 key).
pub fn lookup(path: &Path, pattern: &str) -> Result<Vec<(String, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ProviderError::io("read", path, e)),
    };
    Ok(entries(&text, pattern))
}

fn entries(text: &str, pattern: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(hosts), Some(kt), Some(key)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if hosts.split(',').any(|h| h == pattern) {
            found.push((kt.to_string(), key.to_string()));
        }
    }
    found
}

/// Check `key` (type `key_type`) presented by `host` at `pattern` against
/// the file, pinning it when unknown and the policy allows.
pub fn check(
    path: &Path,
    host: &str,
    pattern: &str,
    key: &[u8],
    policy: HostKeyPolicy,
) -> Result<HostKeyCheck> {
    check_moved(path, host, pattern, None, key, policy)
}

/// [`check`] for a server whose sshd may have moved from the port of
/// `earlier` (its known_hosts pattern, e.g. `10.0.0.1` for port 22) to the
/// port of `pattern` (`[10.0.0.1]:2222`): when `pattern` has no pin but
/// `earlier` has, the key must be one pinned for `earlier` (the same
/// server, the same key) and is then pinned for `pattern` whatever the
/// policy; any other key is refused as a changed key.
///
/// ```
/// use hive_provider::ssh::known_hosts::{check, check_moved, HostKeyCheck, HostKeyPolicy};
/// let dir = tempfile::tempdir().unwrap();
/// let kh = dir.path().join("known_hosts");
/// let key = [0, 0, 0, 11, b's', b's', b'h', b'-', b'e', b'd', b'2', b'5', b'5', b'1', b'9', 1, 2];
/// check(&kh, "h", "10.0.0.1", &key, HostKeyPolicy::PinOnFirstContact).unwrap();
/// let moved = check_moved(&kh, "h", "[10.0.0.1]:2222", Some("10.0.0.1"), &key, HostKeyPolicy::Strict);
/// assert_eq!(moved.unwrap(), HostKeyCheck::Pinned);
/// ```
pub fn check_moved(
    path: &Path,
    host: &str,
    pattern: &str,
    earlier: Option<&str>,
    key: &[u8],
    policy: HostKeyPolicy,
) -> Result<HostKeyCheck> {
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key_type = key_type_of(key).unwrap_or_else(|| "unknown".into());
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let mut found = lookup(path, pattern)?;
    if found.iter().any(|(t, k)| *t == key_type && *k == b64) {
        return Ok(HostKeyCheck::Verified);
    }
    let mut policy = policy;
    let mut shown = pattern.to_string();
    if let Some(earlier) = earlier.filter(|e| found.is_empty() && *e != pattern) {
        found = lookup(path, earlier)?;
        if found.iter().any(|(t, k)| *t == key_type && *k == b64) {
            // The same key sshd showed on its earlier port: pin it here too.
            found.clear();
            policy = HostKeyPolicy::PinOnFirstContact;
        } else {
            // Its pin for the earlier port is the one to check (and forget
            // when the server was rebuilt on purpose).
            shown = earlier.to_string();
        }
    }
    let presented = format!("{key_type} {}", fingerprint(key));
    if let Some((t, k)) = found.first() {
        let pinned_fp = base64::engine::general_purpose::STANDARD
            .decode(k)
            .map(|b| fingerprint(&b))
            .unwrap_or_else(|_| "an unreadable key".into());
        return Err(ProviderError::HostKeyChanged(Box::new(HostKeyMismatch {
            host: host.to_string(),
            pattern: shown,
            known_hosts: path.to_path_buf(),
            pinned: format!("{t} {pinned_fp}"),
            presented,
        })));
    }
    match policy {
        HostKeyPolicy::Strict => Err(ProviderError::HostKeyUnknown {
            host: host.to_string(),
            address: pattern.to_string(),
            known_hosts: path.to_path_buf(),
            presented,
        }),
        HostKeyPolicy::PinOnFirstContact => {
            let mut text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(ProviderError::io("read", path, e)),
            };
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{pattern} {key_type} {b64}\n"));
            write_atomic(path, text.as_bytes(), 0o644)?;
            tracing::info!(host, pattern, fingerprint = %fingerprint(key), "pinned host key");
            Ok(HostKeyCheck::Pinned)
        }
    }
}

/// Remove every pin of `pattern` (a server that was re-created); returns
/// whether something was removed.
pub fn forget(path: &Path, pattern: &str) -> Result<bool> {
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ProviderError::io("read", path, e)),
    };
    let mut removed = false;
    let kept: String = text
        .lines()
        .filter(|line| {
            let hit = line
                .split_whitespace()
                .next()
                .is_some_and(|h| h.split(',').any(|h| h == pattern));
            removed |= hit;
            !hit
        })
        .map(|l| format!("{l}\n"))
        .collect();
    if removed {
        write_atomic(path, kept.as_bytes(), 0o644)?;
    }
    Ok(removed)
}

/// The host key algorithms to offer, pinned types first, so that the server
/// presents the key that was pinned.
pub(crate) fn preferred_algorithms(pinned: &[(String, String)]) -> String {
    let mut order: Vec<&str> = Vec::new();
    for (t, _) in pinned {
        let algs: &[&str] = match t.as_str() {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            other => match other {
                "ssh-ed25519" => &["ssh-ed25519"],
                "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
                "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
                "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
                _ => &[],
            },
        };
        order.extend(algs);
    }
    for a in [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
    ] {
        if !order.contains(&a) {
            order.push(a);
        }
    }
    order.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kt: &str, body: &[u8]) -> Vec<u8> {
        let mut v = (kt.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kt.as_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn pin_verify_change_forget() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        let k1 = blob("ssh-ed25519", b"one");
        let k2 = blob("ssh-ed25519", b"two");
        let strict = HostKeyPolicy::Strict;
        let pin = HostKeyPolicy::PinOnFirstContact;
        assert!(matches!(
            check(&kh, "h0", "10.0.0.1", &k1, strict),
            Err(ProviderError::HostKeyUnknown { .. })
        ));
        assert_eq!(
            check(&kh, "h0", "10.0.0.1", &k1, pin).unwrap(),
            HostKeyCheck::Pinned
        );
        assert_eq!(
            check(&kh, "h0", "10.0.0.1", &k1, strict).unwrap(),
            HostKeyCheck::Verified
        );
        assert_eq!(
            check(&kh, "h1", "[10.0.0.1]:2222", &k2, pin).unwrap(),
            HostKeyCheck::Pinned
        );
        let err = check(&kh, "h0", "10.0.0.1", &k2, pin).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("host key changed"), "{msg}");
        assert!(msg.contains("ssh-keygen -f"), "{msg}");
        assert!(msg.contains(&fingerprint(&k1)), "{msg}");
        assert!(forget(&kh, "10.0.0.1").unwrap());
        assert!(!forget(&kh, "10.0.0.1").unwrap());
        assert_eq!(lookup(&kh, "[10.0.0.1]:2222").unwrap().len(), 1);
        assert_eq!(
            check(&kh, "h0", "10.0.0.1", &k2, pin).unwrap(),
            HostKeyCheck::Pinned
        );
    }

    #[test]
    fn moved_port_accepts_only_the_earlier_key() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        let k1 = blob("ssh-ed25519", b"one");
        let k2 = blob("ssh-ed25519", b"two");
        let strict = HostKeyPolicy::Strict;
        let pin = HostKeyPolicy::PinOnFirstContact;
        let moved = "[10.0.0.1]:2222";
        // Nothing pinned anywhere: the policy decides.
        assert!(matches!(
            check_moved(&kh, "h0", moved, Some("10.0.0.1"), &k1, strict),
            Err(ProviderError::HostKeyUnknown { .. })
        ));
        check(&kh, "h0", "10.0.0.1", &k1, pin).unwrap();
        // Another key on the new port is a changed key, even when pinning
        // is allowed; the hint names the pin to forget.
        let err = check_moved(&kh, "h0", moved, Some("10.0.0.1"), &k2, pin).unwrap_err();
        assert!(err.to_string().contains("-R '10.0.0.1'"), "{err}");
        assert!(lookup(&kh, moved).unwrap().is_empty());
        // The same key is pinned for the new port even under Strict, once.
        assert_eq!(
            check_moved(&kh, "h0", moved, Some("10.0.0.1"), &k1, strict).unwrap(),
            HostKeyCheck::Pinned
        );
        assert_eq!(
            check_moved(&kh, "h0", moved, Some("10.0.0.1"), &k1, strict).unwrap(),
            HostKeyCheck::Verified
        );
        assert_eq!(
            check(&kh, "h0", moved, &k1, strict).unwrap(),
            HostKeyCheck::Verified
        );
        let text = std::fs::read_to_string(&kh).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("[10.0.0.1]:2222 ssh-ed25519 ")
        );
    }

    #[test]
    fn patterns_and_preferences() {
        assert_eq!(host_pattern("10.1.1.1", 22), "10.1.1.1");
        assert_eq!(host_pattern("10.1.1.1", 2222), "[10.1.1.1]:2222");
        let p = preferred_algorithms(&[("ssh-rsa".into(), String::new())]);
        assert!(
            p.starts_with("rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519"),
            "{p}"
        );
        assert_eq!(
            key_type_of(&blob("ssh-rsa", b"x")).as_deref(),
            Some("ssh-rsa")
        );
    }
}
