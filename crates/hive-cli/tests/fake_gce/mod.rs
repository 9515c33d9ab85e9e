//! A local server that answers as the Compute Engine REST API (v1) does,
//! for the calls the gcp provider makes, and holds what was created so
//! that a second run sees it and `-D` empties it.
//!
//! Each answer is shaped after its page of the reference,
//! https://cloud.google.com/compute/docs/reference/rest/v1/ (cited at
//! each route below): resources with `kind`, `name`, `selfLink` and
//! 64-bit numbers as strings, inserts and deletes answered with an
//! `Operation` that is `RUNNING` and `DONE` when read again, a missing
//! resource with 404 and Google's error body, a resource still used by
//! another with 400 `resourceInUseByAnotherResource`.

// The test binaries use different parts of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// The zones and machine types the fake project offers.
pub const ZONES: &[&str] = &[
    "asia-northeast2-a",
    "asia-northeast2-b",
    "asia-northeast2-c",
];
pub const MACHINE_TYPES: &[&str] = &["n1-standard-2", "n1-standard-4"];
/// The one image family (project, family) the fake knows.
pub const IMAGE_FAMILY: (&str, &str) = ("almalinux-cloud", "almalinux-9");

/// What the fake holds.
#[derive(Default)]
pub struct State {
    /// Resources by their path below `/compute/v1/projects/{project}/`
    /// (`global/networks/vpc-pdns`, `zones/asia-northeast2-a/instances/hive0-pdns`).
    pub resources: BTreeMap<String, Value>,
    /// Operations by their path, as `resources`.
    pub operations: BTreeMap<String, Value>,
    /// Every request: method and path.
    pub requests: Vec<String>,
    /// Every bearer token sent (to check none is printed).
    pub tokens: Vec<String>,
    /// When set, an instance insert in this zone ends in an operation
    /// error (quota exceeded), as the API reports it.
    pub quota_exceeded_in: Option<String>,
    next_id: u64,
}

impl State {
    /// The resources of a collection (`global/firewalls`), by name.
    pub fn collection(&self, prefix: &str) -> BTreeMap<String, Value> {
        let prefix = format!("{prefix}/");
        self.resources
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(&prefix)?;
                (!rest.contains('/')).then(|| (rest.to_string(), v.clone()))
            })
            .collect()
    }

    /// The names of every resource held.
    pub fn paths(&self) -> Vec<String> {
        self.resources.keys().cloned().collect()
    }
}

/// The server, on a free port of 127.0.0.1, for project `project`.
pub struct FakeGce {
    pub url: String,
    pub project: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeGce {
    pub fn start(project: &str) -> FakeGce {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let (s, p) = (state.clone(), project.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, p) = (s.clone(), p.clone());
                std::thread::spawn(move || serve(conn, &s, &p));
            }
        });
        FakeGce {
            url,
            project: project.to_string(),
            state,
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

/// One connection: requests answered in turn while the client keeps it.
fn serve(conn: TcpStream, state: &Mutex<State>, project: &str) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut length = 0;
        let mut auth = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((h, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => auth = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let path = target.split('?').next().unwrap_or_default().to_string();
        let (status, answer) = {
            let mut st = state.lock().unwrap();
            st.requests.push(format!("{method} {path}"));
            match auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) {
                Some(token) if token.split('.').count() == 3 => {
                    st.tokens.push(token.to_string());
                    route(&mut st, project, &method, &path, body)
                }
                // https://cloud.google.com/compute/docs/reference/rest/v1 (401: the
                // request has no valid credentials).
                _ => error(
                    401,
                    "Request is missing required authentication credential.",
                    "required",
                ),
            }
        };
        let text = answer.to_string();
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            409 => "Conflict",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: {}\r\n\r\n",
            text.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// Google's error body (https://cloud.google.com/compute/docs/reference/rest/v1
/// "errors": `error.code`, `error.message`, `error.errors[]`).
fn error(code: u16, message: &str, reason: &str) -> (u16, Value) {
    (
        code,
        json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
    )
}

fn not_found(project: &str, rel: &str) -> (u16, Value) {
    error(
        404,
        &format!("The resource 'projects/{project}/{rel}' was not found"),
        "notFound",
    )
}

/// The answer to one request.
fn route(st: &mut State, project: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let base = format!("/compute/v1/projects/{project}/");
    let link =
        |rel: &str| format!("https://www.googleapis.com/compute/v1/projects/{project}/{rel}");
    // Images of other projects: images.getFromFamily
    // (https://cloud.google.com/compute/docs/reference/rest/v1/images/getFromFamily).
    let family = format!(
        "/compute/v1/projects/{}/global/images/family/{}",
        IMAGE_FAMILY.0, IMAGE_FAMILY.1
    );
    if method == "GET" && path == family {
        return (
            200,
            json!({"kind": "compute#image", "id": "6420000000000000001",
                "name": "almalinux-9-v20251201", "family": IMAGE_FAMILY.1, "status": "READY",
                "diskSizeGb": "10",
                "selfLink": format!("https://www.googleapis.com/compute/v1/projects/{}/global/images/almalinux-9-v20251201", IMAGE_FAMILY.0)}),
        );
    }
    let Some(rel) = path.strip_prefix(&base) else {
        return error(404, &format!("no such path {path}"), "notFound");
    };
    let segs: Vec<&str> = rel.split('/').collect();
    match (method, segs.as_slice()) {
        // zones.get (https://cloud.google.com/compute/docs/reference/rest/v1/zones/get).
        ("GET", ["zones", z]) if ZONES.contains(z) => (
            200,
            json!({"kind": "compute#zone", "name": z, "status": "UP",
                "region": link("regions/asia-northeast2"), "selfLink": link(rel)}),
        ),
        // machineTypes.get (https://cloud.google.com/compute/docs/reference/rest/v1/machineTypes/get).
        ("GET", ["zones", z, "machineTypes", t])
            if ZONES.contains(z) && MACHINE_TYPES.contains(t) =>
        {
            (
                200,
                json!({"kind": "compute#machineType", "name": t, "zone": z,
                "guestCpus": 2, "memoryMb": 7680, "selfLink": link(rel)}),
            )
        }
        // globalOperations.get, regionOperations.get, zoneOperations.get
        // (https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/get):
        // an operation read again is DONE.
        ("GET", [.., "operations", _]) => match st.operations.get_mut(rel) {
            Some(op) => {
                op["status"] = json!("DONE");
                op["progress"] = json!(100);
                (200, op.clone())
            }
            None => not_found(project, rel),
        },
        ("GET", _) => match st.resources.get(rel) {
            Some(r) => (200, r.clone()),
            None => not_found(project, rel),
        },
        // instances.start / instances.stop
        // (https://cloud.google.com/compute/docs/reference/rest/v1/instances/stop).
        ("POST", ["zones", _, "instances", _, action @ ("start" | "stop")]) => {
            let target = rel.rsplit_once('/').unwrap().0.to_string();
            let Some(inst) = st.resources.get_mut(&target) else {
                return not_found(project, &target);
            };
            inst["status"] = json!(if *action == "start" {
                "RUNNING"
            } else {
                "TERMINATED"
            });
            operation(st, project, &target, action, None)
        }
        // networks.insert, firewalls.insert, subnetworks.insert,
        // addresses.insert, instances.insert
        // (https://cloud.google.com/compute/docs/reference/rest/v1/networks/insert, ...).
        ("POST", _) => insert(st, project, rel, body),
        // firewalls.patch (https://cloud.google.com/compute/docs/reference/rest/v1/firewalls/patch).
        ("PATCH", ["global", "firewalls", _]) => {
            let Some(fw) = st.resources.get_mut(rel) else {
                return not_found(project, rel);
            };
            if let (Some(fw), Some(patch)) = (fw.as_object_mut(), body.as_object()) {
                for (k, v) in patch {
                    fw.insert(k.clone(), v.clone());
                }
                // The API keeps references as full URLs.
                if let Some(n) = patch.get("network").and_then(|n| n.as_str()) {
                    let rel = n.strip_prefix(&format!("projects/{project}/")).unwrap_or(n);
                    fw.insert("network".into(), json!(link(rel)));
                }
            }
            operation(st, project, rel, "patch", None)
        }
        // networks.delete, ... (https://cloud.google.com/compute/docs/reference/rest/v1/networks/delete):
        // refused while another resource uses it.
        ("DELETE", _) => {
            if !st.resources.contains_key(rel) {
                return not_found(project, rel);
            }
            let me = link(rel);
            let used_by = st.resources[rel]["users"][0].as_str().map(|u| {
                u.rsplit_once(&format!("projects/{project}/"))
                    .map_or(u, |x| x.1)
                    .to_string()
            });
            let user = st
                .resources
                .iter()
                .find(|(k, v)| k.as_str() != rel && uses(v, &me))
                .map(|(k, _)| k.clone())
                .or(used_by);
            if let Some(k) = user {
                return error(
                    400,
                    &format!(
                        "The resource 'projects/{project}/{rel}' is already being used by 'projects/{project}/{k}'"
                    ),
                    "resourceInUseByAnotherResource",
                );
            }
            if segs.first() == Some(&"zones") {
                // The disks and the address go free with the instance.
                let addresses: Vec<String> =
                    st.resources[rel]["networkInterfaces"][0]["accessConfigs"][0]["natIP"]
                        .as_str()
                        .map(|ip| ip.to_string())
                        .into_iter()
                        .collect();
                for a in st.resources.values_mut() {
                    if a["kind"] == "compute#address"
                        && addresses.iter().any(|ip| a["address"] == *ip)
                    {
                        a["status"] = json!("RESERVED");
                        a.as_object_mut().unwrap().remove("users");
                    }
                }
            }
            st.resources.remove(rel);
            operation(st, project, rel, "delete", None)
        }
        _ => error(400, &format!("unsupported {method} {path}"), "invalid"),
    }
}

/// Whether resource `v` refers to `link` (the network of a subnetwork or
/// firewall, the subnetwork of an instance).
fn uses(v: &Value, link: &str) -> bool {
    v["network"] == link
        || v["networkInterfaces"].as_array().is_some_and(|n| {
            n.iter()
                .any(|i| i["subnetwork"] == link || i["network"] == link)
        })
}

/// A new operation on `target` (https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations):
/// RUNNING now, DONE when read; with `error` when it failed.
fn operation(
    st: &mut State,
    project: &str,
    target: &str,
    kind: &str,
    error: Option<Value>,
) -> (u16, Value) {
    st.next_id += 1;
    let name = format!("operation-{}-{kind}", st.next_id);
    let link =
        |rel: &str| format!("https://www.googleapis.com/compute/v1/projects/{project}/{rel}");
    let scope = match target.split('/').collect::<Vec<_>>().as_slice() {
        ["zones", z, ..] => format!("zones/{z}"),
        ["regions", r, ..] => format!("regions/{r}"),
        _ => "global".to_string(),
    };
    let rel = format!("{scope}/operations/{name}");
    let mut op = json!({"kind": "compute#operation", "id": st.next_id.to_string(), "name": name,
        "operationType": kind, "targetLink": link(target), "status": "RUNNING",
        "progress": 0, "selfLink": link(&rel)});
    if let Some(z) = scope.strip_prefix("zones/") {
        op["zone"] = json!(link(&format!("zones/{z}")));
    }
    if let Some(r) = scope.strip_prefix("regions/") {
        op["region"] = json!(link(&format!("regions/{r}")));
    }
    if let Some(e) = error {
        op["error"] = e;
        op["httpErrorStatusCode"] = json!(403);
        op["httpErrorMessage"] = json!("FORBIDDEN");
    }
    st.operations.insert(rel, op.clone());
    (200, op)
}

/// An insert into the collection at `rel`: the resource as the API
/// stores it, with the fields it fills in.
fn insert(st: &mut State, project: &str, rel: &str, mut body: Value) -> (u16, Value) {
    let link =
        |rel: &str| format!("https://www.googleapis.com/compute/v1/projects/{project}/{rel}");
    let full = |v: &Value| match v.as_str() {
        Some(s) if s.starts_with("https://") => s.to_string(),
        Some(s) => link(s.strip_prefix(&format!("projects/{project}/")).unwrap_or(s)),
        None => String::new(),
    };
    let Some(name) = body["name"].as_str().map(str::to_string) else {
        return error(
            400,
            "Invalid value for field 'resource.name': ''. Must be a match of regex '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?'",
            "invalid",
        );
    };
    let at = format!("{rel}/{name}");
    if st.resources.contains_key(&at) {
        return error(
            409,
            &format!("The resource 'projects/{project}/{at}' already exists"),
            "alreadyExists",
        );
    }
    st.next_id += 1;
    body["id"] = json!(format!("{}", 1000 + st.next_id));
    body["selfLink"] = json!(link(&at));
    let segs: Vec<&str> = rel.split('/').collect();
    let kind = match segs.as_slice() {
        ["global", "networks"] => "compute#network",
        ["global", "firewalls"] => {
            body["network"] = json!(full(&body["network"]));
            "compute#firewall"
        }
        ["regions", r, "subnetworks"] => {
            body["network"] = json!(full(&body["network"]));
            body["region"] = json!(link(&format!("regions/{r}")));
            body["gatewayAddress"] = json!(gateway(&body["ipCidrRange"]));
            "compute#subnetwork"
        }
        ["regions", r, "addresses"] => {
            let n = st.collection(&format!("regions/{r}/addresses")).len();
            body["address"] = json!(format!("203.0.113.{}", 10 + n));
            body["status"] = json!("RESERVED");
            body["addressType"] = json!("EXTERNAL");
            body["region"] = json!(link(&format!("regions/{r}")));
            "compute#address"
        }
        ["zones", z, "instances"] => return insert_instance(st, project, z, &at, body),
        _ => return error(400, &format!("unsupported insert into {rel}"), "invalid"),
    };
    body["kind"] = json!(kind);
    st.resources.insert(at.clone(), body);
    operation(st, project, &at, "insert", None)
}

/// The gateway of a range: its first address.
fn gateway(cidr: &Value) -> String {
    let network = cidr
        .as_str()
        .unwrap_or("0.0.0.0/0")
        .split('/')
        .next()
        .unwrap_or_default();
    let network: std::net::Ipv4Addr = network.parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(network) + 1).to_string()
}

/// instances.insert (https://cloud.google.com/compute/docs/reference/rest/v1/instances/insert):
/// the instance RUNNING with its disks named after `initializeParams`, its
/// subnetwork, private address and static address in use.
fn insert_instance(
    st: &mut State,
    project: &str,
    zone: &str,
    at: &str,
    mut body: Value,
) -> (u16, Value) {
    let link =
        |rel: &str| format!("https://www.googleapis.com/compute/v1/projects/{project}/{rel}");
    if st.quota_exceeded_in.as_deref() == Some(zone) {
        let message = "Quota 'CPUS' exceeded.  Limit: 8.0 in region asia-northeast2.";
        return operation(
            st,
            project,
            at,
            "insert",
            Some(json!({"errors": [{"code": "QUOTA_EXCEEDED", "message": message}]})),
        );
    }
    let nic = &body["networkInterfaces"][0];
    let subnet = nic["subnetwork"].as_str().unwrap_or_default();
    let subnet = subnet
        .strip_prefix(&format!("projects/{project}/"))
        .unwrap_or(subnet)
        .to_string();
    let Some(sub) = st.resources.get(&subnet).cloned() else {
        return error(
            400,
            &format!(
                "Invalid value for field 'resource.networkInterfaces[0].subnetwork': '{subnet}'. The referenced subnetwork resource cannot be found."
            ),
            "invalid",
        );
    };
    let nat = nic["accessConfigs"][0]["natIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    body["networkInterfaces"][0]["subnetwork"] = json!(link(&subnet));
    body["networkInterfaces"][0]["network"] = sub["network"].clone();
    body["networkInterfaces"][0]["name"] = json!("nic0");
    for d in body["disks"].as_array_mut().into_iter().flatten() {
        let name = d["initializeParams"]["diskName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        d["source"] = json!(link(&format!("zones/{zone}/disks/{name}")));
        d["deviceName"] = json!(name);
        d["diskSizeGb"] = d["initializeParams"]["diskSizeGb"].clone();
        d["type"] = json!("PERSISTENT");
    }
    let machine = body["machineType"].as_str().unwrap_or_default().to_string();
    body["machineType"] = json!(link(&machine));
    body["zone"] = json!(link(&format!("zones/{zone}")));
    body["status"] = json!("RUNNING");
    body["kind"] = json!("compute#instance");
    st.next_id += 1;
    body["id"] = json!(format!("{}", 5000 + st.next_id));
    body["selfLink"] = json!(link(at));
    for a in st.resources.values_mut() {
        if a["kind"] == "compute#address" && a["address"] == nat.as_str() {
            a["status"] = json!("IN_USE");
            a["users"] = json!([link(at)]);
        }
    }
    st.resources.insert(at.to_string(), body);
    operation(st, project, at, "insert", None)
}
