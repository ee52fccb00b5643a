//! The orphan report (`ssi-runner orphans [--json]`): what was provisioned and is no
//! longer wanted, and what should have been provisioned and is not. Read-only: it
//! lists, it never deletes or changes anything.
//!
//! Three kinds of finding:
//! - [`OrphanKind::StateWithoutRequest`]: a Terraform state that still holds resources
//!   while its request is `deleted`, `rejected`, `cancelled`, or not in the table. (A
//!   deleted request's state is kept, empty, for the record: an empty state is fine.)
//! - [`OrphanKind::ResourceWithoutRequest`]: a resource of such a request. In AWS and on
//!   moto: everything the Resource Groups Tagging API finds with the tag
//!   `ssi:request_id` (RDS, ElastiCache, S3, SQS: one paged `GetResources`). On the
//!   local engines, which have no tags: the PostgreSQL and MariaDB databases, roles and
//!   users and the Redis ACL users named `ssi_<request id, 32 hex>` by the local
//!   modules, and the simulated Kubernetes namespaces (their `ssi/request_id` label).
//! - [`OrphanKind::RequestWithoutState`]: a `ready` or `deleting` request whose state is
//!   missing or empty (its resources may exist, but nothing can destroy them).
//!
//! It lives in the runner because only the runner holds the access it needs: the state
//! backend (the bucket policy lets only the runner's role read the states), the local
//! engines' admin connections and the provider credentials (the part of its
//! environment it passes to Terraform, [`RunnerConfig::terraform_env`]). The API and
//! `ssi-admin` deliberately have none of these.
//!
//! The engine clients (`psql`, `mariadb`/`mysql`, `redis-cli`) are started with that
//! environment only, as Terraform's local-exec provisioners are: the admin passwords
//! reach them as `PGPASSWORD`, `MYSQL_PWD` and `REDISCLI_AUTH`, never on a command line.
//! The states are secret (they hold generated passwords): only the number of resources
//! in each is read, and nothing of their contents is kept or printed.

use crate::{
    config::{RunnerConfig, StateBackend, Target},
    terraform::local_state_dir,
};
use serde::{de::IgnoredAny, Deserialize, Serialize, Serializer};
use shared::{
    model::RequestStatus,
    store::{RequestList, Store, StoreError},
};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::{process::Command, task::JoinSet};
use uuid::Uuid;

/// The tag every AWS resource of a request carries (see the modules' `aws/main.tf`).
pub const REQUEST_ID_TAG: &str = "ssi:request_id";

/// The label of a (simulated) Kubernetes namespace (`k8s_namespace/local/main.tf`).
const K8S_REQUEST_ID_LABEL: &str = "ssi/request_id";

/// Where the S3 backend keeps the states: `requests/<request id>/terraform.tfstate`.
const S3_STATE_PREFIX: &str = "requests/";
const STATE_FILE: &str = "terraform.tfstate";

/// The longest an engine client may take to answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Requests looked up in the table at the same time.
const LOOKUPS_AT_ONCE: usize = 16;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanKind {
    /// A state that still holds resources, of a request that is gone or ended.
    StateWithoutRequest,
    /// A tagged or named resource of a request that is gone or ended.
    ResourceWithoutRequest,
    /// A `ready` or `deleting` request whose state is missing or empty.
    RequestWithoutState,
}

impl OrphanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StateWithoutRequest => "state_without_request",
            Self::ResourceWithoutRequest => "resource_without_request",
            Self::RequestWithoutState => "request_without_state",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub kind: OrphanKind,
    /// The request id as found: a UUID, or for a resource whose `ssi:request_id` tag is
    /// not one, the tag's value.
    pub request_id: String,
    /// Where: the state's path or `s3://bucket/key`, `<engine> <object> <name>`, or an ARN.
    pub location: String,
    /// The request's status; `None` when the table has no such request ("unknown").
    #[serde(serialize_with = "status_or_unknown")]
    pub status: Option<RequestStatus>,
}

impl Orphan {
    /// The status as printed: the request's, or `unknown`.
    pub fn status_str(&self) -> &'static str {
        self.status.map_or("unknown", RequestStatus::as_str)
    }
}

fn status_or_unknown<S: Serializer>(status: &Option<RequestStatus>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.map_or("unknown", RequestStatus::as_str))
}

/// The findings, and what could not be looked at with this configuration (an engine
/// whose admin connection is not set, no AWS endpoint locally).
#[derive(Debug, Default)]
pub struct Report {
    pub orphans: Vec<Orphan>,
    pub not_checked: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("could not read the state directory {0}")]
    StateDir(String, #[source] std::io::Error),
    #[error("{0} is not a readable Terraform state")]
    BadState(String, #[source] serde_json::Error),
    #[error("could not read the state bucket s3://{0}")]
    StateBucket(String, #[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("could not list the resources tagged {REQUEST_ID_TAG} (tag:GetResources)")]
    Tagging(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{engine}: {problem}")]
    Engine { engine: &'static str, problem: String },
    #[error("could not read the requests")]
    Store(#[from] StoreError),
}

/// A request that has no claim on resources any more: gone from the table, or ended
/// without (`rejected`, `cancelled`) or after (`deleted`) its resources.
pub fn is_dead(status: Option<RequestStatus>) -> bool {
    matches!(
        status,
        None | Some(RequestStatus::Deleted | RequestStatus::Rejected | RequestStatus::Cancelled)
    )
}

/// The request id in a local engine object's name, `ssi_<32 lower-case hex>` (the
/// modules' `local.hex`); `None` for every other name.
pub fn request_id_from_name(name: &str) -> Option<Uuid> {
    let hex = name.strip_prefix("ssi_")?;
    let ok = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| Uuid::parse_str(hex).ok()).flatten()
}

/// What the scan needs of a state: how many resources it holds. The rest (outputs,
/// attributes: secrets) is skipped by the parser, never kept.
#[derive(Deserialize)]
struct StateSummary {
    #[serde(default)]
    resources: Vec<IgnoredAny>,
}

fn resources_in(location: &str, bytes: &[u8]) -> Result<usize, ScanError> {
    // Terraform writes an empty file for a state it has not written yet.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    serde_json::from_slice::<StateSummary>(bytes)
        .map(|s| s.resources.len())
        .map_err(|e| ScanError::BadState(location.to_string(), e))
}

/// A request's state: where it is and how many resources it holds.
#[derive(Debug)]
struct State {
    location: String,
    resources: usize,
}

/// The states of the local backend: `<dir>/<request id>/terraform.tfstate`. A request
/// directory without a state file (a run that failed before Terraform wrote one) has
/// no state.
async fn local_states(dir: &Path) -> Result<BTreeMap<Uuid, State>, ScanError> {
    let mut states = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // No run has written a state yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(states),
        Err(e) => return Err(ScanError::StateDir(dir.display().to_string(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| ScanError::StateDir(dir.display().to_string(), e))?;
        let Some(id) = entry.file_name().to_str().and_then(|n| Uuid::parse_str(n).ok()) else {
            continue;
        };
        let path = local_state_dir(dir, id).join(STATE_FILE);
        let location = path.display().to_string();
        let Some(resources) = read_local_state(&path, &location).await? else {
            continue;
        };
        states.insert(id, State { location, resources });
    }
    Ok(states)
}

/// The resources in one local state; `None` when there is no state file. The local
/// backend rewrites the file in place, so a run writing it meanwhile can show a
/// partial file: it is read again a few times before it is called unreadable.
async fn read_local_state(path: &Path, location: &str) -> Result<Option<usize>, ScanError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ScanError::StateDir(location.to_string(), e)),
        };
        match resources_in(location, &bytes) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if tries >= 3 => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The SDK configuration for the state bucket and the tagging API: the runner's
/// region, `AWS_ENDPOINT_URL` (moto) when set, and the AWS credentials of the
/// environment the runner gives Terraform when it has a key pair (locally, moto's
/// admin key); otherwise the default chain (the runner's role in AWS).
async fn aws_config(cfg: &RunnerConfig) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cfg.region.clone()))
        .timeout_config(shared::app::timeout_config())
        .retry_config(shared::app::retry_config());
    if let Some(endpoint) = &cfg.aws_endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let env = &cfg.terraform_env;
    if let (Some(id), Some(secret)) = (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            env.get("AWS_SESSION_TOKEN").cloned(),
            None,
            "runner-environment",
        ));
    }
    loader.load().await
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

/// The states of the S3 backend: every `requests/<request id>/terraform.tfstate` in
/// the bucket (`s3:ListBucket` and `s3:GetObject` on it).
async fn s3_states(
    sdk: &aws_config::SdkConfig,
    cfg: &RunnerConfig,
    bucket: &str,
) -> Result<BTreeMap<Uuid, State>, ScanError> {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        // moto serves buckets on paths, not on host names.
        .force_path_style(cfg.aws_endpoint.is_some())
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    let failed = |e| ScanError::StateBucket(bucket.to_string(), e);
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(S3_STATE_PREFIX)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed(boxed(e)))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let id = key
                .strip_prefix(S3_STATE_PREFIX)
                .and_then(|rest| rest.strip_suffix(STATE_FILE))
                .and_then(|id| id.strip_suffix('/'))
                .and_then(|id| Uuid::parse_str(id).ok());
            if let Some(id) = id {
                keys.push((id, key.to_string()));
            }
        }
    }
    let mut states = BTreeMap::new();
    for (id, key) in keys {
        let location = format!("s3://{bucket}/{key}");
        let object = client
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| failed(boxed(e)))?;
        let bytes = object.body.collect().await.map_err(|e| failed(boxed(e)))?.into_bytes();
        let resources = resources_in(&location, &bytes)?;
        states.insert(id, State { location, resources });
    }
    Ok(states)
}

/// A resource found with the request id it belongs to (as found: a name or a tag).
struct Found {
    request_id: String,
    location: String,
}

/// Every resource tagged `ssi:request_id` (`tag:GetResources`, all pages).
async fn tagged_resources(sdk: &aws_config::SdkConfig) -> Result<Vec<Found>, ScanError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let client = aws_sdk_resourcegroupstagging::Client::new(sdk);
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .get_resources()
            .tag_filters(TagFilter::builder().key(REQUEST_ID_TAG).build())
            .resources_per_page(100)
            .set_pagination_token(token.take())
            .send()
            .await
            .map_err(|e| ScanError::Tagging(boxed(e)))?;
        for mapping in out.resource_tag_mapping_list() {
            let Some(arn) = mapping.resource_arn() else { continue };
            let Some(tag) = mapping.tags().iter().find(|t| t.key() == REQUEST_ID_TAG) else {
                continue;
            };
            found.push(Found {
                request_id: tag.value().to_string(),
                location: arn.to_string(),
            });
        }
        match out.pagination_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(found),
        }
    }
}

/// The environment of an engine client: what the runner gives Terraform, nothing else.
fn client_env(cfg: &RunnerConfig) -> BTreeMap<String, String> {
    let mut env = cfg.terraform_env.clone();
    env.entry("PGCONNECT_TIMEOUT".into()).or_insert_with(|| "10".into());
    env.entry("PGDATABASE".into()).or_insert_with(|| "postgres".into());
    env
}

/// Runs an engine client with `env` only and returns its standard output; a failure
/// is reported with the first line of its standard error (the clients print no
/// secret there: the password is in their environment).
async fn client_output(
    engine: &'static str,
    programs: &[&str],
    args: &[&str],
    env: &BTreeMap<String, String>,
) -> Result<String, ScanError> {
    let fail = |problem: String| ScanError::Engine { engine, problem };
    let mut last_missing = None;
    for program in programs {
        let spawned = Command::new(program)
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                last_missing = Some(*program);
                continue;
            }
            Err(e) => return Err(fail(format!("could not start {program}: {e}"))),
        };
        let out = match tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| fail(format!("{program} failed: {e}")))?,
            Err(_) => {
                return Err(fail(format!(
                    "{program} did not answer within {} s",
                    CLIENT_TIMEOUT.as_secs()
                )))
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
            let first: String = first.chars().take(300).collect();
            return Err(fail(format!("{program} failed ({}): {first}", out.status)));
        }
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(fail(format!(
        "{} is not on the PATH the runner gives Terraform",
        last_missing.unwrap_or("the client")
    )))
}

/// `<object>\t<name>` lines of a query, for the names that are a request's.
fn named(engine: &str, output: &str) -> Vec<Found> {
    output
        .lines()
        .filter_map(|line| {
            let (object, name) = line.trim().split_once('\t')?;
            let id = request_id_from_name(name.trim())?;
            Some(Found {
                request_id: id.to_string(),
                location: format!("{engine} {object} {}", name.trim()),
            })
        })
        .collect()
}

/// The request pattern in SQL: `ssi_` and 32 lower-case hex digits.
const NAME_PATTERN: &str = "^ssi_[0-9a-f]{32}$";

async fn postgres_objects(env: &BTreeMap<String, String>) -> Result<Vec<Found>, ScanError> {
    let sql = format!(
        "SELECT 'database', datname FROM pg_database WHERE datname ~ '{NAME_PATTERN}' \
         UNION ALL SELECT 'role', rolname FROM pg_roles WHERE rolname ~ '{NAME_PATTERN}'"
    );
    let out = client_output(
        "postgres",
        &["psql"],
        &["-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", &sql],
        env,
    )
    .await?;
    Ok(named("postgres", &out))
}

async fn mysql_objects(env: &BTreeMap<String, String>) -> Result<Vec<Found>, ScanError> {
    let host = format!("--host={}", env.get("MYSQL_HOST").map_or("127.0.0.1", String::as_str));
    let port = format!("--port={}", env.get("MYSQL_TCP_PORT").map_or("3306", String::as_str));
    let user = format!("--user={}", env.get("MYSQL_USER").map_or("root", String::as_str));
    // BINARY: the pattern is matched case-sensitively, as the modules name in lower case.
    let sql = format!(
        "SELECT 'database', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE BINARY SCHEMA_NAME REGEXP '{NAME_PATTERN}' \
         UNION ALL SELECT DISTINCT 'user', User FROM mysql.user WHERE BINARY User REGEXP '{NAME_PATTERN}'"
    );
    let out = client_output(
        "mysql",
        &["mariadb", "mysql"],
        &[
            "--no-defaults",
            "--protocol=TCP",
            &host,
            &port,
            &user,
            "--connect-timeout=10",
            "--batch",
            "--skip-column-names",
            "-e",
            &sql,
        ],
        env,
    )
    .await?;
    Ok(named("mysql", &out))
}

/// Replies of redis-cli that are errors (it exits 0 on some of them).
const REDIS_ERRORS: &[&str] = &[
    "ERR",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "AUTH failed",
    "Could not connect",
    "(error)",
];

async fn redis_users(env: &BTreeMap<String, String>) -> Result<Vec<Found>, ScanError> {
    let host = env.get("REDIS_HOST").map_or("127.0.0.1", String::as_str);
    let port = env.get("REDIS_PORT").map_or("6379", String::as_str);
    let out = client_output(
        "redis",
        &["redis-cli"],
        &["--no-auth-warning", "-h", host, "-p", port, "ACL", "USERS"],
        env,
    )
    .await?;
    if let Some(line) = out.lines().find(|l| REDIS_ERRORS.iter().any(|e| l.starts_with(e))) {
        let line: String = line.chars().take(300).collect();
        return Err(ScanError::Engine {
            engine: "redis",
            problem: format!("ACL USERS failed: {line}"),
        });
    }
    Ok(out
        .lines()
        .filter_map(|name| {
            let id = request_id_from_name(name.trim())?;
            Some(Found {
                request_id: id.to_string(),
                location: format!("redis user {}", name.trim()),
            })
        })
        .collect())
}

/// The simulated namespaces: `$SSI_K8S_SIM_DIR/<namespace>.yaml`, labelled with their
/// request id.
fn simulated_namespaces(dir: &Path) -> Result<Vec<Found>, ScanError> {
    let io = |e| ScanError::Engine {
        engine: "k8s (simulated)",
        problem: format!("could not read {}: {e}", dir.display()),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path: PathBuf = entry.map_err(io)?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // Removed by a destroy meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        let id = text.lines().find_map(|line| {
            let (_, value) = line.split_once(K8S_REQUEST_ID_LABEL)?;
            let value = value.trim_start_matches(['"', '\'']).trim_start_matches(':');
            Uuid::parse_str(value.trim().trim_matches(['"', '\''])).ok()
        });
        if let Some(id) = id {
            found.push(Found {
                request_id: id.to_string(),
                location: format!("k8s (simulated) namespace {}", path.display()),
            });
        }
    }
    Ok(found)
}

/// The local engines' objects, for the engines whose admin connection is set.
async fn local_engine_objects(cfg: &RunnerConfig, report: &mut Report) -> Result<Vec<Found>, ScanError> {
    let env = client_env(cfg);
    let mut found = Vec::new();
    if env.contains_key("PGHOST") {
        found.extend(postgres_objects(&env).await?);
    } else {
        report.not_checked.push("postgres (PGHOST is not set)".into());
    }
    if env.contains_key("MYSQL_HOST") {
        found.extend(mysql_objects(&env).await?);
    } else {
        report.not_checked.push("mysql (MYSQL_HOST is not set)".into());
    }
    if env.contains_key("REDIS_HOST") {
        found.extend(redis_users(&env).await?);
    } else {
        report.not_checked.push("redis (REDIS_HOST is not set)".into());
    }
    match env.get("SSI_K8S_SIM_DIR") {
        Some(dir) => found.extend(simulated_namespaces(Path::new(dir))?),
        None => report
            .not_checked
            .push("k8s_namespace (simulated; SSI_K8S_SIM_DIR is not set)".into()),
    }
    Ok(found)
}

/// The status of each request (`None`: not in the table), a few reads at a time.
async fn statuses(store: &Store, ids: BTreeSet<Uuid>) -> Result<HashMap<Uuid, Option<RequestStatus>>, ScanError> {
    let mut known = HashMap::new();
    let ids: Vec<Uuid> = ids.into_iter().collect();
    for chunk in ids.chunks(LOOKUPS_AT_ONCE) {
        let mut reads = JoinSet::new();
        for id in chunk.iter().copied() {
            let store = store.clone();
            reads.spawn(async move { (id, store.get_request(id).await) });
        }
        while let Some(read) = reads.join_next().await {
            // A lookup task only panics if the store does; say so as a store error.
            let (id, request) = read.map_err(|e| StoreError::Sdk(Box::new(e)))?;
            known.insert(id, request?.map(|r| r.status));
        }
    }
    Ok(known)
}

/// The `ready` and `deleting` requests (their status partitions, all pages).
async fn requests_that_need_state(store: &Store) -> Result<Vec<(Uuid, RequestStatus)>, ScanError> {
    let mut requests = Vec::new();
    for status in [RequestStatus::Ready, RequestStatus::Deleting] {
        let mut start = None;
        loop {
            let (page, next) = store
                .list_requests(RequestList::Status(status), None, 100, start)
                .await?;
            requests.extend(page.into_iter().map(|r| (r.id, r.status)));
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    Ok(requests)
}

/// Scans the state backend, the targets and the table, and lists every orphan.
/// Read-only. Fails (rather than report "clean") when something that is configured
/// cannot be read; what is not configured is listed in [`Report::not_checked`].
pub async fn scan(cfg: &RunnerConfig, store: &Store) -> Result<Report, ScanError> {
    let mut report = Report::default();
    let uses_aws = cfg.target == Target::Aws || cfg.aws_endpoint.is_some();
    // Cheap to build: nothing is asked of AWS until a client sends a request.
    let sdk = aws_config(cfg).await;

    // The requests first, the states after: a request becomes ready only once its
    // state is written, so a request read as ready always finds its state.
    let need_state = requests_that_need_state(store).await?;
    let states = match &cfg.state {
        StateBackend::Local { dir } => local_states(dir).await?,
        StateBackend::S3 { bucket, .. } => s3_states(&sdk, cfg, bucket).await?,
    };

    let mut resources = Vec::new();
    if cfg.target == Target::Local {
        resources.extend(local_engine_objects(cfg, &mut report).await?);
    }
    if uses_aws {
        resources.extend(tagged_resources(&sdk).await?);
    } else {
        report
            .not_checked
            .push("s3_bucket, sqs_queue (AWS_ENDPOINT_URL is not set: no moto)".into());
    }

    let mut ids: BTreeSet<Uuid> = states
        .iter()
        .filter(|(_, s)| s.resources > 0)
        .map(|(id, _)| *id)
        .collect();
    ids.extend(resources.iter().filter_map(|r| Uuid::parse_str(&r.request_id).ok()));
    let known = statuses(store, ids).await?;
    let status_of = |id: &Uuid| known.get(id).copied().flatten();

    for (id, state) in &states {
        if state.resources > 0 && is_dead(status_of(id)) {
            report.orphans.push(Orphan {
                kind: OrphanKind::StateWithoutRequest,
                request_id: id.to_string(),
                location: state.location.clone(),
                status: status_of(id),
            });
        }
    }
    for found in resources {
        let status = Uuid::parse_str(&found.request_id).ok().and_then(|id| status_of(&id));
        if is_dead(status) {
            report.orphans.push(Orphan {
                kind: OrphanKind::ResourceWithoutRequest,
                request_id: found.request_id,
                location: found.location,
                status,
            });
        }
    }
    for (id, status) in need_state {
        match states.get(&id) {
            Some(state) if state.resources > 0 => {}
            state => report.orphans.push(Orphan {
                kind: OrphanKind::RequestWithoutState,
                request_id: id.to_string(),
                location: match state {
                    Some(state) => format!("{} (empty)", state.location),
                    None => format!("{} (missing)", expected_state(cfg, id)),
                },
                status: Some(status),
            }),
        }
    }
    report
        .orphans
        .sort_by(|a, b| (a.kind, &a.request_id, &a.location).cmp(&(b.kind, &b.request_id, &b.location)));
    Ok(report)
}

/// Where a request's state would be.
fn expected_state(cfg: &RunnerConfig, id: Uuid) -> String {
    match &cfg.state {
        StateBackend::Local { dir } => local_state_dir(dir, id).join(STATE_FILE).display().to_string(),
        StateBackend::S3 { bucket, .. } => format!("s3://{bucket}/{S3_STATE_PREFIX}{id}/{STATE_FILE}"),
    }
}

/// The report as text: one tab-separated line per finding (kind, request id, where,
/// status), then a summary line.
pub fn render_text(report: &Report) -> String {
    let mut text = String::new();
    for o in &report.orphans {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            o.kind.as_str(),
            o.request_id,
            o.location,
            o.status_str()
        ));
    }
    let count = |kind| report.orphans.iter().filter(|o| o.kind == kind).count();
    if report.orphans.is_empty() {
        text.push_str("no orphans found\n");
    } else {
        text.push_str(&format!(
            "{} orphan(s): {} state(s) without a live request, {} resource(s) without a live request, {} request(s) without state\n",
            report.orphans.len(),
            count(OrphanKind::StateWithoutRequest),
            count(OrphanKind::ResourceWithoutRequest),
            count(OrphanKind::RequestWithoutState),
        ));
    }
    text
}

/// The report as a JSON array of findings.
pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(&report.orphans).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_modules_names_carry_a_request_id() {
        let id = Uuid::new_v4();
        assert_eq!(request_id_from_name(&format!("ssi_{}", id.simple())), Some(id));
        for name in [
            "postgres".to_string(),
            "ssi_admin".into(),
            format!("ssi_{}", id.simple().to_string().to_uppercase()),
            format!("ssi_{}x", id.simple()),
            format!("ssi_{id}"),
            "ssi_".into(),
        ] {
            assert_eq!(request_id_from_name(&name), None, "{name}");
        }
    }

    #[test]
    fn only_deleted_rejected_cancelled_and_unknown_requests_are_dead() {
        for status in RequestStatus::ALL {
            let dead = matches!(
                status,
                RequestStatus::Deleted | RequestStatus::Rejected | RequestStatus::Cancelled
            );
            assert_eq!(is_dead(Some(status)), dead, "{status:?}");
        }
        assert!(is_dead(None));
    }

    #[test]
    fn a_state_is_counted_without_keeping_its_secrets() {
        let state = br#"{"version":4,"outputs":{"password":{"value":"s3cret","sensitive":true}},
            "resources":[{"type":"null_resource","instances":[{"attributes":{"triggers":{}}}]}]}"#;
        assert_eq!(resources_in("x", state).unwrap(), 1);
        assert_eq!(resources_in("x", br#"{"version":4,"resources":[]}"#).unwrap(), 0);
        assert_eq!(resources_in("x", b"").unwrap(), 0);
        let err = resources_in("the/path", b"{not json").unwrap_err();
        assert!(err.to_string().contains("the/path"));
    }

    #[test]
    fn engine_output_lines_become_findings_only_for_request_names() {
        let id = Uuid::new_v4();
        let out = format!(
            "database\tssi_{}\nrole\tssi_admin\nrole\tssi_{}\n\n",
            id.simple(),
            id.simple()
        );
        let found = named("postgres", &out);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.request_id == id.to_string()));
        assert_eq!(found[1].location, format!("postgres role ssi_{}", id.simple()));
    }

    #[test]
    fn the_text_report_has_a_line_per_finding_and_a_summary() {
        let report = Report {
            orphans: vec![Orphan {
                kind: OrphanKind::RequestWithoutState,
                request_id: "r".into(),
                location: "/s/r/terraform.tfstate (missing)".into(),
                status: Some(RequestStatus::Ready),
            }],
            not_checked: vec![],
        };
        let text = render_text(&report);
        assert!(text.starts_with("request_without_state\tr\t/s/r/terraform.tfstate (missing)\tready\n"));
        assert!(text.contains("1 orphan(s)"));
        let json: serde_json::Value = serde_json::from_str(&render_json(&report)).unwrap();
        assert_eq!(json[0]["kind"], "request_without_state");
        assert_eq!(json[0]["status"], "ready");
        assert_eq!(render_text(&Report::default()), "no orphans found\n");
    }

    #[test]
    fn a_simulated_namespace_names_its_request() {
        let dir = std::env::temp_dir().join(format!("ssi-k8s-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let id = Uuid::new_v4();
        std::fs::write(
            dir.join("app-1234abcd.yaml"),
            format!("\"apiVersion\": \"v1\"\n\"metadata\":\n  \"labels\":\n    \"ssi/request_id\": \"{id}\"\n"),
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "ssi/request_id: nope").unwrap();
        let found = simulated_namespaces(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].request_id, id.to_string());
    }
}
