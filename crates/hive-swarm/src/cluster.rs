//! The swarm cluster itself, as setup-hosts builds it: `docker_gwbridge`
//! on every hive, `swarm init` on the first hive, the ingress network with
//! the subnet of `internal_cidr`, the other hives joined as managers, and
//! node labels from the servers' groups.
//!
//! Every operation is idempotent and says whether it changed anything (or,
//! with `check`, whether it would), so a second run reports no change and
//! a check run lists what would change without changing it.
//!
//! The engines are reached through a Unix socket (the local engine or a
//! server's socket forwarded over SSH). Networks and the engine's state go
//! through [`bollard`]; the few swarm and node endpoints that bollard 0.18
//! lacks (init, join, join tokens, node labels) are plain JSON calls on
//! the same socket with bollard's models.
//!
//! ```no_run
//! use hive_swarm::{Engine, SwarmInit, SwarmJoin};
//! # async fn demo() -> Result<(), hive_swarm::Error> {
//! let first = Engine::connect_unix("hive0", "/tmp/sockets/hive0.sock").await?;
//! let other = Engine::connect_unix("hive1", "/tmp/sockets/hive1.sock").await?;
//! let cidr: ipnet::Ipv4Net = "10.231.0.0/16".parse().unwrap();
//! for e in [&first, &other] {
//!     e.ensure_gwbridge("10.231.128.0/19".parse().unwrap(), cidr, false).await?;
//! }
//! let mut init = SwarmInit::new("10.0.0.10".parse().unwrap());
//! init.default_addr_pool = vec!["10.231.0.0/18".parse().unwrap()];
//! init.subnet_size = Some(24);
//! first.init_swarm(&init, false).await?;
//! let token = first.manager_join_token().await?;
//! other
//!     .join_as_manager(&SwarmJoin::new("10.0.0.11".parse().unwrap(), "10.0.0.10:2377"), &token, false)
//!     .await?;
//! let added = first
//!     .ensure_node_labels("hive1", &[("zone1".into(), "true".into())], false)
//!     .await?;
//! println!("labels added: {added:?}");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    IpamConfig, LocalNodeState, Network, Node, Swarm, SwarmInitRequest, SwarmJoinRequest,
};
use bollard::network::{CreateNetworkOptions, InspectNetworkOptions};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use ipnet::Ipv4Net;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::hive::Hive;

/// The name of the bridge that connects a hive's swarm containers to the
/// outside.
pub const GWBRIDGE: &str = "docker_gwbridge";
/// The name of the swarm's routing-mesh network.
pub const INGRESS: &str = "ingress";
/// The port managers listen on for the swarm's control plane.
pub const SWARM_PORT: u16 = 2377;

/// How a swarm is initialised ([`Engine::init_swarm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmInit {
    /// The address other nodes reach this one at (`--advertise-addr`).
    pub advertise_addr: IpAddr,
    /// The pools overlay networks get their subnets from
    /// (`--default-addr-pool`); Docker's default when empty.
    pub default_addr_pool: Vec<Ipv4Net>,
    /// The prefix length of each overlay subnet carved from the pools
    /// (`--default-addr-pool-mask-length`).
    pub subnet_size: Option<u8>,
}

impl SwarmInit {
    /// Init advertising `advertise_addr`, with Docker's address pools.
    pub fn new(advertise_addr: IpAddr) -> Self {
        SwarmInit {
            advertise_addr,
            default_addr_pool: Vec::new(),
            subnet_size: None,
        }
    }
}

/// How a hive joins a swarm ([`Engine::join_as_manager`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmJoin {
    /// The address other nodes reach this one at.
    pub advertise_addr: IpAddr,
    /// A manager of the swarm, `host:port` (the first hive, port 2377).
    pub remote_addr: String,
}

impl SwarmJoin {
    /// Join through the manager at `remote_addr` (`ip:2377`), advertising
    /// `advertise_addr`.
    pub fn new(advertise_addr: IpAddr, remote_addr: impl Into<String>) -> Self {
        SwarmJoin {
            advertise_addr,
            remote_addr: remote_addr.into(),
        }
    }
}

/// The Docker engine of one hive, for the cluster operations.
#[derive(Debug, Clone)]
pub struct Engine {
    name: String,
    docker: Docker,
    socket: PathBuf,
    timeout: Duration,
}

fn connection_error(
    hive: &str,
    action: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::EngineConnection {
        hive: hive.to_string(),
        action: action.to_string(),
        source: Box::new(e),
    }
}

fn subnets(network: &Network) -> Vec<IpamConfig> {
    network
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default()
}

fn subnet_list(config: &[IpamConfig]) -> String {
    let s: Vec<&str> = config.iter().filter_map(|c| c.subnet.as_deref()).collect();
    if s.is_empty() {
        "none".to_string()
    } else {
        s.join(", ")
    }
}

fn state_name(state: &LocalNodeState) -> String {
    match state {
        LocalNodeState::EMPTY => "inactive".to_string(),
        s => s.to_string(),
    }
}

impl Engine {
    /// Connect to the engine answering on the Unix socket `socket` (and
    /// negotiate the API version with it); `name` is the hive's name in
    /// reports and errors.
    pub async fn connect_unix(
        name: impl Into<String>,
        socket: impl Into<PathBuf>,
    ) -> Result<Engine, Error> {
        let name = name.into();
        let socket = socket.into();
        let timeout = Duration::from_secs(120);
        let docker = Docker::connect_with_unix(
            &socket.to_string_lossy(),
            timeout.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| Error::docker(&name, "connect", e))?;
        let hive = Hive::new(name.clone(), docker).negotiated().await?;
        Ok(Engine {
            name,
            docker: hive.docker,
            socket,
            timeout,
        })
    }

    /// The hive's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The socket the engine answers on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The bollard client of the engine (API version negotiated).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The engine as a [`Hive`], for the other operations of this crate.
    pub fn hive(&self) -> Hive {
        Hive::new(self.name.clone(), self.docker.clone())
    }

    /// A JSON call on an endpoint bollard 0.18 does not have; `None` for
    /// a 404 answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        action: &str,
    ) -> Result<Option<T>, Error> {
        let version = self.docker.client_version();
        let uri = format!(
            "/v{}.{}{path}",
            version.major_version, version.minor_version
        );
        let exchange = async {
            let stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .map_err(|e| connection_error(&self.name, action, e))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| connection_error(&self.name, action, e))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header(hyper::header::HOST, "docker")
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| connection_error(&self.name, action, e))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| connection_error(&self.name, action, e))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| connection_error(&self.name, action, e))?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|e| connection_error(&self.name, action, e))??;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            #[derive(serde::Deserialize)]
            struct Message {
                message: String,
            }
            let message = serde_json::from_slice::<Message>(&bytes)
                .map(|m| m.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(Error::EngineApi {
                hive: self.name.clone(),
                action: action.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return serde_json::from_slice(b"null")
                .map(Some)
                .map_err(|e| connection_error(&self.name, action, e));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| connection_error(&self.name, action, e))
    }

    /// The swarm state of this engine's node (`inactive`, `active`, ...).
    pub async fn local_node_state(&self) -> Result<LocalNodeState, Error> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| Error::docker(&self.name, "read the engine's information", e))?;
        Ok(match info.swarm.and_then(|s| s.local_node_state) {
            None | Some(LocalNodeState::EMPTY) => LocalNodeState::INACTIVE,
            Some(s) => s,
        })
    }

    async fn network(&self, name: &str) -> Result<Option<Network>, Error> {
        match self
            .docker
            .inspect_network(name, None::<InspectNetworkOptions<String>>)
            .await
        {
            Ok(n) => Ok(Some(n)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(Error::docker(
                &self.name,
                format!("inspect network {name}"),
                e,
            )),
        }
    }

    /// Make `docker_gwbridge` have `subnet` (carved from `internal_cidr`,
    /// named in errors), before the hive is in a swarm: created when
    /// missing, recreated when it has another subnet and nothing uses it.
    ///
    /// When it has another subnet while the hive is already in a swarm or
    /// containers are attached to it, Docker cannot change it:
    /// [`Error::SubnetMismatch`] explains what the operator can do.
    pub async fn ensure_gwbridge(
        &self,
        subnet: Ipv4Net,
        internal_cidr: Ipv4Net,
        check: bool,
    ) -> Result<bool, Error> {
        let want = subnet.to_string();
        let existing = self.network(GWBRIDGE).await?;
        if let Some(network) = &existing {
            let have = subnets(network);
            if have
                .iter()
                .any(|c| c.subnet.as_deref() == Some(want.as_str()))
            {
                return Ok(false);
            }
            let state = self.local_node_state().await?;
            let attached: Vec<String> = network
                .containers
                .as_ref()
                .map(|c| {
                    c.iter()
                        .map(|(id, e)| e.name.clone().unwrap_or_else(|| id.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let reason = if state != LocalNodeState::INACTIVE {
                Some(format!(
                    "the hive is in a swarm (state {})",
                    state_name(&state)
                ))
            } else if !attached.is_empty() {
                Some(format!(
                    "containers are attached to it ({})",
                    attached.join(", ")
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::SubnetMismatch {
                    hive: self.name.clone(),
                    network: GWBRIDGE,
                    have: subnet_list(&have),
                    want: subnet,
                    internal_cidr,
                    reason,
                });
            }
        }
        if check {
            return Ok(true);
        }
        if existing.is_some() {
            self.docker
                .remove_network(GWBRIDGE)
                .await
                .map_err(|e| Error::docker(&self.name, "remove network docker_gwbridge", e))?;
        }
        let options: HashMap<String, String> = [
            ("com.docker.network.bridge.name", GWBRIDGE),
            ("com.docker.network.bridge.enable_icc", "false"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        self.docker
            .create_network(CreateNetworkOptions {
                name: GWBRIDGE.to_string(),
                check_duplicate: true,
                driver: "bridge".to_string(),
                ipam: bollard::models::Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(want.clone()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                options,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::docker(
                    &self.name,
                    format!("create network docker_gwbridge {want}"),
                    e,
                )
            })?;
        Ok(true)
    }

    /// Initialise a swarm on this engine unless it is in one already.
    pub async fn init_swarm(&self, init: &SwarmInit, check: bool) -> Result<bool, Error> {
        let state = self.local_node_state().await?;
        match state {
            LocalNodeState::ACTIVE => return Ok(false),
            LocalNodeState::INACTIVE => {}
            other => return Err(self.state_error("initialise a swarm", &other).await),
        }
        if check {
            return Ok(true);
        }
        let request = SwarmInitRequest {
            listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
            advertise_addr: Some(init.advertise_addr.to_string()),
            default_addr_pool: (!init.default_addr_pool.is_empty()).then(|| {
                init.default_addr_pool
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            }),
            subnet_size: init.subnet_size.map(u32::from),
            ..Default::default()
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| connection_error(&self.name, "initialise the swarm", e))?;
        self.call::<serde_json::Value>(
            Method::POST,
            "/swarm/init",
            Some(body),
            "initialise the swarm",
        )
        .await?;
        Ok(true)
    }

    async fn state_error(&self, action: &str, state: &LocalNodeState) -> Error {
        let detail = self
            .docker
            .info()
            .await
            .ok()
            .and_then(|i| i.swarm)
            .and_then(|s| s.error)
            .unwrap_or_default();
        Error::SwarmState {
            hive: self.name.clone(),
            action: action.to_string(),
            state: state_name(state),
            detail,
        }
    }

    /// The token other engines join this manager's swarm with as managers.
    /// It is a secret: keep it out of logs.
    pub async fn manager_join_token(&self) -> Result<String, Error> {
        let action = "read the manager join token";
        let swarm: Swarm = self
            .call(Method::GET, "/swarm", None, action)
            .await?
            .ok_or_else(|| Error::SwarmState {
                hive: self.name.clone(),
                action: action.to_string(),
                state: "inactive".to_string(),
                detail: String::new(),
            })?;
        swarm
            .join_tokens
            .and_then(|t| t.manager)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::EngineApi {
                hive: self.name.clone(),
                action: action.to_string(),
                status: 200,
                message: "the swarm has no manager join token".to_string(),
            })
    }

    /// Join this engine to the swarm of `join.remote_addr` as a manager with
    /// `token`, unless it is in that swarm already.
    ///
    /// An engine in a swarm whose managers do not include
    /// `join.remote_addr` is in another swarm: [`Error::OtherSwarm`].
    pub async fn join_as_manager(
        &self,
        join: &SwarmJoin,
        token: &str,
        check: bool,
    ) -> Result<bool, Error> {
        let state = self.local_node_state().await?;
        match state {
            LocalNodeState::ACTIVE => {
                let managers: Vec<String> = self
                    .docker
                    .info()
                    .await
                    .map_err(|e| Error::docker(&self.name, "read the engine's information", e))?
                    .swarm
                    .and_then(|s| s.remote_managers)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.addr)
                    .collect();
                if managers.is_empty() || managers.contains(&join.remote_addr) {
                    return Ok(false);
                }
                return Err(Error::OtherSwarm {
                    hive: self.name.clone(),
                    managers: managers.join(", "),
                    wanted: join.remote_addr.clone(),
                });
            }
            LocalNodeState::INACTIVE => {}
            other => return Err(self.state_error("join the swarm", &other).await),
        }
        if check {
            return Ok(true);
        }
        let action = format!("join the swarm of {} as a manager", join.remote_addr);
        let request = SwarmJoinRequest {
            listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
            advertise_addr: Some(join.advertise_addr.to_string()),
            remote_addrs: Some(vec![join.remote_addr.clone()]),
            join_token: Some(token.to_string()),
            ..Default::default()
        };
        let body =
            serde_json::to_vec(&request).map_err(|e| connection_error(&self.name, &action, e))?;
        self.call::<serde_json::Value>(Method::POST, "/swarm/join", Some(body), &action)
            .await?;
        Ok(true)
    }

    /// Make the swarm's ingress network have `subnet` and `gateway` (on a
    /// manager): when it differs it is removed and created again, retried
    /// while the old one is still being removed, for up to `timeout`.
    ///
    /// In check mode on an engine not yet in a swarm, it would be created.
    pub async fn ensure_ingress(
        &self,
        subnet: Ipv4Net,
        gateway: Ipv4Addr,
        timeout: Duration,
        check: bool,
    ) -> Result<bool, Error> {
        let want = subnet.to_string();
        let want_gw = gateway.to_string();
        let existing = self.network(INGRESS).await?;
        if let Some(network) = &existing {
            let same = subnets(network).iter().any(|c| {
                c.subnet.as_deref() == Some(want.as_str())
                    && c.gateway.as_deref() == Some(want_gw.as_str())
            });
            if same {
                return Ok(false);
            }
        }
        if check {
            return Ok(true);
        }
        if let Some(network) = &existing {
            let id = network.id.clone().unwrap_or_else(|| INGRESS.to_string());
            self.docker
                .remove_network(&id)
                .await
                .map_err(|e| Error::docker(&self.name, "remove the ingress network", e))?;
        }
        let started = Instant::now();
        loop {
            let created = self
                .docker
                .create_network(CreateNetworkOptions {
                    name: INGRESS.to_string(),
                    check_duplicate: true,
                    driver: "overlay".to_string(),
                    ingress: true,
                    ipam: bollard::models::Ipam {
                        config: Some(vec![IpamConfig {
                            subnet: Some(want.clone()),
                            gateway: Some(want_gw.clone()),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .await;
            match created {
                Ok(_) => return Ok(true),
                Err(e) if started.elapsed() >= timeout => {
                    return Err(Error::IngressNotRecreated {
                        hive: self.name.clone(),
                        subnet: want,
                        waited: timeout,
                        last: e.to_string(),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Make the swarm node `node` (its host name or ID) have `labels`, on a
    /// manager: missing or different ones are set, others are left alone.
    /// Returns the labels set (or that would be, in check mode), as
    /// `key=value`.
    ///
    /// In check mode a node that is not (yet) in the swarm would get them
    /// all.
    pub async fn ensure_node_labels(
        &self,
        node: &str,
        labels: &[(String, String)],
        check: bool,
    ) -> Result<Vec<String>, Error> {
        let action = format!("label node {node}");
        // A concurrent update of the node makes ours out of sequence: read
        // it again and retry.
        for attempt in 0..3 {
            let found: Option<Node> = self
                .call(Method::GET, &format!("/nodes/{node}"), None, &action)
                .await?;
            let Some(found) = found else {
                if check {
                    return Ok(labels.iter().map(|(k, v)| format!("{k}={v}")).collect());
                }
                return Err(Error::EngineApi {
                    hive: self.name.clone(),
                    action,
                    status: 404,
                    message: format!("the swarm has no node {node}"),
                });
            };
            let mut spec = found.spec.clone().unwrap_or_default();
            let current = spec.labels.get_or_insert_with(HashMap::new);
            let mut added = Vec::new();
            for (k, v) in labels {
                if current.get(k) != Some(v) {
                    current.insert(k.clone(), v.clone());
                    added.push(format!("{k}={v}"));
                }
            }
            if added.is_empty() || check {
                return Ok(added);
            }
            let id = found.id.clone().unwrap_or_else(|| node.to_string());
            let version = found.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            let body =
                serde_json::to_vec(&spec).map_err(|e| connection_error(&self.name, &action, e))?;
            match self
                .call::<serde_json::Value>(
                    Method::POST,
                    &format!("/nodes/{id}/update?version={version}"),
                    Some(body),
                    &action,
                )
                .await
            {
                Ok(_) => return Ok(added),
                Err(Error::EngineApi { message, .. })
                    if attempt < 2 && message.contains("out of sequence") =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::EngineApi {
            hive: self.name.clone(),
            action,
            status: 500,
            message: "the node kept changing while it was labelled".to_string(),
        })
    }
}
