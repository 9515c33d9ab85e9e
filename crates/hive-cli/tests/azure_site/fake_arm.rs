//! A small Azure Resource Manager and token endpoint on 127.0.0.1 for the
//! azure provider's test: it answers as the public REST reference
//! documents and keeps the resources it is given, so that a second run
//! sees what the first created and a removal empties it.
//!
//! Shapes followed (learn.microsoft.com):
//! - token: /entra/identity-platform/v2-oauth2-client-creds-grant-flow
//!   (`access_token`, `expires_in`; errors `error`, `error_description`);
//! - resources: /rest/api/resources/resource-groups/create-or-update,
//!   /rest/api/virtualnetwork/virtual-networks/create-or-update,
//!   /rest/api/virtualnetwork/subnets/create-or-update,
//!   /rest/api/virtualnetwork/network-security-groups/create-or-update,
//!   /rest/api/virtualnetwork/public-ip-addresses/create-or-update,
//!   /rest/api/virtualnetwork/network-interfaces/create-or-update,
//!   /rest/api/compute/virtual-machines/create-or-update (201 with
//!   `Azure-AsyncOperation`), .../instance-view, .../deallocate, .../start,
//!   and their `delete` pages (202 with `Location`, 204 when there was
//!   nothing to delete);
//! - long-running operations: /azure/azure-resource-manager/management/async-operations
//!   (`{"status": "InProgress" | "Succeeded" | "Failed", "error"?}`);
//! - errors: /rest/api/azure/#error-response (`{"error": {"code", "message"}}`,
//!   404 `ResourceNotFound` / `ResourceGroupNotFound`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-0000-4000-8000-000000000001";
pub const CLIENT_ID: &str = "0b1c7c4d-0000-4000-8000-000000000002";
pub const SUBSCRIPTION: &str = "8d3c9a56-0000-4000-8000-000000000003";
const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.fake-arm-token.sig";

/// The VM sizes the fake location offers.
const SIZES: &[&str] = &["Standard_D2s_v3", "Standard_D4s_v3"];

#[derive(Default)]
pub struct State {
    /// Resources by lowercased id.
    pub resources: BTreeMap<String, Value>,
    /// VM power states by lowercased VM id.
    pub power: BTreeMap<String, String>,
    /// Every call but the token's: `METHOD path`.
    pub calls: Vec<String>,
    /// Pending operations: polls left before they finish, and their end.
    operations: BTreeMap<u64, (u32, Value)>,
    next: u64,
    addresses: u32,
    throttled: bool,
}

pub struct FakeArm {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body,
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

impl FakeArm {
    pub fn start(secret: &str) -> FakeArm {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeArm {
            url: url.clone(),
            state: Arc::new(Mutex::new(State::default())),
        };
        let state = fake.state.clone();
        let secret = secret.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, secret, url) = (state.clone(), secret.clone(), url.clone());
                std::thread::spawn(move || serve(stream, &state, &secret, &url));
            }
        });
        fake
    }

    /// The id of a resource of the subscription (`resourceGroups/...`).
    pub fn id(&self, rest: &str) -> String {
        format!("/subscriptions/{SUBSCRIPTION}/{rest}")
    }

    /// The resource with id `id`, if the fake holds it.
    pub fn resource(&self, id: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .resources
            .get(&id.to_lowercase())
            .cloned()
    }

    /// The ids of every resource held, as created (sorted).
    pub fn ids(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut ids: Vec<String> = state
            .resources
            .values()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Change the resource with id `id` behind hive's back.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut state = self.state.lock().unwrap();
        f(state.resources.get_mut(&id.to_lowercase()).expect("held"));
    }

    pub fn power(&self, vm: &str) -> Option<String> {
        let id = self.id(&format!(
            "resourceGroups/pdns/providers/Microsoft.Compute/virtualMachines/{vm}"
        ));
        self.state
            .lock()
            .unwrap()
            .power
            .get(&id.to_lowercase())
            .cloned()
    }

    /// The calls made since `from`, other than reads.
    pub fn writes_since(&self, from: usize) -> Vec<String> {
        self.state.lock().unwrap().calls[from..]
            .iter()
            .filter(|c| !c.starts_with("GET "))
            .cloned()
            .collect()
    }

    pub fn call_count(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<State>, secret: &str, base: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let r = if method == "POST" && path.ends_with("/oauth2/v2.0/token") {
        token(path, &body, secret)
    } else if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
        error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or invalid.",
        )
    } else {
        let mut state = state.lock().unwrap();
        state.calls.push(format!("{method} {path}"));
        arm(&mut state, &method, path, query, &body, base)
    };
    let text = if r.body.is_null() {
        String::new()
    } else {
        r.body.to_string()
    };
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        text.len()
    );
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&text);
    let _ = stream.write_all(out.as_bytes());
}

fn token(path: &str, body: &str, secret: &str) -> Reply {
    let form: BTreeMap<String, String> = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if path != format!("/{TENANT}/oauth2/v2.0/token")
        || field("grant_type") != "client_credentials"
        || field("client_id") != CLIENT_ID
        || field("client_secret") != secret
        || !field("scope").ends_with("/.default")
    {
        return reply(
            401,
            json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            }),
        );
    }
    reply(
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}),
    )
}

/// `application/x-www-form-urlencoded` decoding.
fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The api-version each namespace is called with.
fn api_version(path: &str) -> &'static str {
    if path.contains("/providers/Microsoft.Compute/") {
        "2024-07-01"
    } else if path.contains("/providers/Microsoft.Network/") {
        "2024-05-01"
    } else {
        "2021-04-01"
    }
}

fn operation(state: &mut State, base: &str, header: &str, end: Value) -> (String, String) {
    state.next += 1;
    // One poll answers "in progress", the next the end.
    state.operations.insert(state.next, (1, end));
    (
        header.to_string(),
        format!("{base}/operations/{}", state.next),
    )
}

fn arm(state: &mut State, method: &str, path: &str, query: &str, body: &str, base: &str) -> Reply {
    if let Some(n) = path.strip_prefix("/operations/") {
        return poll(state, n.parse().unwrap());
    }
    let want = format!("api-version={}", api_version(path));
    if !query.split('&').any(|q| q == want) {
        return error(
            400,
            "InvalidApiVersionParameter",
            &format!("The api-version '{query}' is invalid for {path}; expected {want}."),
        );
    }
    let key = path.to_lowercase();
    let group: String = path.split('/').take(5).collect::<Vec<_>>().join("/");
    let group_exists = state.resources.contains_key(&group.to_lowercase());
    match method {
        "GET" => {
            if let Some(vm) = key.strip_suffix("/instanceview") {
                return match state.power.get(vm) {
                    Some(p) => reply(
                        200,
                        json!({"statuses": [
                            {"code": "ProvisioningState/succeeded"},
                            {"code": format!("PowerState/{p}")},
                        ]}),
                    ),
                    None => not_found(path, group_exists),
                };
            }
            match state.resources.get(&key) {
                Some(r) => reply(200, r.clone()),
                None => not_found(path, group_exists),
            }
        }
        "PUT" => put(state, path, body, base, group_exists),
        "DELETE" => delete(state, path, base),
        "POST" => {
            let (vm, action) = key.rsplit_once('/').unwrap();
            let Some(p) = state.power.get_mut(vm) else {
                return not_found(path, group_exists);
            };
            *p = match action {
                "deallocate" => "deallocated".into(),
                "start" => "running".into(),
                _ => return error(400, "InvalidRequest", "unknown action"),
            };
            let header = operation(
                state,
                base,
                "Azure-AsyncOperation",
                json!({"status": "Succeeded"}),
            );
            Reply {
                status: 202,
                headers: vec![header, ("Retry-After".into(), "0".into())],
                body: Value::Null,
            }
        }
        _ => error(405, "MethodNotAllowed", method),
    }
}

fn not_found(path: &str, group_exists: bool) -> Reply {
    if !group_exists {
        let group = path.split('/').nth(4).unwrap_or("");
        return error(
            404,
            "ResourceGroupNotFound",
            &format!("Resource group '{group}' could not be found."),
        );
    }
    let name = path.rsplit('/').next().unwrap_or("");
    error(
        404,
        "ResourceNotFound",
        &format!("The Resource '{name}' under resource group was not found."),
    )
}

fn poll(state: &mut State, n: u64) -> Reply {
    let Some((left, end)) = state.operations.get_mut(&n) else {
        return error(404, "NotFound", "no such operation");
    };
    let status = if *left > 0 {
        *left -= 1;
        if end.get("location").is_some() {
            return Reply {
                status: 202,
                headers: vec![("Retry-After".into(), "0".into())],
                body: Value::Null,
            };
        }
        reply(200, json!({"status": "InProgress"}))
    } else if end.get("location").is_some() {
        reply(200, Value::Null)
    } else {
        reply(200, end.clone())
    };
    Reply {
        headers: vec![("Retry-After".into(), "0".into())],
        ..status
    }
}

/// Every resource id `v` refers to.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("id", Value::String(s)) => out.push(s.to_lowercase()),
                    _ => references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

fn put(state: &mut State, path: &str, body: &str, base: &str, group_exists: bool) -> Reply {
    let is_group = path.split('/').count() == 5;
    if !is_group && !group_exists {
        return not_found(path, false);
    }
    let mut r: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return error(400, "InvalidRequestContent", &e.to_string()),
    };
    let mut refs = Vec::new();
    references(&r, &mut refs);
    if let Some(missing) = refs
        .iter()
        .find(|id| !id.contains("/images/") && !state.resources.contains_key(*id))
    {
        return error(
            400,
            "InvalidResourceReference",
            &format!("Resource {missing} referenced by resource {path} was not found."),
        );
    }
    if path.contains("/subnets/") {
        let vnet = path.to_lowercase();
        let vnet = vnet.rsplit_once("/subnets/").unwrap().0;
        if !state.resources.contains_key(vnet) {
            return not_found(path, true);
        }
    }
    // The first address is throttled once, as ARM throttles a burst of
    // writes (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
    if path.contains("/publicIPAddresses/") && !state.throttled {
        state.throttled = true;
        return Reply {
            status: 429,
            headers: vec![("Retry-After".into(), "0".into())],
            body: json!({"error": {"code": "TooManyRequests", "message": "The request is being throttled."}}),
        };
    }
    let vm = path.contains("/Microsoft.Compute/virtualMachines/");
    if vm {
        let size = r["properties"]["hardwareProfile"]["vmSize"]
            .as_str()
            .unwrap_or("");
        if !SIZES.contains(&size) {
            return error(
                400,
                "InvalidParameter",
                &format!(
                    "The value {size} provided for the VM size is not valid. The valid sizes in the current region are: {}.",
                    SIZES.join(", ")
                ),
            );
        }
    }
    let name = path.rsplit('/').next().unwrap().to_string();
    r["id"] = json!(path);
    r["name"] = json!(name);
    r["properties"]["provisioningState"] = json!("Succeeded");
    if path.contains("/publicIPAddresses/") {
        state.addresses += 1;
        r["properties"]["ipAddress"] = json!(format!("20.48.0.{}", state.addresses));
    }
    if vm {
        // The managed disks the VM creates, managed by it.
        let group = path.rsplit_once("/providers/").unwrap().0;
        let storage = &r["properties"]["storageProfile"];
        let mut disks = vec![(storage["osDisk"].clone(), "FromImage")];
        for d in storage["dataDisks"].as_array().cloned().unwrap_or_default() {
            disks.push((d, "Empty"));
        }
        for (d, _) in disks {
            let disk_id = format!(
                "{group}/providers/Microsoft.Compute/disks/{}",
                d["name"].as_str().unwrap()
            );
            let disk = json!({
                "id": disk_id,
                "name": d["name"],
                "location": r["location"],
                "zones": r["zones"],
                "managedBy": path,
                "sku": {"name": d["managedDisk"]["storageAccountType"]},
                "properties": {"diskSizeGB": d["diskSizeGB"], "provisioningState": "Succeeded"},
            });
            state.resources.insert(disk_id.to_lowercase(), disk);
        }
        state.power.insert(path.to_lowercase(), "running".into());
    }
    state.resources.insert(path.to_lowercase(), r.clone());
    let header = operation(
        state,
        base,
        "Azure-AsyncOperation",
        json!({"status": "Succeeded"}),
    );
    Reply {
        status: 201,
        headers: vec![header, ("Retry-After".into(), "0".into())],
        body: r,
    }
}

fn delete(state: &mut State, path: &str, base: &str) -> Reply {
    let key = path.to_lowercase();
    if !state.resources.contains_key(&key) {
        return reply(204, Value::Null);
    }
    let child = format!("{key}/");
    let user = state.resources.iter().find(|(id, r)| {
        if id.starts_with(&child) || **id == key {
            return false;
        }
        let mut refs = Vec::new();
        references(r, &mut refs);
        refs.iter().any(|x| *x == key || x.starts_with(&child))
    });
    // A disk attached to a VM cannot be deleted.
    let manager = state.resources[&key]["managedBy"]
        .as_str()
        .map(str::to_lowercase)
        .filter(|m| state.resources.contains_key(m));
    let user = user.map(|(id, _)| id.clone()).or(manager);
    if let Some(user) = user {
        let code = match key.split('/').nth(7) {
            Some("networksecuritygroups") => "InUseNetworkSecurityGroupCannotBeDeleted",
            Some("virtualnetworks") => "InUseSubnetCannotBeDeleted",
            Some("publicipaddresses") => "PublicIPAddressInUse",
            Some("networkinterfaces") => "NicInUse",
            _ => "OperationNotAllowed",
        };
        return error(
            400,
            code,
            &format!("{path} is in use by {user} and cannot be deleted."),
        );
    }
    state
        .resources
        .retain(|id, _| *id != key && !id.starts_with(&child));
    // The VM's disks are detached (their deleteOption is Detach).
    for r in state.resources.values_mut() {
        if r["managedBy"].as_str().map(str::to_lowercase) == Some(key.clone()) {
            r["managedBy"] = Value::Null;
        }
    }
    state
        .power
        .retain(|id, _| *id != key && !id.starts_with(&child));
    let header = operation(state, base, "Location", json!({"location": true}));
    Reply {
        status: 202,
        headers: vec![header, ("Retry-After".into(), "0".into())],
        body: Value::Null,
    }
}
