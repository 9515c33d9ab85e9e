//! The swarm step's parameters: `docker_gwbridge` and ingress subnets from
//! `internal_cidr`, init on the first hive, the other hives joined as
//! managers, node labels from the servers' groups.
//!
//! The step talks to the hives' Docker engines with the cluster API of
//! `hive-swarm` ([`hive_swarm::Engine`]), reached through the
//! [`EngineConnector`](super::EngineConnector) given to the phase; this
//! module derives what it asks for and words what it changed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::error::Result;
use crate::steps::StepTag;
use std::net::{Ipv4Addr, SocketAddr};

use hive_swarm::{SWARM_PORT, SwarmInit, SwarmJoin};
use ipnet::Ipv4Net;

use super::error::SetupHostsError;
use super::net::InternalNetworks;
use super::params::{Server, SetupHostsParams};
use super::run::{HostRun, SetupHosts, record};

/// The subnet of `docker_gwbridge` and the `internal_cidr` it comes from.
pub(crate) fn gwbridge(p: &SetupHostsParams) -> Option<(Ipv4Net, Ipv4Net)> {
    p.internal_cidr
        .map(|cidr| (InternalNetworks::split(cidr).docker_gwbridge, cidr))
}

/// How the first hive initialises the swarm: advertising its private
/// address, with the overlay quarter of `internal_cidr` as the address
/// pool, carved in subnets two bits longer (between /24 and /29).
pub(crate) fn init(p: &SetupHostsParams, first: &Server) -> SwarmInit {
    let mut init = SwarmInit::new(first.private_ip.into());
    if let Some(cidr) = p.internal_cidr {
        let overlay = InternalNetworks::split(cidr).overlay;
        init.default_addr_pool = vec![overlay];
        init.subnet_size = Some((overlay.prefix_len() + 2).clamp(24, 29));
    }
    init
}

/// The ingress network's subnet and gateway.
pub(crate) fn ingress(p: &SetupHostsParams) -> Option<(Ipv4Net, Ipv4Addr)> {
    p.internal_cidr.map(|cidr| {
        let n = InternalNetworks::split(cidr);
        (n.ingress, n.ingress_gateway)
    })
}

/// How `server` joins the swarm of `first`.
pub(crate) fn join(server: &Server, first: &Server) -> SwarmJoin {
    SwarmJoin::new(
        server.private_ip.into(),
        SocketAddr::new(first.private_ip.into(), SWARM_PORT).to_string(),
    )
}

/// The node labels of a hive: `<group>=true` for each of its groups.
pub(crate) fn labels(server: &Server) -> Vec<(String, String)> {
    server
        .groups
        .iter()
        .map(|g| (g.clone(), "true".to_string()))
        .collect()
}

/// What the step reports for a label set on `server`'s node.
pub(crate) fn label_change(server: &Server, label: &str) -> String {
    format!("node {} label {label}", server.hostname())
}

/// The phase's error for a cluster operation that failed on `host`.
pub(crate) fn error(host: &str, e: hive_swarm::Error) -> SetupHostsError {
    if matches!(e, hive_swarm::Error::SubnetMismatch { .. }) {
        return SetupHostsError::Params {
            key: "internal_cidr".into(),
            reason: e.to_string(),
        };
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    if e.is_unreachable() {
        SetupHostsError::Unreachable {
            host: host.to_string(),
            reason: text,
        }
    } else {
        SetupHostsError::Remote {
            host: host.to_string(),
            what: "the swarm's Docker API".into(),
            status: e.engine_status().map_or(1, i32::from),
            stderr: text,
        }
    }
}

/// How long the swarm step retries creating the ingress network while the
/// old one is being removed.
const INGRESS_TIMEOUT: Duration = Duration::from_secs(30);

fn merge(entry: &mut (Result<Vec<String>>, Duration), r: Result<Vec<String>>, d: Duration) {
    entry.1 += d;
    match (&mut entry.0, r) {
        (Ok(v), Ok(more)) => v.extend(more),
        (Ok(_), Err(e)) => entry.0 = Err(e),
        (Err(_), _) => {}
    }
}

/// The swarm step's outcome on one host: its changes and the time spent.
type Outcome = (Result<Vec<String>>, Duration);

/// What the parts of the swarm step hand on to each other.
#[derive(Default)]
struct SwarmRun {
    /// The outcome of each host, by index.
    outcomes: HashMap<usize, Outcome>,
    /// The engines reached, by host index; `None`: no engine yet, in check
    /// mode only.
    engines: HashMap<usize, Option<hive_swarm::Engine>>,
    /// Why the first hive cannot lead the swarm.
    first_error: Option<String>,
    /// The managers' join token.
    token: Option<String>,
    /// Whether the first hive is a manager already (not so in check mode
    /// before the first run).
    manager_ready: bool,
}

/// Adds `r` and `d` to the outcome of host `i`.
fn merge_into(
    outcomes: &mut HashMap<usize, Outcome>,
    i: usize,
    r: Result<Vec<String>>,
    d: Duration,
) {
    let entry = outcomes
        .entry(i)
        .or_insert((Ok(Vec::new()), Duration::ZERO));
    merge(entry, r, d);
}

/// Whether the swarm step acts on `h`: a hive acted on that has not failed.
fn live(h: &HostRun) -> bool {
    h.acting && h.report.failure.is_none() && h.server.role.is_hive()
}

impl SwarmRun {
    /// Whether host `i` has not failed in this step so far.
    fn ok(&self, i: usize) -> bool {
        self.outcomes.get(&i).is_none_or(|(r, _)| r.is_ok())
    }
}

impl SetupHosts {
    pub(crate) async fn run_swarm(&self, hosts: &mut [HostRun]) {
        let Some(first) = self.params.first_hive().cloned() else {
            return;
        };
        let fi = hosts.iter().position(|h| h.server.name == first.name);
        let mut run = self.swarm_engines(hosts, fi).await;
        self.swarm_init(hosts, fi, &first, &mut run).await;
        self.swarm_join(hosts, fi, &first, &mut run).await;
        if run.first_error.is_none() {
            self.swarm_labels(hosts, fi, &mut run).await;
        }
        let mut keys: Vec<usize> = run.outcomes.keys().copied().collect();
        keys.sort_unstable();
        for i in keys {
            if let Some(r) = run.outcomes.remove(&i) {
                if hosts[i].acting {
                    record(&mut hosts[i], StepTag::Swarm, r);
                }
            }
        }
    }

    /// Step 1: The engines of the hives acted on (and of the first hive, which
    /// the others need even when it is limited out), and docker_gwbridge on
    /// each hive acted on, before it joins.
    async fn swarm_engines(&self, hosts: &[HostRun], fi: Option<usize>) -> SwarmRun {
        let p = &self.params;
        let check = self.check;
        let mut run = SwarmRun::default();
        let mut wanted: Vec<usize> = (0..hosts.len()).filter(|&i| live(&hosts[i])).collect();
        if let Some(i) = fi {
            if !wanted.contains(&i) && hosts[i].report.failure.is_none() && hosts[i].os.is_some() {
                wanted.push(i);
            }
        }
        let gw = gwbridge(p);
        let results = join_all(wanted.iter().map(|&i| {
            let name = hosts[i].server.name.clone();
            let acting = hosts[i].acting;
            async move {
                let start = Instant::now();
                let r = async {
                    let connector =
                        self.engines
                            .as_ref()
                            .ok_or_else(|| SetupHostsError::Params {
                                key: "engines".into(),
                                reason: format!(
                                    "the swarm step was given no way to reach the Docker engine of {name}"
                                ),
                            })?;
                    let engine = connector.engine(&name).await?;
                    let mut changed = Vec::new();
                    if let (Some((subnet, cidr)), true) = (gw, acting) {
                        let differs = match &engine {
                            Some(engine) => engine
                                .ensure_gwbridge(subnet, cidr, check)
                                .await
                                .map_err(|e| error(&name, e))?,
                            None => true,
                        };
                        if differs {
                            changed.push(format!("network {} {subnet}", hive_swarm::GWBRIDGE));
                        }
                    }
                    if engine.is_none() && !check {
                        return Err(SetupHostsError::Unreachable {
                            host: name.clone(),
                            reason: "it has no Docker engine (/var/run/docker.sock is missing): the docker step must run first".into(),
                        });
                    }
                    Ok::<_, SetupHostsError>((engine, changed))
                }
                .await;
                (r, start.elapsed())
            }
        }))
        .await;
        for (i, (r, d)) in wanted.into_iter().zip(results) {
            match r {
                Ok((engine, changed)) => {
                    run.engines.insert(i, engine);
                    if hosts[i].acting {
                        run.outcomes.insert(i, (Ok(changed), d));
                    }
                }
                Err(e) => {
                    if Some(i) == fi {
                        run.first_error = Some(e.to_string());
                    }
                    if hosts[i].acting {
                        run.outcomes.insert(i, (Err(e), d));
                    }
                }
            }
        }
        run
    }

    /// Step 2: On the first hive: init, the ingress network, the join token.
    async fn swarm_init(
        &self,
        hosts: &[HostRun],
        fi: Option<usize>,
        first: &Server,
        run: &mut SwarmRun,
    ) {
        let p = &self.params;
        let check = self.check;
        let first_engine = fi.and_then(|i| run.engines.get(&i).map(|e| (i, e.as_ref())));
        match first_engine {
            Some((i, None)) if run.first_error.is_none() => {
                let mut changed = vec!["swarm initialised".to_string()];
                if let Some((subnet, _)) = ingress(p) {
                    changed.push(format!("network {} {subnet}", hive_swarm::INGRESS));
                }
                if hosts[i].acting {
                    merge_into(&mut run.outcomes, i, Ok(changed), Duration::ZERO);
                }
            }
            Some((i, Some(engine))) if run.first_error.is_none() => {
                let start = Instant::now();
                let r = async {
                    let mut changed = Vec::new();
                    let initialised = engine.init_swarm(&init(p, first), check).await?;
                    if initialised {
                        changed.push("swarm initialised".to_string());
                    }
                    if let Some((subnet, gateway)) = ingress(p) {
                        if engine
                            .ensure_ingress(subnet, gateway, INGRESS_TIMEOUT, check)
                            .await?
                        {
                            changed.push(format!("network {} {subnet}", hive_swarm::INGRESS));
                        }
                    }
                    let token = if check && initialised {
                        None
                    } else {
                        Some(engine.manager_join_token().await?)
                    };
                    Ok::<_, hive_swarm::Error>((changed, token))
                }
                .await
                .map_err(|e| error(&first.name, e));
                let r = match r {
                    Ok((changed, t)) => {
                        run.manager_ready = t.is_some();
                        run.token = t;
                        Ok(changed)
                    }
                    Err(e) => {
                        run.first_error = Some(e.to_string());
                        Err(e)
                    }
                };
                if hosts[i].acting {
                    merge_into(&mut run.outcomes, i, r, start.elapsed());
                }
            }
            _ => {
                run.first_error
                    .get_or_insert_with(|| format!("first hive {} is not available", first.name));
            }
        }
    }

    /// Step 3: The other hives join as managers.
    async fn swarm_join(
        &self,
        hosts: &[HostRun],
        fi: Option<usize>,
        first: &Server,
        run: &mut SwarmRun,
    ) {
        let check = self.check;
        let joiners: Vec<usize> = (0..hosts.len())
            .filter(|&i| live(&hosts[i]) && Some(i) != fi && run.ok(i))
            .filter(|i| run.engines.contains_key(i))
            .collect();
        let results = join_all(joiners.iter().map(|&i| {
            let server = &hosts[i].server;
            let engine = run.engines[&i].as_ref();
            let token = run.token.as_deref();
            let first_error = run.first_error.as_deref();
            async move {
                let start = Instant::now();
                let r = match (first_error, engine) {
                    (Some(e), _) => Err(SetupHostsError::Skipped {
                        host: server.name.clone(),
                        step: format!("swarm on the first hive ({e})"),
                    }),
                    (None, None) => Ok(vec!["swarm joined as manager".to_string()]),
                    (None, Some(engine)) => engine
                        .join_as_manager(&join(server, first), token.unwrap_or_default(), check)
                        .await
                        .map(|joined| {
                            if joined {
                                vec!["swarm joined as manager".to_string()]
                            } else {
                                Vec::new()
                            }
                        })
                        .map_err(|e| error(&server.name, e)),
                };
                (r, start.elapsed())
            }
        }))
        .await;
        for (i, (r, d)) in joiners.into_iter().zip(results) {
            merge_into(&mut run.outcomes, i, r, d);
        }
    }

    /// Step 4: Labels from the groups of every hive acted on, set through the
    /// first hive and reported on the hive they concern.
    async fn swarm_labels(&self, hosts: &[HostRun], fi: Option<usize>, run: &mut SwarmRun) {
        let check = self.check;
        let manager = fi
            .and_then(|i| run.engines.get(&i))
            .and_then(Option::as_ref)
            .filter(|_| run.manager_ready);
        let labelled: Vec<usize> = (0..hosts.len())
            .filter(|&i| live(&hosts[i]) && run.ok(i))
            .collect();
        let results = join_all(labelled.iter().map(|&i| {
            let server = &hosts[i].server;
            async move {
                let start = Instant::now();
                let labels = labels(server);
                let r = if let Some(manager) = manager {
                    manager
                        .ensure_node_labels(server.hostname(), &labels, check)
                        .await
                        .map_err(|e| error(&server.name, e))
                } else {
                    // Check mode before the swarm exists: all of them.
                    Ok(labels.iter().map(|(k, v)| format!("{k}={v}")).collect())
                };
                let r = r.map(|added| added.iter().map(|l| label_change(server, l)).collect());
                (r, start.elapsed())
            }
        }))
        .await;
        for (i, (r, d)) in labelled.into_iter().zip(results) {
            merge_into(&mut run.outcomes, i, r, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ServerRole;

    fn hive(n: u8) -> Server {
        Server {
            name: format!("hive{n}.pdns"),
            role: ServerRole::Hive,
            private_ip: format!("10.0.0.{}", 10 + n).parse().unwrap(),
            groups: vec!["hives".into(), format!("zone{n}")],
        }
    }

    #[test]
    fn init_join_and_networks_from_internal_cidr() {
        let mut p = SetupHostsParams::new("private", "pdns", "/tmp", vec![hive(0), hive(1)]);
        let plain = init(&p, &p.servers[0]);
        assert_eq!(plain.advertise_addr.to_string(), "10.0.0.10");
        assert!(plain.default_addr_pool.is_empty() && plain.subnet_size.is_none());
        assert_eq!((gwbridge(&p), ingress(&p)), (None, None));

        fn check(cidr: &str, pool: &str, size: u8, gw: &str, ingress_net: &str, ingress_gw: &str) {
            let mut p = SetupHostsParams::new("private", "pdns", "/tmp", vec![hive(0)]);
            p.internal_cidr = Some(cidr.parse().unwrap());
            let i = init(&p, &p.servers[0]);
            assert_eq!(i.default_addr_pool[0].to_string(), pool, "{cidr}");
            assert_eq!(i.subnet_size, Some(size), "{cidr}");
            let (bridge, from) = gwbridge(&p).unwrap();
            assert_eq!(
                (bridge.to_string(), from.to_string()),
                (gw.into(), cidr.into())
            );
            let (net, gateway) = ingress(&p).unwrap();
            assert_eq!(
                (net.to_string(), gateway.to_string()),
                (ingress_net.into(), ingress_gw.into())
            );
        }
        check(
            "172.31.250.0/24",
            "172.31.250.0/26",
            28,
            "172.31.250.128/27",
            "172.31.250.64/26",
            "172.31.250.65",
        );
        check(
            "10.231.0.0/16",
            "10.231.0.0/18",
            24,
            "10.231.128.0/19",
            "10.231.64.0/18",
            "10.231.64.1",
        );
        check(
            "10.0.0.0/8",
            "10.0.0.0/10",
            24,
            "10.128.0.0/11",
            "10.64.0.0/10",
            "10.64.0.1",
        );

        p.internal_cidr = Some("172.31.250.0/24".parse().unwrap());
        let j = join(&p.servers[1], &p.servers[0]);
        assert_eq!(j.advertise_addr.to_string(), "10.0.0.11");
        assert_eq!(j.remote_addr, "10.0.0.10:2377");
        let l = labels(&p.servers[1]);
        assert_eq!(
            l,
            [
                ("hives".to_string(), "true".to_string()),
                ("zone1".to_string(), "true".to_string())
            ]
        );
        assert_eq!(
            label_change(&p.servers[1], "zone1=true"),
            "node hive1 label zone1=true"
        );
    }

    #[test]
    fn a_subnet_mismatch_is_a_parameter_error_naming_internal_cidr() {
        let e = error(
            "hive1.pdns",
            hive_swarm::Error::SubnetMismatch {
                hive: "hive1.pdns".into(),
                network: "docker_gwbridge",
                have: "10.1.128.0/19".into(),
                want: "10.2.128.0/19".parse().unwrap(),
                internal_cidr: "10.2.0.0/16".parse().unwrap(),
                reason: "the hive is in a swarm (state active)".into(),
            },
        );
        let text = e.to_string();
        assert!(
            text.starts_with("invalid setup-hosts parameter internal_cidr: hive hive1.pdns: network docker_gwbridge has subnet 10.1.128.0/19, but internal_cidr 10.2.0.0/16 asks for 10.2.128.0/19"),
            "{text}"
        );
        let e = error(
            "hive1.pdns",
            hive_swarm::Error::EngineApi {
                hive: "hive1.pdns".into(),
                action: "join the swarm of 10.0.0.10:2377 as a manager".into(),
                status: 503,
                message: "timeout was reached".into(),
            },
        );
        assert!(
            matches!(e, SetupHostsError::Remote { status: 503, .. }),
            "{e:?}"
        );
    }
}
