//! The desired state in an etcd cluster (`etcd://host:2379,host:2379,…`), through etcd's
//! JSON gateway on the client port (`/v3/kv/*`, `/v3/lease/*`: no gRPC code generation at
//! build time).
//!
//! Keys, all under one prefix (default `/strata/`):
//! - `objects/<class>/<key>`: one object's JSON, as the SQL tables keep it;
//! - `meta/schema_version`, `meta/generation`;
//! - `files/<name>`: what several controllers must share (the cluster's CA and identity);
//! - `leader`: the leading controller's name and REST URL, bound to its lease;
//! - `journal/<generation>/<part>` and `journal/<generation>/done`: a commit too big for one
//!   etcd transaction (`ops_per_transaction`, etcd's `--max-txn-ops`, default 128; or
//!   more than `MAX_TXN_BYTES`).
//!
//! A commit that fits is one transaction. A bigger one is written as a journal first, made
//! durable by one transaction that writes its `done` key and the generation, then copied
//! into the objects chunk by chunk and deleted; a load applies a finished journal that is
//! still there on top of the objects (its operations are idempotent), so a commit is whole
//! or absent whichever moment the writer stops. No commit starts while a journal is being
//! copied, so there is never more than one.
//!
//! Fencing: once this store leads ([`EtcdStore::try_lead`]), every transaction it makes
//! compares the leader key's creation revision with the one it created; when its lease
//! expired and another controller leads, each of its writes fails.
//!
//! Calls are blocking HTTP requests made on a thread of their own (as for PostgreSQL), so
//! the store may be called from anywhere, a runtime's threads included.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use strata_model::cluster::{Change, Cluster};

use crate::{Persistence, Row, StoreError, CLASSES, SCHEMA_VERSION};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/strata/";
/// etcd's default `--max-txn-ops`.
pub const DEFAULT_OPS_PER_TXN: usize = 128;
/// Bytes of keys and values one transaction may carry (etcd refuses requests over 1.5 MiB
/// by default; base64 and JSON add a third).
const MAX_TXN_BYTES: usize = 900 * 1024;
/// Keys read per range request while loading.
const PAGE: usize = 2000;

/// How to reach the etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// Every key lives under it; several clusters may share one etcd.
    pub prefix: String,
    /// At most this many operations in one transaction (etcd's `--max-txn-ops`).
    pub ops_per_txn: usize,
    /// The CA that signed the members' certificates: HTTPS to the members when given.
    pub ca_certificate: Option<PathBuf>,
    /// This client's certificate and PKCS#8 key, for etcd's `--client-cert-auth`.
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// How long one request may take.
    pub timeout: Duration,
}

/// The members an `etcd://host:port,host:port` URL names (port 2379 when left out).
pub fn etcd_endpoints(url: &str) -> Option<Vec<String>> {
    let rest = url.trim().strip_prefix("etcd://")?;
    let hosts: Vec<String> = rest
        .trim_end_matches('/')
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                h.to_string()
            } else {
                format!("{h}:2379")
            }
        })
        .collect();
    (!hosts.is_empty()).then_some(hosts)
}

impl EtcdConfig {
    /// The settings for `url` with the defaults.
    pub fn from_url(url: &str) -> Option<EtcdConfig> {
        Some(EtcdConfig {
            endpoints: etcd_endpoints(url)?,
            prefix: DEFAULT_PREFIX.to_string(),
            ops_per_txn: DEFAULT_OPS_PER_TXN,
            ca_certificate: None,
            client_certificate: None,
            client_key: None,
            timeout: Duration::from_secs(10),
        })
    }

    /// `etcd://` and the members, for messages and export files.
    pub fn url(&self) -> String {
        format!("etcd://{}", self.endpoints.join(","))
    }
}

/// The controller that leads, as it announces itself under the leader key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaderInfo {
    /// The controller's name (its host name unless configured).
    pub name: String,
    /// Where its REST API is reached.
    pub url: String,
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Op {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Every key under this one (a range delete).
    DeletePrefix {
        key: String,
    },
}

impl Op {
    fn size(&self) -> usize {
        match self {
            Op::Put { key, value } => key.len() + value.len(),
            Op::Delete { key } | Op::DeletePrefix { key } => key.len(),
        }
    }

    fn request(&self) -> Value {
        match self {
            Op::Put { key, value } => json!({"requestPut": {"key": b64(key), "value": b64(value)}}),
            Op::Delete { key } => json!({"requestDeleteRange": {"key": b64(key)}}),
            Op::DeletePrefix { key } => json!({"requestDeleteRange": {
                "key": b64(key), "range_end": b64(&prefix_end(key))}}),
        }
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn unb64(v: &Value) -> Result<String, StoreError> {
    let s = v.as_str().unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| StoreError::Etcd(format!("a key or value is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|e| StoreError::Etcd(format!("a key or value is not UTF-8: {e}")))
}

/// The first key after every key that starts with `key`.
fn prefix_end(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    "\0".to_string()
}

/// An etcd number (the gateway writes 64-bit numbers as strings, and leaves out zeros).
fn num(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// Runs `f` on a thread of its own (see the module's note).
fn apart<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("an etcd call does not panic"))
}

/// The HTTP side: a request to the first member that answers.
struct Gateway {
    http: reqwest::blocking::Client,
    /// Base URLs of the members (`http://host:port` or `https://…`).
    bases: Vec<String>,
    /// The member that answered last: asked first.
    current: Mutex<usize>,
}

impl Gateway {
    fn new(cfg: &EtcdConfig) -> Result<Gateway, StoreError> {
        let scheme = if cfg.ca_certificate.is_some() {
            "https"
        } else {
            "http"
        };
        let mut b = reqwest::blocking::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(60));
        let read = |p: &PathBuf| {
            std::fs::read(p)
                .map_err(|e| StoreError::Etcd(format!("cannot read {}: {e}", p.display())))
        };
        if let Some(ca) = &cfg.ca_certificate {
            let cert = reqwest::Certificate::from_pem(&read(ca)?)
                .map_err(|e| StoreError::Etcd(format!("{}: {e}", ca.display())))?;
            b = b.tls_built_in_root_certs(false).add_root_certificate(cert);
        }
        match (&cfg.client_certificate, &cfg.client_key) {
            (Some(c), Some(k)) => {
                let mut pem = read(c)?;
                pem.push(b'\n');
                pem.extend(read(k)?);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    StoreError::Etcd(format!("{} / {}: {e}", c.display(), k.display()))
                })?;
                b = b.identity(id);
            }
            (None, None) => {}
            _ => {
                return Err(StoreError::Etcd(
                    "a client certificate needs its key and a key its certificate: give both"
                        .into(),
                ))
            }
        }
        let http = b
            .build()
            .map_err(|e| StoreError::Etcd(format!("HTTP client: {e}")))?;
        Ok(Gateway {
            http,
            bases: cfg
                .endpoints
                .iter()
                .map(|e| format!("{scheme}://{e}"))
                .collect(),
            current: Mutex::new(0),
        })
    }

    /// POSTs `body` to `path` on a member; on a member that cannot be reached or has no
    /// leader, the next one. Answers the JSON answer, or etcd's error.
    fn call(&self, path: &str, body: &Value) -> Result<Value, StoreError> {
        let start = *self.current.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.bases.len();
        let mut failures = Vec::new();
        for i in 0..n {
            let at = (start + i) % n;
            let url = format!("{}{path}", self.bases[at]);
            let answer = self.http.post(&url).json(body).send().and_then(|r| {
                let status = r.status();
                r.json::<Value>().map(|v| (status, v))
            });
            match answer {
                Ok((_, v)) if v.get("error").is_none() => {
                    *self.current.lock().unwrap_or_else(|e| e.into_inner()) = at;
                    return Ok(v);
                }
                Ok((status, v)) => {
                    let msg = v
                        .get("message")
                        .or_else(|| v.get("error"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    // Unavailable (14) and timeouts (4) are the member's: another may do.
                    let code = num(&v["code"]);
                    if code == 14 || code == 4 || status.is_server_error() && code == 0 {
                        failures.push(format!("{}: {msg}", self.bases[at]));
                        continue;
                    }
                    return Err(StoreError::Etcd(msg));
                }
                Err(e) => failures.push(format!("{}: {}", self.bases[at], describe(&e))),
            }
        }
        Err(StoreError::Unreachable(failures.join("; ")))
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

pub struct EtcdStore {
    cfg: EtcdConfig,
    gw: Gateway,
    /// The leader key's creation revision while this store leads: every transaction
    /// compares it.
    fence: Mutex<Option<i64>>,
    /// Serialises commits (a journal is copied before the next commit starts), and holds
    /// the generation of a journal whose copy into the objects did not finish.
    writer: Mutex<Option<u64>>,
    /// Test hook: the next journal commit stops once it is durable.
    stop_after_journal: std::sync::atomic::AtomicBool,
}

impl EtcdStore {
    /// Connects (to the first member that answers) and brings the layout up to date.
    pub fn open(cfg: EtcdConfig) -> Result<EtcdStore, StoreError> {
        if cfg.ops_per_txn < 8 {
            return Err(StoreError::Etcd(format!(
                "ops_per_transaction {} is too small: etcd allows 128 by default (--max-txn-ops); give at least 8",
                cfg.ops_per_txn
            )));
        }
        if !cfg.prefix.starts_with('/') || !cfg.prefix.ends_with('/') {
            return Err(StoreError::Etcd(format!(
                "the key prefix '{}' must start and end with '/' (as '{DEFAULT_PREFIX}')",
                cfg.prefix
            )));
        }
        let gw = apart(|| Gateway::new(&cfg))?;
        let store = EtcdStore {
            cfg,
            gw,
            fence: Mutex::new(None),
            writer: Mutex::new(None),
            stop_after_journal: Default::default(),
        };
        apart(|| store.bring_up_to_date())?;
        Ok(store)
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.cfg
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.cfg.prefix)
    }

    fn object_key(&self, class: &str, key: &str) -> String {
        self.key(&format!("objects/{class}/{key}"))
    }

    fn bring_up_to_date(&self) -> Result<(), StoreError> {
        let key = self.key("meta/schema_version");
        let found = self.get(&key)?;
        match found.map(|(v, _)| v.parse::<i64>()) {
            Some(Ok(v)) if v > SCHEMA_VERSION => Err(StoreError::TooNew { found: v }),
            Some(Ok(v)) if v == SCHEMA_VERSION => Ok(()),
            Some(Err(_)) => Err(StoreError::Corrupt {
                class: "meta".into(),
                key: "schema_version".into(),
                reason: "not a version number".into(),
            }),
            // A new prefix (refused when it holds keys that are not ours), or an older
            // version: the objects' JSON is the same in every version so far.
            other => {
                if other.is_none() {
                    let (_, kvs) = self.range_page(&self.cfg.prefix, None, 1)?;
                    if let Some((k, _)) = kvs.first() {
                        return Err(StoreError::Etcd(format!(
                            "the prefix '{}' holds keys this controller did not write (as '{k}'): name another one ([db.etcd] prefix)",
                            self.cfg.prefix
                        )));
                    }
                }
                let v = SCHEMA_VERSION.to_string();
                self.txn(&[Op::Put { key, value: v }], false).map(|_| ())
            }
        }
    }

    /// One key's value and its creation revision.
    fn get(&self, key: &str) -> Result<Option<(String, i64)>, StoreError> {
        let v = self.gw.call("/v3/kv/range", &json!({"key": b64(key)}))?;
        match v["kvs"].as_array().and_then(|k| k.first()) {
            Some(kv) => Ok(Some((unb64(&kv["value"])?, num(&kv["create_revision"])))),
            None => Ok(None),
        }
    }

    /// Up to `limit` keys from `from` to the end of the prefix, at `revision` (the current
    /// one when `None`); answers the revision read and the keys with their values.
    #[allow(clippy::type_complexity)]
    fn range_page(
        &self,
        from: &str,
        revision: Option<i64>,
        limit: usize,
    ) -> Result<(i64, Vec<(String, String)>), StoreError> {
        let mut body = json!({
            "key": b64(from),
            "range_end": b64(&prefix_end(&self.cfg.prefix)),
            "limit": limit,
        });
        if let Some(r) = revision {
            body["revision"] = json!(r.to_string());
        }
        let v = self.gw.call("/v3/kv/range", &body)?;
        let rev = num(&v["header"]["revision"]);
        let mut out = Vec::new();
        for kv in v["kvs"].as_array().into_iter().flatten() {
            out.push((unb64(&kv["key"])?, unb64(&kv["value"])?));
        }
        Ok((rev, out))
    }

    /// Every key under the prefix, read at one revision.
    fn read_everything(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut all = BTreeMap::new();
        let mut from = self.cfg.prefix.clone();
        let mut revision = None;
        loop {
            let (rev, page) = self.range_page(&from, revision, PAGE)?;
            revision.get_or_insert(rev);
            let n = page.len();
            if let Some((last, _)) = page.last() {
                from = format!("{last}\0");
            }
            all.extend(page);
            if n < PAGE {
                return Ok(all);
            }
        }
    }

    /// One transaction of `ops`, guarded by the fence when this store leads (and
    /// `fenced`). Answers whether it was made; a lost fence is an error.
    fn txn(&self, ops: &[Op], fenced: bool) -> Result<Value, StoreError> {
        let fence = *self.fence.lock().unwrap_or_else(|e| e.into_inner());
        let compare: Vec<Value> = match fence.filter(|_| fenced) {
            Some(rev) => vec![json!({
                "target": "CREATE", "key": b64(&self.key("leader")),
                "createRevision": rev.to_string(), "result": "EQUAL"})],
            None => Vec::new(),
        };
        let success: Vec<Value> = ops.iter().map(Op::request).collect();
        let v = self.gw.call(
            "/v3/kv/txn",
            &json!({"compare": compare, "success": success, "failure": []}),
        )?;
        if v["succeeded"].as_bool() != Some(true) && !compare.is_empty() {
            return Err(StoreError::NotLeader);
        }
        Ok(v)
    }

    /// `ops` in as few transactions as the limits allow, each fenced.
    fn txns(&self, ops: &[Op]) -> Result<(), StoreError> {
        for chunk in chunks(ops, self.cfg.ops_per_txn) {
            self.txn(chunk, true)?;
        }
        Ok(())
    }

    /// What `changes` write, the last write of a key winning (etcd refuses a key twice in
    /// one transaction).
    fn ops_of(&self, changes: &[Change]) -> Vec<Op> {
        let mut last: BTreeMap<String, Op> = BTreeMap::new();
        let mut order = Vec::new();
        for change in changes {
            let (class, key) = change.store_key();
            let k = self.object_key(class.as_str(), &key);
            let op = match change.payload() {
                Some(json) => Op::Put {
                    key: k.clone(),
                    value: json.to_string(),
                },
                None => Op::Delete { key: k.clone() },
            };
            if last.insert(k.clone(), op).is_none() {
                order.push(k);
            }
        }
        order.into_iter().filter_map(|k| last.remove(&k)).collect()
    }

    /// Writes `ops` and the generation as one commit: a transaction when they fit, else a
    /// journal (see the module's note).
    fn write(&self, generation: u64, mut ops: Vec<Op>) -> Result<(), StoreError> {
        let mut pending = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = *pending {
            self.finish_journal(g)?;
            *pending = None;
        }
        let gen_op = Op::Put {
            key: self.key("meta/generation"),
            value: generation.to_string(),
        };
        let bytes: usize = ops.iter().map(Op::size).sum();
        let ranged = ops.iter().any(|o| matches!(o, Op::DeletePrefix { .. }));
        if ops.len() < self.cfg.ops_per_txn && bytes <= MAX_TXN_BYTES && !ranged {
            ops.push(gen_op);
            self.txn(&ops, true)?;
            return Ok(());
        }
        // The journal: its parts, then the transaction that makes it the commit.
        let text = serde_json::to_string(&ops).expect("operations serialise");
        let parts: Vec<&str> = split_str(&text, MAX_TXN_BYTES / 2);
        let base = self.journal_key(generation);
        self.txn(&[Op::DeletePrefix { key: base.clone() }], true)?;
        let part_ops: Vec<Op> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| Op::Put {
                key: format!("{base}{i:06}"),
                value: p.to_string(),
            })
            .collect();
        for op in &part_ops {
            self.txn(std::slice::from_ref(op), true)?;
        }
        self.txn(
            &[
                Op::Put {
                    key: format!("{base}done"),
                    value: parts.len().to_string(),
                },
                gen_op,
            ],
            true,
        )?;
        // Committed. Copying it into the objects is redone by the next commit or load if
        // it stops half-way.
        *pending = Some(generation);
        if self
            .stop_after_journal
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        self.apply_journal(&ops, generation)?;
        *pending = None;
        Ok(())
    }

    fn journal_key(&self, generation: u64) -> String {
        self.key(&format!("journal/{generation:020}/"))
    }

    fn apply_journal(&self, ops: &[Op], generation: u64) -> Result<(), StoreError> {
        self.txns(ops)?;
        self.txn(
            &[Op::DeletePrefix {
                key: self.journal_key(generation),
            }],
            true,
        )?;
        Ok(())
    }

    /// Reads the finished journal of `generation` and copies it into the objects.
    fn finish_journal(&self, generation: u64) -> Result<(), StoreError> {
        let all = self.read_everything()?;
        for (g, ops) in self.journals(&all)? {
            if g == generation {
                return self.apply_journal(&ops, g);
            }
        }
        Ok(())
    }

    /// The finished journals in `all`, in order.
    fn journals(&self, all: &BTreeMap<String, String>) -> Result<Vec<(u64, Vec<Op>)>, StoreError> {
        let base = self.key("journal/");
        let mut out = Vec::new();
        for (k, count) in all.range(base.clone()..prefix_end(&base)) {
            let Some(gen) = k
                .strip_prefix(&base)
                .and_then(|r| r.strip_suffix("/done"))
                .and_then(|g| g.parse::<u64>().ok())
            else {
                continue;
            };
            let n: usize = count.parse().unwrap_or(0);
            let jk = self.journal_key(gen);
            let mut text = String::new();
            for i in 0..n {
                let part = all
                    .get(&format!("{jk}{i:06}"))
                    .ok_or_else(|| StoreError::Corrupt {
                        class: "journal".into(),
                        key: gen.to_string(),
                        reason: format!("part {i} of {n} is missing"),
                    })?;
                text.push_str(part);
            }
            let ops: Vec<Op> = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                class: "journal".into(),
                key: gen.to_string(),
                reason: e.to_string(),
            })?;
            out.push((gen, ops));
        }
        Ok(out)
    }

    /// The objects and generation, with any finished journal applied.
    fn read_all(&self) -> Result<(u64, Vec<Row>), StoreError> {
        let mut all = self.read_everything()?;
        for (_, ops) in self.journals(&all)? {
            for op in ops {
                match op {
                    Op::Put { key, value } => {
                        all.insert(key, value);
                    }
                    Op::Delete { key } => {
                        all.remove(&key);
                    }
                    Op::DeletePrefix { key } => {
                        let doomed: Vec<String> = all
                            .range(key.clone()..prefix_end(&key))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in doomed {
                            all.remove(&k);
                        }
                    }
                }
            }
        }
        let generation = all
            .get(&self.key("meta/generation"))
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        let base = self.key("objects/");
        let mut rows = Vec::new();
        for (k, data) in all.range(base.clone()..prefix_end(&base)) {
            let rest = &k[base.len()..];
            let (class, key) = rest.split_once('/').unwrap_or((rest, ""));
            rows.push(Row {
                class: class.to_string(),
                key: key.to_string(),
                data: data.clone(),
            });
        }
        // Dependency order, as the SQL stores read them.
        rows.sort_by_key(|r| CLASSES.iter().position(|c| c.as_str() == r.class));
        Ok((generation, rows))
    }

    // ----- leadership -----

    /// A lease of `ttl` (etcd rounds it up to its minimum, about two seconds).
    pub fn grant(&self, ttl: Duration) -> Result<i64, StoreError> {
        apart(|| {
            let v = self.gw.call(
                "/v3/lease/grant",
                &json!({"TTL": ttl.as_secs().max(1).to_string()}),
            )?;
            Ok(num(&v["ID"]))
        })
    }

    /// Renews `lease`: answers the seconds it has left, zero when it expired.
    pub fn keep_alive(&self, lease: i64) -> Result<i64, StoreError> {
        apart(|| {
            let v = self
                .gw
                .call("/v3/lease/keepalive", &json!({"ID": lease.to_string()}))?;
            Ok(num(&v["result"]["TTL"]))
        })
    }

    /// Gives `lease` up (the leader key goes with it: another controller may lead at once).
    pub fn revoke(&self, lease: i64) -> Result<(), StoreError> {
        *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = None;
        apart(|| {
            match self
                .gw
                .call("/v3/lease/revoke", &json!({"ID": lease.to_string()}))
            {
                Ok(_) => Ok(()),
                Err(StoreError::Etcd(m)) if m.contains("not found") => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// Becomes the leader under `lease` unless a controller leads: answers `None` when it
    /// now leads (every later write is fenced by it), or the one that leads.
    ///
    /// A leader key that names `me` (the same name and URL) was left by this controller's
    /// previous run, which is gone (this one serves that URL now): it is dropped at once
    /// instead of when its lease expires, so a restarted controller leads again without
    /// waiting. Names must therefore be unique among the controllers.
    pub fn try_lead(&self, lease: i64, me: &LeaderInfo) -> Result<Option<LeaderInfo>, StoreError> {
        match self.try_lead_once(lease, me)? {
            Some((other, rev)) if &other == me => {
                let key = self.key("leader");
                apart(|| {
                    self.gw.call(
                        "/v3/kv/txn",
                        &json!({
                            "compare": [{"target": "CREATE", "key": b64(&key), "createRevision": rev.to_string(), "result": "EQUAL"}],
                            "success": [{"requestDeleteRange": {"key": b64(&key)}}],
                            "failure": [],
                        }),
                    )
                })?;
                Ok(self.try_lead_once(lease, me)?.map(|(other, _)| other))
            }
            other => Ok(other.map(|(o, _)| o)),
        }
    }

    fn try_lead_once(
        &self,
        lease: i64,
        me: &LeaderInfo,
    ) -> Result<Option<(LeaderInfo, i64)>, StoreError> {
        let key = self.key("leader");
        let value = serde_json::to_string(me).expect("leader info serialises");
        apart(|| {
            let v = self.gw.call(
                "/v3/kv/txn",
                &json!({
                    "compare": [{"target": "CREATE", "key": b64(&key), "createRevision": "0", "result": "EQUAL"}],
                    "success": [{"requestPut": {"key": b64(&key), "value": b64(&value), "lease": lease.to_string()}}],
                    "failure": [{"requestRange": {"key": b64(&key)}}],
                }),
            )?;
            if v["succeeded"].as_bool() == Some(true) {
                *self.fence.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(num(&v["header"]["revision"]));
                return Ok(None);
            }
            let kv = &v["responses"][0]["response_range"]["kvs"][0];
            let other = unb64(&kv["value"])?;
            let info = serde_json::from_str(&other).unwrap_or(LeaderInfo {
                name: other,
                url: String::new(),
            });
            Ok(Some((info, num(&kv["create_revision"]))))
        })
    }

    /// The controller that leads now, if one does.
    pub fn leader(&self) -> Result<Option<LeaderInfo>, StoreError> {
        apart(|| {
            Ok(self
                .get(&self.key("leader"))?
                .and_then(|(v, _)| serde_json::from_str(&v).ok()))
        })
    }

    /// Makes the next commit too big for one transaction stop as soon as its journal is
    /// durable, as a controller killed at that moment would (for tests of the recovery).
    #[doc(hidden)]
    pub fn stop_after_next_journal(&self) {
        self.stop_after_journal
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether this store leads (it made the leader key and has not given it up).
    pub fn leads(&self) -> bool {
        self.fence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Keeps a journal left by a controller that stopped while copying it: copies it into
    /// the objects and drops unfinished journals. Called once this store leads.
    pub fn recover(&self) -> Result<(), StoreError> {
        apart(|| {
            let all = self.read_everything()?;
            for (g, ops) in self.journals(&all)? {
                self.apply_journal(&ops, g)?;
            }
            // What is left of the journals read (unfinished ones) goes; the finished ones
            // removed themselves above, so no second read is needed to tell.
            let journal = self.key("journal/");
            if all.keys().any(|k| k.starts_with(&journal)) {
                self.txn(
                    &[Op::DeletePrefix {
                        key: self.key("journal/"),
                    }],
                    true,
                )?;
            }
            Ok(())
        })
    }
}

/// `ops` cut into transactions of at most `max` operations and `MAX_TXN_BYTES`; a range
/// delete goes alone (etcd refuses a transaction that puts a key it also deletes).
fn chunks(ops: &[Op], max: usize) -> Vec<&[Op]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, op) in ops.iter().enumerate() {
        let alone = |o: &Op| matches!(o, Op::DeletePrefix { .. });
        if i > start
            && (i - start == max
                || bytes + op.size() > MAX_TXN_BYTES
                || alone(op)
                || alone(&ops[i - 1]))
        {
            out.push(&ops[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += op.size();
    }
    if start < ops.len() {
        out.push(&ops[start..]);
    }
    out
}

/// `s` in pieces of at most `max` bytes, cut at character boundaries.
fn split_str(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

impl Persistence for EtcdStore {
    fn load(&self) -> Result<Cluster, StoreError> {
        let (generation, rows) = self.rows()?;
        crate::cluster_of(generation, rows)
    }

    fn commit(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
        let ops = self.ops_of(changes);
        apart(|| self.write(generation, ops))
    }

    fn rows(&self) -> Result<(u64, Vec<Row>), StoreError> {
        apart(|| self.read_all())
    }

    fn replace_all(&self, generation: u64, rows: &[Row]) -> Result<(), StoreError> {
        let mut ops = vec![Op::DeletePrefix {
            key: self.key("objects/"),
        }];
        ops.extend(rows.iter().map(|r| Op::Put {
            key: self.object_key(&r.class, &r.key),
            value: r.data.clone(),
        }));
        apart(|| self.write(generation, ops))
    }

    fn generation(&self) -> Result<u64, StoreError> {
        apart(|| {
            Ok(self
                .get(&self.key("meta/generation"))?
                .and_then(|(g, _)| g.parse().ok())
                .unwrap_or(0))
        })
    }

    fn shared_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        apart(|| {
            self.get(&self.key(&format!("files/{name}")))?
                .map(|(v, _)| {
                    base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .map_err(|e| StoreError::Corrupt {
                            class: "files".into(),
                            key: name.into(),
                            reason: e.to_string(),
                        })
                })
                .transpose()
        })
    }

    fn share_file(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = self.key(&format!("files/{name}"));
        let value = base64::engine::general_purpose::STANDARD.encode(bytes);
        apart(|| {
            self.gw.call(
                "/v3/kv/txn",
                &json!({
                    "compare": [{"target": "CREATE", "key": b64(&key), "createRevision": "0", "result": "EQUAL"}],
                    "success": [{"requestPut": {"key": b64(&key), "value": b64(&value)}}],
                    "failure": [],
                }),
            )?;
            Ok::<(), StoreError>(())
        })?;
        Ok(self.shared_file(name)?.unwrap_or_else(|| bytes.to_vec()))
    }

    fn shares_files(&self) -> bool {
        true
    }

    fn etcd(&self) -> Option<&EtcdStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_members() {
        assert_eq!(
            etcd_endpoints("etcd://10.0.0.1:2379,10.0.0.2, 10.0.0.3:2479/"),
            Some(vec![
                "10.0.0.1:2379".to_string(),
                "10.0.0.2:2379".to_string(),
                "10.0.0.3:2479".to_string()
            ])
        );
        assert_eq!(etcd_endpoints("etcd://"), None);
        assert_eq!(etcd_endpoints("postgresql://x/y"), None);
    }

    #[test]
    fn prefix_end_is_the_first_key_after() {
        assert_eq!(prefix_end("/strata/"), "/strata0");
        assert_eq!(prefix_end("a"), "b");
    }

    #[test]
    fn chunks_keep_to_both_limits() {
        let ops: Vec<Op> = (0..300)
            .map(|i| Op::Put {
                key: format!("k{i}"),
                value: "v".into(),
            })
            .collect();
        let c = chunks(&ops, 128);
        assert_eq!(
            c.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![128, 128, 44]
        );
        let big: Vec<Op> = (0..5)
            .map(|i| Op::Put {
                key: format!("k{i}"),
                value: "x".repeat(400 * 1024),
            })
            .collect();
        let c = chunks(&big, 128);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
    }

    #[test]
    fn strings_split_at_character_boundaries() {
        let s = "ää".repeat(10);
        let parts = split_str(&s, 7);
        assert!(parts.iter().all(|p| p.len() <= 7));
        assert_eq!(parts.concat(), s);
    }
}
