//! What the phase reports: per step and server, per server, per stage.

use crate::os::OsFamily;
use std::fmt;
use std::time::Duration;

use crate::error::SetupHostsError;
use crate::steps::StepTag;

/// What one step did (or, in check mode, would do) on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The step.
    pub step: StepTag,
    /// What differed from its desired state (and was changed unless in
    /// check mode); empty when the server was already as wanted.
    pub changed: Vec<String>,
    /// Remarks that are not changes (e.g. a step waiting for a component).
    pub notes: Vec<String>,
    /// Time spent on this server.
    pub elapsed: Duration,
}

/// What the phase did on one server.
#[derive(Debug)]
pub struct HostReport {
    /// The server's name.
    pub host: String,
    /// Its operating system family, once detected.
    pub os: Option<OsFamily>,
    /// The steps that ran, in order.
    pub steps: Vec<StepOutcome>,
    /// The step that failed on it and why; later steps did not run there.
    pub failure: Option<(String, SetupHostsError)>,
}

impl HostReport {
    /// How many things differed on this server.
    pub fn change_count(&self) -> usize {
        self.steps.iter().map(|s| s.changed.len()).sum()
    }
}

/// What the phase did on the whole stage.
#[derive(Debug)]
pub struct SetupReport {
    /// Whether this was a check (`-C`): nothing was changed.
    pub check_mode: bool,
    /// Changes on the mother machine (CA, certificates, registry password).
    pub local_changes: Vec<String>,
    /// One report per server acted on, in inventory order.
    pub hosts: Vec<HostReport>,
    /// Wall-clock time of each step across all servers.
    pub step_times: Vec<(StepTag, Duration)>,
}

impl SetupReport {
    /// Total count of things that differed (local and on servers).
    pub fn change_count(&self) -> usize {
        self.local_changes.len()
            + self
                .hosts
                .iter()
                .map(HostReport::change_count)
                .sum::<usize>()
    }
    /// The servers that failed.
    pub fn failed(&self) -> impl Iterator<Item = &HostReport> {
        self.hosts.iter().filter(|h| h.failure.is_some())
    }
    /// Whether every server completed every step.
    pub fn success(&self) -> bool {
        self.failed().next().is_none()
    }
}

impl fmt::Display for SetupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.check_mode {
            "would change"
        } else {
            "changed"
        };
        for c in &self.local_changes {
            writeln!(f, "mother: {verb}: {c}")?;
        }
        for h in &self.hosts {
            for s in &h.steps {
                if s.changed.is_empty() {
                    write!(f, "{} {}: no change", h.host, s.step)?;
                } else {
                    write!(f, "{} {}: {verb}: {}", h.host, s.step, s.changed.join(", "))?;
                }
                for n in &s.notes {
                    write!(f, " ({n})")?;
                }
                writeln!(f)?;
            }
            if let Some((step, e)) = &h.failure {
                write!(f, "{} {step}: FAILED: {e}", h.host)?;
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    write!(f, ": {c}")?;
                    cause = c.source();
                }
                writeln!(f)?;
            }
        }
        let failed = self.failed().count();
        write!(
            f,
            "{} {} on {} servers",
            self.change_count(),
            if self.check_mode {
                "pending changes"
            } else {
                "changes"
            },
            self.hosts.len()
        )?;
        if self.change_count() == 0 {
            write!(f, " (no change)")?;
        }
        if failed > 0 {
            write!(f, "; {failed} failed")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_says_no_change_or_what_changed_and_why_a_server_failed() {
        let report = SetupReport {
            check_mode: false,
            local_changes: Vec::new(),
            hosts: vec![
                HostReport {
                    host: "p-hive0".into(),
                    os: Some(OsFamily::Debian),
                    steps: vec![StepOutcome {
                        step: StepTag::Base,
                        changed: Vec::new(),
                        notes: Vec::new(),
                        elapsed: Duration::ZERO,
                    }],
                    failure: None,
                },
                HostReport {
                    host: "p-hive1".into(),
                    os: Some(OsFamily::Debian),
                    steps: vec![StepOutcome {
                        step: StepTag::Base,
                        changed: vec!["file /etc/hosts".into()],
                        notes: Vec::new(),
                        elapsed: Duration::ZERO,
                    }],
                    failure: Some((
                        "docker".into(),
                        SetupHostsError::Transport {
                            host: "p-hive1".into(),
                            source: Box::new(hive_provider::ProviderError::SessionClosed {
                                host: "p-hive1".into(),
                                reason: ": connection reset".into(),
                            }),
                        },
                    )),
                },
            ],
            step_times: Vec::new(),
        };
        let text = report.to_string();
        assert!(text.contains("p-hive0 base: no change\n"), "{text}");
        assert!(
            text.contains("p-hive1 base: changed: file /etc/hosts\n"),
            "{text}"
        );
        assert!(
            text.contains("p-hive1 docker: FAILED: p-hive1: unreachable: ssh p-hive1: the session is closed: connection reset"),
            "{text}"
        );
        assert!(text.ends_with("1 changes on 2 servers; 1 failed"), "{text}");
        assert_eq!(report.change_count(), 1);
        assert!(!report.success());
    }
}
