//! The site PKI: a CA in the stage's context directory, a certificate for
//! every server (Docker API, registry, syslog over TLS) and one for the
//! mother machine's Docker client. Pure Rust (rcgen); private keys mode 0600;
//! certificates are reused while they are valid for the same names and CA.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::error::{Result, SetupHostsError};
use super::item::sha256_hex;

/// Certificates are renewed when they expire within this many days.
const RENEW_DAYS: i64 = 30;
/// Validity of the CA (the original's 100 years).
const CA_DAYS: i64 = 365 * 100;
/// Validity of server and client certificates.
const LEAF_DAYS: i64 = 365 * 10;

/// A certificate and its private key, PEM-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct CertPair {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (secret).
    pub key_pem: String,
}

impl std::fmt::Debug for CertPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertPair")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<secret>")
            .finish()
    }
}

/// What a leaf certificate was made for, kept next to it to decide reuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeafMeta {
    names: Vec<String>,
    ca_sha256: String,
    not_after: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CaMeta {
    common_name: String,
}

/// The site's CA, loaded from or created in `<context>/ca/`.
pub struct SitePki {
    dir: PathBuf,
    ca_cert_pem: String,
    ca_key: KeyPair,
    issuer: Certificate,
    created: bool,
    write: bool,
}

impl std::fmt::Debug for SitePki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SitePki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn pki_err(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> SetupHostsError {
    let what = what.into();
    move |source| SetupHostsError::Pki { what, source }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    p
}

/// Write `data` to `path` atomically with `mode` (hive-provider's
/// [`write_file_atomic`](hive_provider::write_file_atomic)).
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    hive_provider::write_file_atomic(path, data, mode)
        .map_err(|e| SetupHostsError::io("write", path, e))
}

fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SetupHostsError::io("read", path, e)),
    }
}

impl SitePki {
    /// The CA of the stage whose context directory is `context_dir`:
    /// `<context>/ca/cacert.pem` and `cakey.pem` (0600), created with
    /// common name `ca.<hive_name>` when missing.
    pub fn open_or_create(context_dir: &Path, hive_name: &str) -> Result<SitePki> {
        let dir = context_dir.join("ca");
        let cert_path = dir.join("cacert.pem");
        let key_path = dir.join("cakey.pem");
        let meta_path = dir.join("ca.json");
        if let (Some(cert), Some(key)) = (read_opt(&cert_path)?, read_opt(&key_path)?) {
            let cn = match read_opt(&meta_path)? {
                Some(m) => serde_json::from_str::<CaMeta>(&m)
                    .map(|m| m.common_name)
                    .unwrap_or_else(|_| format!("ca.{hive_name}")),
                None => format!("ca.{hive_name}"),
            };
            let ca_key =
                KeyPair::from_pem(&key).map_err(pki_err(format!("read {}", key_path.display())))?;
            let issuer = ca_params(&cn)
                .self_signed(&ca_key)
                .map_err(pki_err("rebuild the CA issuer"))?;
            return Ok(SitePki {
                dir: context_dir.to_path_buf(),
                ca_cert_pem: cert,
                ca_key,
                issuer,
                created: false,
                write: true,
            });
        }
        let cn = format!("ca.{hive_name}");
        let ca_key = KeyPair::generate().map_err(pki_err("generate the CA key"))?;
        let mut params = ca_params(&cn);
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(CA_DAYS);
        let cert = params
            .self_signed(&ca_key)
            .map_err(pki_err("sign the CA certificate"))?;
        write_atomic(&key_path, ca_key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
        let meta = serde_json::to_vec(&CaMeta { common_name: cn }).unwrap_or_default();
        write_atomic(&meta_path, &meta, 0o644)?;
        let issuer = ca_params(&format!("ca.{hive_name}"))
            .self_signed(&ca_key)
            .map_err(pki_err("rebuild the CA issuer"))?;
        Ok(SitePki {
            dir: context_dir.to_path_buf(),
            ca_cert_pem: cert.pem(),
            ca_key,
            issuer,
            created: true,
            write: true,
        })
    }

    /// Issue certificates in memory only, writing nothing (check mode).
    pub fn read_only(mut self) -> Self {
        self.write = false;
        self
    }

    /// Whether this call created the CA.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The CA certificate, PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The CA certificate's path.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca/cacert.pem")
    }

    /// Paths of the certificate and key kept for `name` in the context
    /// directory (`tls/certs/<name>_cert.pem`, `tls/private/<name>_key.pem`).
    pub fn leaf_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("tls/certs/{name}_cert.pem")),
            self.dir.join(format!("tls/private/{name}_key.pem")),
        )
    }

    /// The certificate of server `name`, valid for `names` (DNS names and IP
    /// addresses), for server and client authentication. Reused when the
    /// kept one was made for the same names by this CA and is not about to
    /// expire; the boolean says whether it was (re)issued.
    pub fn server_cert(&self, name: &str, names: &[String]) -> Result<(CertPair, bool)> {
        self.leaf(name, names)
    }

    /// The mother machine's Docker client certificate, also written to
    /// `<context>/docker-client/{ca,cert,key}.pem` for `DOCKER_CERT_PATH`.
    pub fn client_cert(&self) -> Result<(CertPair, bool)> {
        let (pair, issued) = self.leaf("mother", &["mother".to_string()])?;
        let d = self.dir.join("docker-client");
        let want = [
            ("ca.pem", self.ca_cert_pem.as_bytes(), 0o644),
            ("cert.pem", pair.cert_pem.as_bytes(), 0o644),
            ("key.pem", pair.key_pem.as_bytes(), 0o600),
        ];
        for (f, data, mode) in want {
            let p = d.join(f);
            if self.write && read_opt(&p)?.as_deref().map(str::as_bytes) != Some(data) {
                write_atomic(&p, data, mode)?;
            }
        }
        Ok((pair, issued))
    }

    /// Where [`client_cert`](Self::client_cert) puts the client's files.
    pub fn docker_client_dir(&self) -> PathBuf {
        self.dir.join("docker-client")
    }

    fn leaf(&self, name: &str, names: &[String]) -> Result<(CertPair, bool)> {
        let (cert_path, key_path) = self.leaf_paths(name);
        let meta_path = self.dir.join(format!("tls/misc/{name}.json"));
        let ca_sha = sha256_hex(self.ca_cert_pem.as_bytes());
        let now = OffsetDateTime::now_utc();
        if let (Some(cert), Some(key), Some(meta)) = (
            read_opt(&cert_path)?,
            read_opt(&key_path)?,
            read_opt(&meta_path)?,
        ) {
            if let Ok(meta) = serde_json::from_str::<LeafMeta>(&meta) {
                if meta.names == names
                    && meta.ca_sha256 == ca_sha
                    && meta.not_after > (now + Duration::days(RENEW_DAYS)).unix_timestamp()
                {
                    return Ok((
                        CertPair {
                            cert_pem: cert,
                            key_pem: key,
                        },
                        false,
                    ));
                }
            }
        }
        let key = KeyPair::generate().map_err(pki_err(format!("generate the key of {name}")))?;
        let mut params =
            CertificateParams::new(names.to_vec()).map_err(pki_err(format!("names of {name}")))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = now - Duration::days(1);
        let not_after = now + Duration::days(LEAF_DAYS);
        params.not_after = not_after;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let mut serial = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut serial[..]);
        serial[0] &= 0x7f;
        params.serial_number = Some(serial.to_vec().into());
        let cert = params
            .signed_by(&key, &self.issuer, &self.ca_key)
            .map_err(pki_err(format!("sign the certificate of {name}")))?;
        let pair = CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        if !self.write {
            return Ok((pair, true));
        }
        write_atomic(&key_path, pair.key_pem.as_bytes(), 0o600)?;
        write_atomic(&cert_path, pair.cert_pem.as_bytes(), 0o644)?;
        let meta = LeafMeta {
            names: names.to_vec(),
            ca_sha256: ca_sha,
            not_after: not_after.unix_timestamp(),
        };
        write_atomic(
            &meta_path,
            &serde_json::to_vec(&meta).unwrap_or_default(),
            0o644,
        )?;
        Ok((pair, true))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use std::process::Command;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn ca_and_leaves_are_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = SitePki::open_or_create(dir.path(), "pdns").unwrap();
        assert!(pki.created());
        assert_eq!(mode(&dir.path().join("ca/cakey.pem")), 0o600);
        let names = vec!["hive0.pdns".to_string(), "hive0".into(), "10.0.0.10".into()];
        let (a, issued) = pki.server_cert("hive0.pdns", &names).unwrap();
        assert!(issued);
        let (_, key) = pki.leaf_paths("hive0.pdns");
        assert_eq!(mode(&key), 0o600);

        let again = SitePki::open_or_create(dir.path(), "pdns").unwrap();
        assert!(!again.created());
        assert_eq!(again.ca_cert_pem(), pki.ca_cert_pem());
        let (b, issued) = again.server_cert("hive0.pdns", &names).unwrap();
        assert!(!issued);
        assert_eq!(a, b);
        // Other names: a new certificate.
        let (c, issued) = again.server_cert("hive0.pdns", &names[..2]).unwrap();
        assert!(issued);
        assert_ne!(a.cert_pem, c.cert_pem);
        assert!(!format!("{c:?}").contains("PRIVATE"));

        let (_, issued) = again.client_cert().unwrap();
        assert!(issued);
        assert_eq!(mode(&dir.path().join("docker-client/key.pem")), 0o600);
        let (_, issued) = again.client_cert().unwrap();
        assert!(!issued);

        // Read-only (check mode): a new server's certificate is issued in
        // memory, nothing is written, and it is issued again next time.
        let ro = SitePki::open_or_create(dir.path(), "pdns")
            .unwrap()
            .read_only();
        let n = vec!["hive9.pdns".to_string()];
        assert!(ro.server_cert("hive9.pdns", &n).unwrap().1);
        assert!(!ro.leaf_paths("hive9.pdns").0.exists());
        assert!(ro.server_cert("hive9.pdns", &n).unwrap().1);
    }

    #[test]
    fn certificates_verify_with_openssl() {
        if Command::new("openssl").arg("version").output().is_err() {
            // openssl is part of the base system of the test machines; say so
            // loudly rather than pass silently.
            panic!("openssl is needed to verify the certificates");
        }
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["hive1.pdns".to_string(), "10.0.0.11".into()];
        {
            let pki = SitePki::open_or_create(dir.path(), "pdns").unwrap();
            pki.server_cert("hive1.pdns", &names).unwrap();
        }
        // Signed by a CA loaded from disk, not the one just created.
        let pki = SitePki::open_or_create(dir.path(), "pdns").unwrap();
        pki.server_cert("hive2.pdns", &["hive2.pdns".to_string()])
            .unwrap();
        for n in ["hive1.pdns", "hive2.pdns"] {
            let (cert, _) = pki.leaf_paths(n);
            let out = Command::new("openssl")
                .args(["verify", "-CAfile"])
                .arg(pki.ca_cert_path())
                .arg(&cert)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (cert, _) = pki.leaf_paths("hive1.pdns");
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("DNS:hive1.pdns"), "{text}");
        assert!(text.contains("IP Address:10.0.0.11"), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
    }
}
