//! DRBD state as reported by `drbdsetup events2 --now` and `drbdadm status`,
//! and the per-volume, per-host summary shown by `hive volumes status`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DrbdError;

/// A DRBD disk state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum DiskState {
    /// No local disk (by configuration or after detach).
    Diskless,
    /// Attaching the backing device.
    Attaching,
    /// Detaching the backing device.
    Detaching,
    /// I/O failure on the backing device.
    Failed,
    /// Negotiating with a peer.
    Negotiating,
    /// Data not usable (fresh or being synced into).
    Inconsistent,
    /// Consistent but known to be older than a peer's.
    Outdated,
    /// Peer disk state unknown (not connected).
    DUnknown,
    /// Consistent, up-to-dateness not yet known.
    Consistent,
    /// Current data.
    UpToDate,
    /// A state this crate does not know.
    Other(String),
}

impl DiskState {
    /// Reads a state name as DRBD prints it.
    pub fn parse(s: &str) -> Self {
        use DiskState::*;
        match s {
            "Diskless" => Diskless,
            "Attaching" => Attaching,
            "Detaching" => Detaching,
            "Failed" => Failed,
            "Negotiating" => Negotiating,
            "Inconsistent" => Inconsistent,
            "Outdated" => Outdated,
            "DUnknown" => DUnknown,
            "Consistent" => Consistent,
            "UpToDate" => UpToDate,
            other => Other(other.to_string()),
        }
    }

    /// The name DRBD prints.
    pub fn as_str(&self) -> &str {
        use DiskState::*;
        match self {
            Diskless => "Diskless",
            Attaching => "Attaching",
            Detaching => "Detaching",
            Failed => "Failed",
            Negotiating => "Negotiating",
            Inconsistent => "Inconsistent",
            Outdated => "Outdated",
            DUnknown => "DUnknown",
            Consistent => "Consistent",
            UpToDate => "UpToDate",
            Other(s) => s,
        }
    }
}

impl fmt::Display for DiskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for DiskState {
    fn from(s: String) -> Self {
        DiskState::parse(&s)
    }
}

impl From<DiskState> for String {
    fn from(d: DiskState) -> Self {
        d.as_str().to_string()
    }
}

/// A local volume (DRBD device) of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Volume number inside the resource.
    pub volume: u32,
    /// Device minor, when reported.
    pub minor: Option<u32>,
    /// Local disk state.
    pub disk: DiskState,
    /// Whether the node has quorum, when reported.
    pub quorum: Option<bool>,
}

/// A peer volume as seen from this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerDeviceStatus {
    /// Volume number.
    pub volume: u32,
    /// Replication state (`Established`, `SyncSource`, `SyncTarget`, `Off`, ...).
    pub replication: String,
    /// The peer's disk state.
    pub peer_disk: DiskState,
    /// Sync progress in percent while syncing.
    pub done: Option<f64>,
    /// Data still out of sync in KiB (with `--statistics`).
    pub out_of_sync_kib: Option<u64>,
    /// Estimated seconds to finish the sync (with `--statistics`).
    pub eta_secs: Option<u64>,
}

/// A connection to one peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// Peer name (the `conn-name`, the peer's host name).
    pub peer: String,
    /// Peer node id, when reported.
    pub peer_node_id: Option<u32>,
    /// Connection state (`Connected`, `Connecting`, `StandAlone`, ...).
    pub connection: String,
    /// The peer's role.
    pub peer_role: String,
    /// Peer volumes.
    pub peer_devices: Vec<PeerDeviceStatus>,
}

/// One DRBD resource on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceStatus {
    /// Resource name.
    pub name: String,
    /// Local role (`Primary`, `Secondary`).
    pub role: String,
    /// Local volumes.
    pub devices: Vec<DeviceStatus>,
    /// Connections to peers.
    pub connections: Vec<ConnectionStatus>,
}

impl ResourceStatus {
    fn new(name: &str) -> Self {
        ResourceStatus {
            name: name.to_string(),
            role: "Unknown".into(),
            devices: Vec::new(),
            connections: Vec::new(),
        }
    }

    fn connection_mut(&mut self, peer: &str) -> &mut ConnectionStatus {
        if let Some(i) = self.connections.iter().position(|c| c.peer == peer) {
            return &mut self.connections[i];
        }
        self.connections.push(ConnectionStatus {
            peer: peer.to_string(),
            peer_node_id: None,
            connection: "Unknown".into(),
            peer_role: "Unknown".into(),
            peer_devices: Vec::new(),
        });
        let last = self.connections.len() - 1;
        &mut self.connections[last]
    }

    fn device_mut(&mut self, volume: u32) -> &mut DeviceStatus {
        if let Some(i) = self.devices.iter().position(|d| d.volume == volume) {
            return &mut self.devices[i];
        }
        self.devices.push(DeviceStatus {
            volume,
            minor: None,
            disk: DiskState::DUnknown,
            quorum: None,
        });
        let last = self.devices.len() - 1;
        &mut self.devices[last]
    }
}

impl ConnectionStatus {
    fn peer_device_mut(&mut self, volume: u32) -> &mut PeerDeviceStatus {
        if let Some(i) = self.peer_devices.iter().position(|d| d.volume == volume) {
            return &mut self.peer_devices[i];
        }
        self.peer_devices.push(PeerDeviceStatus {
            volume,
            replication: "Off".into(),
            peer_disk: DiskState::DUnknown,
            done: None,
            out_of_sync_kib: None,
            eta_secs: None,
        });
        let last = self.peer_devices.len() - 1;
        &mut self.peer_devices[last]
    }
}

fn parse_err(what: &str, line: usize, message: String) -> DrbdError {
    DrbdError::Parse {
        what: what.into(),
        line,
        message,
    }
}

const EVENTS2: &str = "drbdsetup events2";

fn field<'a>(fields: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn num<T: std::str::FromStr>(
    fields: &[(&str, &str)],
    key: &str,
    what: &str,
    line: usize,
) -> Result<Option<T>, DrbdError> {
    match field(fields, key) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| parse_err(what, line, format!("{key}:{v} is not a number"))),
    }
}

fn yes_no(v: Option<&str>) -> Option<bool> {
    match v {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

/// Applies the lines of `drbdsetup events2` output (with or without
/// `--now`, `--statistics`, `--timestamps`) in order and returns the state
/// of every resource at the end. `create`, `exists` and `change` lines
/// create or update objects, `destroy` lines remove them; other objects
/// (paths, helpers) are skipped.
///
/// ```
/// let text = "exists resource name:r0 role:Primary suspended:no\n\
///             exists connection name:r0 peer-node-id:1 conn-name:hive1 connection:Connected role:Secondary\n\
///             exists device name:r0 volume:0 minor:5 disk:UpToDate client:no quorum:yes\n\
///             exists peer-device name:r0 peer-node-id:1 conn-name:hive1 volume:0 replication:Established peer-disk:UpToDate\n\
///             exists -\n";
/// let res = hive_drbd::parse_events2(text).unwrap();
/// assert_eq!(res[0].connections[0].peer, "hive1");
/// ```
pub fn parse_events2(text: &str) -> Result<Vec<ResourceStatus>, DrbdError> {
    let mut resources: Vec<ResourceStatus> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if let Some(event) = Event::parse(raw, i + 1)? {
            event.apply(&mut resources)?;
        }
    }
    Ok(resources)
}

/// One line of `drbdsetup events2`: the verb, the object and its
/// `key:value` fields.
struct Event<'a> {
    line: usize,
    verb: &'a str,
    object: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Event<'a> {
    /// The event of line `line_no`; None for a blank line, `call` and
    /// `response` lines, and the `-` that ends the initial state.
    fn parse(raw: &'a str, line_no: usize) -> Result<Option<Event<'a>>, DrbdError> {
        const VERBS: [&str; 6] = ["exists", "create", "change", "destroy", "call", "response"];
        let mut tokens: Vec<&str> = raw.split_whitespace().collect();
        if tokens.is_empty() {
            return Ok(None);
        }
        if !VERBS.contains(&tokens[0]) && tokens.len() > 1 && VERBS.contains(&tokens[1]) {
            tokens.remove(0); // --timestamps
        }
        let verb = tokens[0];
        if !VERBS.contains(&verb) {
            return Err(parse_err(
                EVENTS2,
                line_no,
                format!(
                    "'{verb}' is not an event (exists, create, change, destroy, call, response)"
                ),
            ));
        }
        let Some(&object) = tokens.get(1) else {
            return Err(parse_err(EVENTS2, line_no, "event without object".into()));
        };
        if object == "-" || verb == "call" || verb == "response" {
            return Ok(None);
        }
        let mut fields = Vec::new();
        for t in &tokens[2..] {
            match t.split_once(':') {
                Some(kv) => fields.push(kv),
                None => {
                    return Err(parse_err(
                        EVENTS2,
                        line_no,
                        format!("'{t}' is not key:value"),
                    ));
                }
            }
        }
        Ok(Some(Event {
            line: line_no,
            verb,
            object,
            fields,
        }))
    }

    fn field(&self, key: &str) -> Option<&'a str> {
        field(&self.fields, key)
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, DrbdError> {
        num(&self.fields, key, EVENTS2, self.line)
    }

    fn err(&self, message: &str) -> DrbdError {
        parse_err(EVENTS2, self.line, message.into())
    }

    /// Applies the event to `resources`: a resource, connection, device or
    /// peer-device event creates, updates or removes it (and creates its
    /// resource); events on other objects change nothing.
    fn apply(&self, resources: &mut Vec<ResourceStatus>) -> Result<(), DrbdError> {
        let object = self.object;
        let named = matches!(object, "resource" | "connection" | "device" | "peer-device");
        let Some(name) = self.field("name") else {
            if named {
                return Err(self.err(&format!("{object} event without name")));
            }
            return Ok(());
        };
        let pos = resources.iter().position(|r| r.name == name);
        if self.verb == "destroy" && object == "resource" {
            if let Some(p) = pos {
                resources.remove(p);
            }
            return Ok(());
        }
        if !named {
            return Ok(());
        }
        let res = match pos {
            Some(p) => &mut resources[p],
            None => {
                resources.push(ResourceStatus::new(name));
                let last = resources.len() - 1;
                &mut resources[last]
            }
        };
        let volume: u32 = self.num("volume")?.unwrap_or(0);
        let peer = self.field("conn-name").map(str::to_string).or_else(|| {
            self.field("peer-node-id")
                .map(|id| format!("peer-node-id:{id}"))
        });
        match object {
            "resource" => {
                if let Some(r) = self.field("role") {
                    res.role = r.to_string();
                }
                Ok(())
            }
            "device" => self.apply_device(res, volume),
            "connection" => {
                let peer = peer.ok_or_else(|| self.err("connection event without conn-name"))?;
                self.apply_connection(res, &peer)
            }
            _ => {
                let peer = peer.ok_or_else(|| self.err("peer-device event without conn-name"))?;
                self.apply_peer_device(res, &peer, volume)
            }
        }
    }

    fn apply_device(&self, res: &mut ResourceStatus, volume: u32) -> Result<(), DrbdError> {
        if self.verb == "destroy" {
            res.devices.retain(|d| d.volume != volume);
            return Ok(());
        }
        let minor = self.num("minor")?;
        let d = res.device_mut(volume);
        if minor.is_some() {
            d.minor = minor;
        }
        if let Some(s) = self.field("disk") {
            d.disk = DiskState::parse(s);
        }
        if let Some(q) = yes_no(self.field("quorum")) {
            d.quorum = Some(q);
        }
        Ok(())
    }

    fn apply_connection(&self, res: &mut ResourceStatus, peer: &str) -> Result<(), DrbdError> {
        if self.verb == "destroy" {
            res.connections.retain(|c| c.peer != peer);
            return Ok(());
        }
        let node_id = self.num("peer-node-id")?;
        let c = res.connection_mut(peer);
        if node_id.is_some() {
            c.peer_node_id = node_id;
        }
        if let Some(s) = self.field("connection") {
            c.connection = s.to_string();
        }
        if let Some(s) = self.field("role") {
            c.peer_role = s.to_string();
        }
        Ok(())
    }

    fn apply_peer_device(
        &self,
        res: &mut ResourceStatus,
        peer: &str,
        volume: u32,
    ) -> Result<(), DrbdError> {
        if self.verb == "destroy" {
            if let Some(c) = res.connections.iter_mut().find(|c| c.peer == peer) {
                c.peer_devices.retain(|d| d.volume != volume);
            }
            return Ok(());
        }
        let done: Option<f64> = self.num("done")?;
        let oos: Option<u64> = self.num("out-of-sync")?;
        let eta: Option<u64> = self.num("eta")?;
        let pd = res.connection_mut(peer).peer_device_mut(volume);
        if let Some(s) = self.field("replication") {
            pd.replication = s.to_string();
            if !s.starts_with("Sync") && !s.starts_with("Verify") {
                pd.done = None;
                pd.eta_secs = None;
            }
        }
        if let Some(s) = self.field("peer-disk") {
            pd.peer_disk = DiskState::parse(s);
        }
        if done.is_some() {
            pd.done = done;
        }
        if oos.is_some() {
            pd.out_of_sync_kib = oos;
        }
        if eta.is_some() {
            pd.eta_secs = eta;
        }
        Ok(())
    }
}

const STATUS: &str = "drbdadm status";

/// Reads the text of `drbdadm status` (as shown in hive's repair guide):
/// a resource line, indented local volume lines and peer lines, and peer
/// volume lines indented further. Connection and replication states that
/// `drbdadm status` leaves out mean `Connected` and `Established`.
pub fn parse_drbdadm_status(text: &str) -> Result<Vec<ResourceStatus>, DrbdError> {
    let mut resources: Vec<ResourceStatus> = Vec::new();
    let mut current_peer: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        let (head, rest) = if tokens[0].contains(':') {
            (None, &tokens[..])
        } else {
            (Some(tokens[0]), &tokens[1..])
        };
        let mut fields = Vec::new();
        for t in rest {
            match t.split_once(':') {
                Some(kv) => fields.push(kv),
                None => {
                    return Err(parse_err(
                        STATUS,
                        line_no,
                        format!("'{t}' is not key:value"),
                    ));
                }
            }
        }
        if indent == 0 {
            let Some(name) = head else {
                return Err(parse_err(
                    STATUS,
                    line_no,
                    "a resource line starts with the resource name".into(),
                ));
            };
            let mut r = ResourceStatus::new(name);
            if let Some(role) = field(&fields, "role") {
                r.role = role.to_string();
            }
            resources.push(r);
            current_peer = None;
            continue;
        }
        let Some(res) = resources.last_mut() else {
            return Err(parse_err(
                STATUS,
                line_no,
                "indented line before any resource line".into(),
            ));
        };
        let volume: u32 = num(&fields, "volume", STATUS, line_no)?.unwrap_or(0);
        match (head, current_peer.as_deref()) {
            (Some(peer), _) => {
                let node_id = num(&fields, "node-id", STATUS, line_no)?;
                let c = res.connection_mut(peer);
                c.peer_node_id = node_id;
                c.connection = field(&fields, "connection")
                    .unwrap_or("Connected")
                    .to_string();
                if let Some(r) = field(&fields, "role") {
                    c.peer_role = r.to_string();
                }
                current_peer = Some(peer.to_string());
            }
            (None, Some(peer)) if indent > 2 => {
                let done = num(&fields, "done", STATUS, line_no)?;
                let peer = peer.to_string();
                let pd = res.connection_mut(&peer).peer_device_mut(volume);
                pd.replication = field(&fields, "replication")
                    .unwrap_or("Established")
                    .to_string();
                if let Some(s) = field(&fields, "peer-disk") {
                    pd.peer_disk = DiskState::parse(s);
                }
                pd.done = done;
            }
            (None, _) => {
                let minor = num(&fields, "minor", STATUS, line_no)?;
                let d = res.device_mut(volume);
                d.minor = minor;
                if let Some(s) = field(&fields, "disk") {
                    d.disk = DiskState::parse(s);
                }
                if let Some(q) = yes_no(field(&fields, "quorum")) {
                    d.quorum = Some(q);
                }
            }
        }
    }
    Ok(resources)
}

/// The command whose output [`volume_status`] reads.
pub fn status_command(resource: &str) -> String {
    format!(
        "drbdsetup events2 --now --statistics {}",
        hive_model::shell_quote(resource)
    )
}

const NOT_UP: &str = "resource is not up";

impl VolumeHostStatus {
    /// The status of a host whose state could not be read (`why`: e.g.
    /// the host is unreachable), so that the others are still shown.
    pub fn unknown(host: &str, volume: &str, why: impl Into<String>) -> Self {
        VolumeHostStatus {
            volume: volume.into(),
            host: host.into(),
            up: false,
            role: "Unknown".into(),
            disk: DiskState::DUnknown,
            peers: Vec::new(),
            problems: vec![why.into()],
        }
    }
}

/// One peer of a volume, as seen from one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// Peer host.
    pub peer: String,
    /// Connection state.
    pub connection: String,
    /// Peer role.
    pub role: String,
    /// Peer disk state.
    pub disk: DiskState,
    /// Replication state.
    pub replication: String,
    /// Sync progress in percent while syncing.
    pub sync_done: Option<f64>,
}

/// `hive volumes status` for one volume on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeHostStatus {
    /// Volume (resource) name.
    pub volume: String,
    /// Host the state was read on.
    pub host: String,
    /// Whether the resource is up on the host.
    pub up: bool,
    /// Local role.
    pub role: String,
    /// Local disk state.
    pub disk: DiskState,
    /// Peers.
    pub peers: Vec<PeerSummary>,
    /// What is not healthy, empty when all is well.
    pub problems: Vec<String>,
}

impl VolumeHostStatus {
    /// Whether nothing is wrong.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Summarises the state of `volume` on `host` from parsed status. A
/// resource that is not listed is reported as down. `expect_disk` says
/// whether the host should keep a disk for this volume.
pub fn volume_status(
    host: &str,
    volume: &str,
    expect_disk: bool,
    resources: &[ResourceStatus],
) -> VolumeHostStatus {
    let Some(r) = resources.iter().find(|r| r.name == volume) else {
        return VolumeHostStatus {
            volume: volume.into(),
            host: host.into(),
            up: false,
            role: "Unknown".into(),
            disk: DiskState::DUnknown,
            peers: Vec::new(),
            problems: vec![NOT_UP.into()],
        };
    };
    let disk = r
        .devices
        .first()
        .map(|d| d.disk.clone())
        .unwrap_or(DiskState::DUnknown);
    let mut problems = Vec::new();
    let want = if expect_disk {
        DiskState::UpToDate
    } else {
        DiskState::Diskless
    };
    if disk != want {
        problems.push(format!("local disk {disk}, want {want}"));
    }
    if r.devices.first().and_then(|d| d.quorum) == Some(false) {
        problems.push("no quorum".into());
    }
    let peers = r
        .connections
        .iter()
        .map(|c| {
            let pd = c.peer_devices.first();
            let s = PeerSummary {
                peer: c.peer.clone(),
                connection: c.connection.clone(),
                role: c.peer_role.clone(),
                disk: pd
                    .map(|p| p.peer_disk.clone())
                    .unwrap_or(DiskState::DUnknown),
                replication: pd
                    .map(|p| p.replication.clone())
                    .unwrap_or_else(|| "Off".into()),
                sync_done: pd.and_then(|p| p.done),
            };
            if s.connection != "Connected" {
                problems.push(format!("{}: connection {}", s.peer, s.connection));
            } else if !matches!(s.disk, DiskState::UpToDate | DiskState::Diskless) {
                let mut p = format!("{}: peer disk {} ({})", s.peer, s.disk, s.replication);
                if let Some(d) = s.sync_done {
                    p.push_str(&format!(", {d:.1}% synced"));
                }
                problems.push(p);
            }
            s
        })
        .collect();
    VolumeHostStatus {
        volume: volume.into(),
        host: host.into(),
        up: true,
        role: r.role.clone(),
        disk,
        peers,
        problems,
    }
}

impl fmt::Display for VolumeHostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.up {
            writeln!(f, "{} on {}: down", self.volume, self.host)?;
            for p in self.problems.iter().filter(|p| *p != NOT_UP) {
                writeln!(f, "  problem: {p}")?;
            }
            return Ok(());
        }
        writeln!(
            f,
            "{} on {}: {} disk:{}",
            self.volume, self.host, self.role, self.disk
        )?;
        for p in &self.peers {
            write!(
                f,
                "  {} {} role:{} peer-disk:{} replication:{}",
                p.peer, p.connection, p.role, p.disk, p.replication
            )?;
            if let Some(d) = p.sync_done {
                write!(f, " done:{d:.1}%")?;
            }
            writeln!(f)?;
        }
        for p in &self.problems {
            writeln!(f, "  problem: {p}")?;
        }
        Ok(())
    }
}
