//! Secrets kept, end to end through the `hive` binary: the quickstart
//! project, under its own name and network, with a database-like password
//! (`lookup('password', ...)`) in a service's environment, is built with
//! `-vv` and run again with `-o json`; then an external registry whose login
//! fails is added and setup-hosts is run with `-vv` and with `-o json`;
//! a backup whose command fails is run the same two ways.
//!
//! Every byte hive printed, every file under `.hive/` that is not a secret
//! file (the journal among them) and `/var/log`, `/run/log` and the journal
//! of every server are searched for the registry password, the stage's
//! private SSH key, the TLS private keys hive generated, the external
//! registry password and the database password (each also as the
//! `user:password` base64 a Docker login stores): no hit. The files that
//! hold secrets are 0600 and no directory on their way is world-readable.
//!
//! On the same site: an anonymous push to the site registry is refused (an
//! authenticated one accepted), the Docker API without a client certificate
//! is refused (with one answered), and a server whose SSH host key changed
//! is refused.
//!
//! It needs what `scripts/setup-machine.sh` installs, as
//! `quickstart_site.rs` does.

mod common;

use common::{hive, text};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const SITE: &str = "secrets.example";
const NET: &str = "192.168.208";
/// The external registry's password (its login fails).
const EXT_PASSWORD: &str = "ExtRegistry-Secret-4711";
const EXT_USER: &str = "intruder";

fn project() -> (tempfile::TempDir, PathBuf) {
    let (dir, root) = common::project_copy(
        "examples/quickstart",
        &[
            ("quickstart.example", SITE),
            ("192.168.201.0/24", &format!("{NET}.0/24")),
            ("10.201.0.0/16", "10.208.0.0/16"),
        ],
    );
    // A database-like password, generated into the stage's context
    // directory and handed to the service in its environment.
    let vars = root.join("inventory/group_vars/all.yml");
    let mut t = std::fs::read_to_string(&vars).unwrap();
    t.push_str(
        "db_password: \"{{ lookup('password', hive_context_dir + '/db_password length=15 chars=ascii_letters,digits') }}\"\n",
    );
    std::fs::write(&vars, t).unwrap();
    let services = root.join("inventory/services.yml");
    let t = std::fs::read_to_string(&services).unwrap();
    let from = "      GREETING: \"{{ greeting }}\"\n";
    assert!(t.contains(from));
    let t = t.replace(
        from,
        &format!("{from}      DB_PASSWORD: \"{{{{ db_password }}}}\"\n"),
    );
    // A backup of the database that fails (it cannot reach its server),
    // its command given the password through the environment.
    let t = format!(
        "{}    backup_scripts:\n      - name: web-db\n        backup_command: \"test -n \\\"$DB_PASSWORD\\\" && echo 'dump: cannot connect to the database server' >&2 && exit 3\"\n        restore_command: \"cat >/dev/null\"\n        ext: sql\n",
        t
    );
    std::fs::write(&services, t).unwrap();
    (dir, root)
}

fn container(n: usize) -> String {
    format!("hive-p-hive{n}.{SITE}")
}

/// `sh -c script` in a server's container: (success, stdout and stderr).
fn on(n: usize, script: &str) -> (bool, String) {
    let o = Command::new("docker")
        .args(["exec", &container(n), "sh", "-c", script])
        .output()
        .unwrap();
    (o.status.success(), text(&o))
}

/// What every run of hive printed, by run.
#[derive(Default)]
struct Printed(Vec<(String, Vec<u8>)>);

impl Printed {
    fn run(&mut self, root: &Path, args: &[&str]) -> Output {
        let o = hive(root, args);
        let label = args.join(" ");
        self.0
            .push((format!("stdout of hive {label}"), o.stdout.clone()));
        self.0
            .push((format!("stderr of hive {label}"), o.stderr.clone()));
        o
    }
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A file that is a secret as a whole: a password file or one PEM private
/// key.
fn is_secret_file(path: &Path, data: &[u8]) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
    matches!(name.as_ref(), "registry_password" | "db_password")
        || (first.starts_with(b"-----BEGIN") && first.ends_with(b"PRIVATE KEY-----"))
}

/// The strings that identify a private key in any text: the lines of its
/// body but the first (the same for every key of a kind) and the last
/// (short).
fn key_needles(name: &str, pem: &str) -> Vec<(String, String)> {
    let body: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    assert!(body.len() >= 3, "{name}: not a PEM key");
    body[1..body.len() - 1]
        .iter()
        .map(|l| (format!("a line of {name}"), l.to_string()))
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            files_under(&entry.path(), out);
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_never_printed_nor_logged() {
    let started = Instant::now();
    let (_tmp, root) = project();
    let _cleanup = common::DestroyOnDrop(root.clone());
    let mut printed = Printed::default();

    let built = printed.run(&root, &["-vv", "all"]);
    assert!(built.status.success(), "{}", text(&built));
    // -vv shows the libraries' debug events (there is something to search).
    assert!(
        String::from_utf8_lossy(&built.stderr).contains(" DEBUG hive_"),
        "{}",
        text(&built)
    );
    let again = printed.run(&root, &["-o", "json", "all"]);
    assert!(again.status.success(), "{}", text(&again));
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["result"], "ok", "{doc:#}");

    // The password reached the service (so a leak would have had a chance).
    let ctx = root.join(".hive/private");
    let db_password = std::fs::read_to_string(ctx.join("db_password")).unwrap();
    let db_password = db_password.trim().to_string();
    assert_eq!(db_password.len(), 15);
    let (ok, env) = on(
        0,
        "docker service inspect -f '{{json .Spec.TaskTemplate.ContainerSpec.Env}}' web",
    );
    assert!(ok && env.contains(&db_password), "{env}");

    // An external registry whose login fails (the site registry under a user
    // it does not know): setup-hosts fails naming it, never the password.
    let registry = format!("p-hive3.{SITE}:5000");
    let vars = root.join("inventory/group_vars/all.yml");
    let mut t = std::fs::read_to_string(&vars).unwrap();
    t.push_str(&format!(
        "hive_ext_repositories:\n  - repository: {registry}\n    login_user: {EXT_USER}\n    password: {EXT_PASSWORD}\n"
    ));
    std::fs::write(&vars, t).unwrap();
    for args in [
        &["-vv", "setup-hosts", "-T", "registry"][..],
        &["-o", "json", "setup-hosts", "-T", "registry"],
    ] {
        let o = printed.run(&root, args);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(&registry), "{}", text(&o));
    }
    // A failing backup: the error carries the command's own output, never
    // the password its command was given.
    for args in [&["-vv", "backup"][..], &["-o", "json", "backup"]] {
        let o = printed.run(&root, args);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("cannot connect to the database server"),
            "{}",
            text(&o)
        );
    }
    printed.run(&root, &["-o", "json", "history"]);

    security_properties(&root, &mut printed);

    // The secrets.
    let registry_password = std::fs::read_to_string(ctx.join("registry_password")).unwrap();
    let registry_password = registry_password.trim().to_string();
    let mut needles = vec![
        (
            "the registry password".to_string(),
            registry_password.clone(),
        ),
        (
            "the registry login".to_string(),
            base64(&format!("hive:{registry_password}")),
        ),
        (
            "the external password".to_string(),
            EXT_PASSWORD.to_string(),
        ),
        (
            "the external login".to_string(),
            base64(&format!("{EXT_USER}:{EXT_PASSWORD}")),
        ),
        ("the database password".to_string(), db_password.clone()),
    ];
    let mut files = Vec::new();
    files_under(&root.join(".hive"), &mut files);
    let mut secret_files = Vec::new();
    let mut keys = 0;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if !is_secret_file(f, &data) {
            continue;
        }
        if data.starts_with(b"-----BEGIN") {
            keys += 1;
            needles.extend(key_needles(
                &f.display().to_string(),
                &String::from_utf8_lossy(&data),
            ));
        }
        secret_files.push(f.clone());
    }
    // The SSH key, the CA key, the mother's client key (and its copy for
    // DOCKER_CERT_PATH) and one key per server at least.
    assert!(keys >= 1 + 1 + 2 + 4, "{secret_files:#?}");
    assert!(
        secret_files.iter().any(|f| f.ends_with("id_ed25519")),
        "{secret_files:#?}"
    );

    // Secret files 0600, the directories holding them 0700 (or closer).
    let mut open = Vec::new();
    for f in &secret_files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        if mode != 0o600 {
            open.push(format!("{}: mode {mode:o}", f.display()));
        }
        let dir = f.parent().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            open.push(format!("{}: mode {mode:o}", dir.display()));
        }
    }
    open.sort();
    open.dedup();

    // Where they must not be.
    let mut places: Vec<(String, Vec<u8>)> = printed.0;
    for f in files.iter().filter(|f| !secret_files.contains(f)) {
        places.push((f.display().to_string(), std::fs::read(f).unwrap()));
    }
    let logs = "for f in $(find /var/log /run/log -type f 2>/dev/null); do echo \"=== file $f\"; cat \"$f\"; done; \
echo '=== journalctl'; journalctl --no-pager -o export 2>/dev/null; true";
    for n in 0..4 {
        let o = Command::new("docker")
            .args(["exec", &container(n), "sh", "-c", logs])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let mut label = String::new();
        let mut part = Vec::new();
        for line in o.stdout.split_inclusive(|b| *b == b'\n') {
            if let Some(name) = line.strip_prefix(b"=== ") {
                if !label.is_empty() {
                    places.push((label, std::mem::take(&mut part)));
                }
                label = format!("{}:{}", container(n), String::from_utf8_lossy(name).trim());
            } else {
                part.extend_from_slice(line);
            }
        }
        places.push((label, part));
    }
    assert!(
        places.iter().any(|(p, _)| p.ends_with("journal.jsonl")),
        "no journal"
    );
    let mut hits = Vec::new();
    // Per kind of place: places, bytes, hits.
    let mut table = std::collections::BTreeMap::<&str, (usize, usize, usize)>::new();
    for (place, data) in &places {
        let kind = if place.starts_with("std") {
            "output of hive"
        } else if place.ends_with("journalctl") {
            assert!(!data.is_empty(), "{place}: empty");
            "journals of the servers"
        } else if place.starts_with(container(0).split("p-hive").next().unwrap()) {
            "/var/log and /run/log of the servers"
        } else {
            "files under .hive/"
        };
        let row = table.entry(kind).or_default();
        row.0 += 1;
        row.1 += data.len();
        for (what, needle) in &needles {
            if contains(data, needle) {
                hits.push(format!("{what} in {place}"));
                row.2 += 1;
            }
        }
    }
    println!(
        "{} secret strings, {} secret files; {:.0}s",
        needles.len(),
        secret_files.len(),
        started.elapsed().as_secs_f64()
    );
    for (kind, (n, bytes, found)) in &table {
        println!("{kind}: {n} places, {bytes} bytes, {found} hit(s)");
    }
    assert!(hits.is_empty(), "secrets found:\n{}", hits.join("\n"));
    assert!(
        open.is_empty(),
        "secret files open to others:\n{}",
        open.join("\n")
    );
}

/// The registry refuses anonymous pushes, the Docker API clients without a
/// certificate, and hive a server whose host key changed.
fn security_properties(root: &Path, printed: &mut Printed) {
    let tls = "--cacert /etc/hive/tls/ca.pem";
    let push = |auth: &str| {
        let (_, out) = on(
            0,
            &format!(
                "curl -s -o /dev/null -w '%{{http_code}}' {tls} {auth} -X POST https://p-hive3.{SITE}:5000/v2/anonymous/blobs/uploads/"
            ),
        );
        out
    };
    assert!(
        push("").contains("status Some(0)\n--- stdout\n401"),
        "{}",
        push("")
    );
    let pw = std::fs::read_to_string(root.join(".hive/private/registry_password")).unwrap();
    // The password goes to curl through a file, never on a command line.
    let (ok, out) = on(
        0,
        &format!(
            "umask 077; printf 'user = \"hive:%s\"\\n' '{}' > /root/.curl-auth",
            pw.trim()
        ),
    );
    assert!(ok, "{out}");
    let authed = push("-K /root/.curl-auth");
    on(0, "rm -f /root/.curl-auth");
    assert!(authed.contains("--- stdout\n202"), "{authed}");

    // The Docker API of another hive: refused without a client
    // certificate, answered with the server's own.
    let api = format!("https://p-hive1.{SITE}:2376/version");
    let (ok, out) = on(0, &format!("curl -sf {tls} {api}"));
    assert!(!ok, "answered without a client certificate: {out}");
    let (ok, out) = on(
        0,
        &format!(
            "curl -sf {tls} --cert /etc/hive/tls/server_cert.pem --key /etc/hive/tls/server_key.pem {api}"
        ),
    );
    assert!(ok && out.contains("ApiVersion"), "{out}");

    // A server whose host key changed is refused, naming it.
    let (ok, out) = on(
        1,
        "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh",
    );
    assert!(ok, "{out}");
    let host = format!("p-hive1.{SITE}");
    let o = printed.run(root, &["ssh", "-t", &host, "--", "hostname"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("host key"), "{}", text(&o));
}
