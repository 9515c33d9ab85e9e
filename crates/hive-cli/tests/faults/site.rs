//! The site the fault families share, the runs they break, the check that
//! a site is complete and correct, and the figures they print.
//!
//! One site (`tests/fixtures/faults-site`, one hive and a repository
//! server) is built by the first family that runs, in
//! `$CARGO_TARGET_TMPDIR/faults-site`, used by every family in turn (one at
//! a time) and destroyed by the last. A run that only ran some families
//! leaves it; the next run destroys it before building its own.

use crate::common::{self, hive, text};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The site's name, in its servers' names.
pub const SITE: &str = "faults.example";
/// The hive's container.
pub const HIVE: &str = "hive-p-hive0.faults.example";
/// The repository server's container.
pub const REPOSITORY: &str = "hive-p-hive1.faults.example";
/// The phases of `hive all`, in order.
pub const PHASES: [&str; 7] = [
    "build-infra",
    "setup-hosts",
    "build-images",
    "build-volumes",
    "build-networks",
    "deploy-services",
    "initialize-services",
];

/// The families of `faults.rs`: the last one to finish destroys the site.
const FAMILIES: usize = 8;
static LEFT: AtomicUsize = AtomicUsize::new(FAMILIES);
/// Whether the site is built (one family at a time holds it).
static BUILT: Mutex<bool> = Mutex::new(false);

/// The project's directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-site")
}

/// How many injections per case: `FAULTS_ROUNDS` (scripts/faults.sh), 1
/// by default.
pub fn rounds() -> usize {
    std::env::var("FAULTS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Whether every case of every family runs (`FAULTS_ROUNDS` given, as
/// scripts/faults.sh does); `cargo test` runs one case per family, chosen
/// by the seed, to stay within a few minutes.
pub fn full() -> bool {
    std::env::var_os("FAULTS_ROUNDS").is_some()
}

/// The cases a family runs: all of them with [`full`], else `fixed` when
/// given, else one picked by `rng`.
pub fn cases<T: Copy>(rng: &mut Rng, all: &[T], fixed: Option<T>) -> Vec<T> {
    if full() {
        all.to_vec()
    } else if let Some(one) = fixed {
        vec![one]
    } else {
        vec![all[rng.below(all.len() as u64) as usize]]
    }
}

/// A small seeded generator (xorshift), its seed printed by [`seeded`].
pub struct Rng(u64);

impl Rng {
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The generator of `family`: seeded by `FAULTS_SEED`, or by the clock;
/// the seed is printed so that a run can be replayed.
pub fn seeded(family: &str) -> Rng {
    let seed = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_007
        });
    eprintln!("{family}: FAULTS_SEED={seed}");
    Rng(seed.max(1))
}

/// The figures of a family.
pub struct Tally {
    family: &'static str,
    /// Faults injected.
    pub injections: usize,
    /// Injections after which the next plain run left a complete, correct
    /// site (or the fault's own expectation held).
    pub recovered: usize,
    /// What needed a hand, one line each.
    pub hand: Vec<String>,
}

impl Tally {
    /// Records one injection and what followed.
    pub fn record(&mut self, what: &str, outcome: Result<(), String>) {
        self.injections += 1;
        match outcome {
            Ok(()) => {
                self.recovered += 1;
                eprintln!("{}: {what}: recovered", self.family);
            }
            Err(e) => {
                eprintln!("{}: {what}: NEEDED A HAND: {e}", self.family);
                self.hand.push(format!("{what}: {e}"));
            }
        }
    }
}

/// Runs `body` on the shared site (building it first when needed), then
/// prints the family's figures (a `fault-figures:` line scripts/faults.sh
/// reads) and fails when an injection needed a hand.
pub fn family(name: &'static str, body: impl FnOnce(&Path, &mut Tally)) {
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    struct Last;
    impl Drop for Last {
        fn drop(&mut self) {
            if LEFT.fetch_sub(1, Ordering::SeqCst) == 1 {
                destroy();
            }
        }
    }
    let _last = Last;
    let root = root();
    if !*built {
        fresh_site(&root);
        *built = true;
    }
    let mut tally = Tally {
        family: name,
        injections: 0,
        recovered: 0,
        hand: Vec::new(),
    };
    let began = Instant::now();
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&root, &mut tally)));
    if outcome.is_err() {
        tally
            .hand
            .push("the family stopped: the site could not be repaired".into());
    }
    println!(
        "fault-figures: {name} injections={} recovered={} hand={} seconds={}",
        tally.injections,
        tally.recovered,
        tally.hand.len(),
        began.elapsed().as_secs()
    );
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(tally.injections > 0, "{name}: nothing injected");
    assert!(tally.hand.is_empty(), "{name}: {:#?}", tally.hand);
}

fn destroy() {
    let root = root();
    if root.exists() {
        let _ = hive(&root, &["--force-unlock", "build-infra", "-D", "--yes"]);
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// A new copy of the fixture at `root` (a site left there by an earlier
/// run destroyed first), built with `hive all`.
fn fresh_site(root: &Path) {
    destroy();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/faults-site");
    common::copy_dir(&src, root);
    let o = hive(root, &["all"]);
    assert!(o.status.success(), "the site: {}", text(&o));
}

/// Sets `app_build` in the project's group_vars: the next build-images
/// builds and pushes a new image, deploy-services updates the service.
pub fn set_build(root: &Path, mark: &str) {
    let p = root.join("inventory/group_vars/all.yml");
    let t = std::fs::read_to_string(&p).unwrap();
    let t: String = t
        .lines()
        .map(|l| {
            if l.starts_with("app_build:") {
                format!("app_build: \"{mark}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&p, t).unwrap();
}

/// A new image for the service: `app_build` set to `mark`, and the image
/// built now when a run from `phase` would not build it (it starts after
/// build-images): deploy-services has a new image to roll out.
pub fn new_image(root: &Path, mark: &str, phase: &str) {
    set_build(root, mark);
    let at = |p: &str| PHASES.iter().position(|q| *q == p).unwrap();
    if at(phase) > at("build-images") {
        let o = hive(root, &["build-images"]);
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// The hive or the repository server, as picked by `rng`: its container
/// and its server's short name.
pub fn any_server(rng: &mut Rng) -> (&'static str, &'static str) {
    if rng.below(2) == 0 {
        (HIVE, "p-hive0")
    } else {
        (REPOSITORY, "p-hive1")
    }
}

/// How long a broken run may take to end.
pub const BROKEN_RUN: Duration = Duration::from_secs(300);

/// `hive all -S phase` with a new image to roll out, `inject` called
/// `delay` into `phase`: the run must end within [`BROKEN_RUN`], and
/// succeed or name `server` in what it printed.
pub fn fault_in_phase(
    root: &Path,
    phase: &str,
    delay: Duration,
    server: &str,
    inject: impl FnOnce(),
) -> Result<(), String> {
    static MARKS: AtomicUsize = AtomicUsize::new(0);
    let n = MARKS.fetch_add(1, Ordering::SeqCst);
    let mark = format!("{phase}-{}-{n}", std::process::id());
    new_image(root, &mark, phase);
    let mut run = Running::start(root, &["all", "-S", phase]);
    run.wait_for(&format!("=== {phase}"), BROKEN_RUN);
    std::thread::sleep(delay);
    inject();
    run.finish(BROKEN_RUN)
        .and_then(|(ok, printed)| if ok { Ok(()) } else { names(&printed, server) })
}

/// Whether the error a failed run ended with (`error: phase P failed ...`,
/// with what follows it) names the phase and `server`.
pub fn names(printed: &str, server: &str) -> Result<(), String> {
    match printed.find("error: phase ").map(|i| &printed[i..]) {
        Some(error) if error.contains(server) => Ok(()),
        Some(error) => Err(format!("the error does not name {server}: {error}")),
        None => Err(format!("it failed without naming the phase: {printed}")),
    }
}

/// The `app_build` the project gives.
pub fn build_mark(root: &Path) -> String {
    let t = std::fs::read_to_string(root.join("inventory/group_vars/all.yml")).unwrap();
    let line = t.lines().find(|l| l.starts_with("app_build:")).unwrap();
    line["app_build:".len()..]
        .trim()
        .trim_matches('"')
        .to_string()
}

/// `sh -c script` in a server's container: (success, stdout and stderr).
pub fn on(container: &str, script: &str) -> (bool, String) {
    let o = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.status.success(), text(&o))
}

/// A running `hive` whose standard output is read line by line.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// What it printed so far (both outputs, stdout first as read).
    pub printed: String,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    /// Starts `hive -r root ARGS`.
    pub fn start(root: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hive"))
            .arg("-r")
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run hive");
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Running {
            child,
            lines,
            printed: String::new(),
            stderr,
        }
    }

    /// Waits up to `limit` for a line containing `needle`; whether it came
    /// (false when the run ended first).
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.printed.push_str(&line);
                    self.printed.push('\n');
                    if line.contains(needle) {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// `kill -9`; whether it was still running.
    pub fn kill9(mut self) -> bool {
        let alive = self.alive();
        let _ = self.child.kill();
        let _ = self.child.wait();
        alive
    }

    /// Waits up to `limit` for it to end: its exit status and everything it
    /// printed, or an error when it did not end (it is then killed).
    pub fn finish(mut self, limit: Duration) -> Result<(bool, String), String> {
        let end = Instant::now() + limit;
        while self.alive() {
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!(
                    "still running after {} s: {}",
                    limit.as_secs(),
                    self.printed
                ));
            }
            while let Ok(line) = self.lines.try_recv() {
                self.printed.push_str(&line);
                self.printed.push('\n');
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.printed.push_str(&line);
            self.printed.push('\n');
        }
        let err = self.stderr.join().unwrap_or_default();
        Ok((status.success(), format!("{}\n{err}", self.printed)))
    }
}

/// A plain `hive all`, then the site checked: complete and correct, or
/// what is wrong.
pub fn rerun_and_check(root: &Path) -> Result<(), String> {
    let o = hive(root, &["all"]);
    if !o.status.success() {
        return Err(format!("the plain re-run failed: {}", text(&o)));
    }
    site_correct(root)
}

/// The site is complete and correct: `hive status` healthy (its service
/// running as asked), the service's image the one the project gives, its
/// volume initialized, and every file under `.hive/` whole.
pub fn site_correct(root: &Path) -> Result<(), String> {
    let mut last = String::new();
    let mut healthy = false;
    for _ in 0..40 {
        let o = hive(root, &["status"]);
        if o.status.success() {
            healthy = true;
            break;
        }
        last = text(&o);
        std::thread::sleep(Duration::from_secs(1));
    }
    if !healthy {
        return Err(format!("the site stays unhealthy: {last}"));
    }
    let mark = build_mark(root);
    let script = "c=$(docker ps -q --filter label=com.docker.swarm.service.name=app --filter status=running | head -n1); \
                  [ -n \"$c\" ] && docker exec \"$c\" cat /srv/build.txt /srv/data/initial.txt";
    let (ok, out) = on(HIVE, script);
    let want = format!("build {mark} of {SITE}\ninitial data of {SITE}\n");
    if !ok || !out.contains(&want) {
        return Err(format!(
            "the service's container does not have {want:?}: {out}"
        ));
    }
    state_whole(root)
}

/// Every file under `.hive/` parses as what it is (YAML, JSON, JSON lines,
/// PEM, ssh_config, known_hosts), and no temporary file is left there.
pub fn state_whole(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    walk(&root.join(".hive"), &mut files);
    for f in &files {
        if let Err(e) = parses(f) {
            problems.push(format!("{}: {e}", f.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The files under `.hive/` written but never renamed into place.
pub fn temporaries(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(&root.join(".hive"), &mut files);
    files.retain(|f| {
        let name = f.file_name().unwrap().to_string_lossy();
        name.ends_with(".tmp") || name.starts_with(".tmp")
    });
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn parses(f: &Path) -> Result<(), String> {
    let name = f.file_name().unwrap().to_string_lossy().into_owned();
    let data = std::fs::read(f).map_err(|e| e.to_string())?;
    let s = String::from_utf8_lossy(&data);
    let ext = f.extension().map(|e| e.to_string_lossy().into_owned());
    match ext.as_deref() {
        Some("yml" | "yaml") => serde_yaml::from_str::<serde_yaml::Value>(&s)
            .map(drop)
            .map_err(|e| e.to_string()),
        Some("json") => serde_json::from_str::<serde_json::Value>(&s)
            .map(drop)
            .map_err(|e| e.to_string()),
        Some("jsonl") => s.lines().enumerate().try_for_each(|(n, l)| {
            serde_json::from_str::<serde_json::Value>(l)
                .map(drop)
                .map_err(|e| format!("line {}: {e}", n + 1))
        }),
        Some("pem" | "crt" | "key") => pem_whole(&s),
        _ if name == "lock" => {
            if s.trim().is_empty() {
                Ok(())
            } else {
                serde_json::from_str::<serde_json::Value>(&s)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
        _ if s.starts_with("-----BEGIN") => pem_whole(&s),
        _ if name == "known_hosts" => s.lines().try_for_each(|l| {
            if l.split_whitespace().count() >= 3 {
                Ok(())
            } else {
                Err(format!("a line of fewer than 3 fields: {l:?}"))
            }
        }),
        _ if name.ends_with(".tmp") || name.starts_with(".tmp") => {
            Err("a temporary file left behind".to_string())
        }
        _ if !data.is_empty() && !s.ends_with('\n') && is_text_state(&name) => {
            Err("no final newline: cut short?".to_string())
        }
        _ => Ok(()),
    }
}

/// Text state files hive writes whole with a final newline.
fn is_text_state(name: &str) -> bool {
    matches!(name, "ssh_config" | "hosts" | "known_hosts")
}

fn pem_whole(s: &str) -> Result<(), String> {
    let begins = s.matches("-----BEGIN ").count();
    let ends = s.matches("-----END ").count();
    if begins > 0 && begins == ends && s.trim_end().ends_with("-----") {
        Ok(())
    } else {
        Err(format!("a cut PEM file ({begins} BEGIN, {ends} END)"))
    }
}

/// Brings the site back by hand after an injection it did not recover
/// from: every server container started, then `hive all` from the first
/// phase, forcing the lock. Panics when even that fails.
pub fn repair_by_hand(root: &Path) {
    for c in [HIVE, REPOSITORY] {
        let _ = Command::new("docker").args(["start", c]).output();
    }
    std::thread::sleep(Duration::from_secs(5));
    let o = hive(root, &["--force-unlock", "all", "-S", "build-infra"]);
    assert!(
        o.status.success(),
        "the site cannot be repaired: {}",
        text(&o)
    );
    site_correct(root).expect("the site, repaired");
}

/// Records the injection `what`: the re-run's result when the fault's own
/// check `first` passed; repaired by hand when anything failed.
pub fn settle(root: &Path, tally: &mut Tally, what: &str, first: Result<(), String>) {
    let outcome = first.and_then(|()| rerun_and_check(root));
    let failed = outcome.is_err();
    tally.record(what, outcome);
    if failed {
        repair_by_hand(root);
    }
}
