//! The provisioning harness: a world with an admin and a team member, runners on the
//! test's own table and directories, and helpers to drive a request through the
//! pipeline and look at what it left (the engines, the state, the table).

use super::{TestApp, TestUser};
use aws_sdk_dynamodb::types::AttributeValue;
use runner::{config::passed_to_terraform, worker::Runner, RunnerConfig};
use serde_json::{json, Value};
use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::sync::watch;
use uuid::Uuid;

pub const REQUESTS: &str = "/api/v1/requests";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository")
        .to_path_buf()
}

pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test`, which installs Terraform and starts the engines")
    })
}

/// One test's provisioning world: the API, an admin, a member of a team, and private
/// directories for Terraform's working directories and state.
pub struct World {
    pub app: TestApp,
    pub admin: TestUser,
    pub member: TestUser,
    pub team: String,
    pub root: PathBuf,
    /// The runners' vault: the admin key pair of the environment, which may make data
    /// keys (the app's own vault may only decrypt, as the API's role in AWS).
    pub sealer: shared::vault::Vault,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let member = app.user().await;
    let team = app
        .team(&admin, &format!("team {}", &Uuid::new_v4().simple().to_string()[..8]))
        .await;
    app.add_member(&admin, &team, &member).await.expect(200);
    let root = std::env::temp_dir().join(format!("ssi-provisioning-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&root).expect("test directory");
    let kms = shared::vault::kms_client("us-east-1", std::env::var("KMS_ENDPOINT").ok().as_deref(), None).await;
    let sealer = shared::vault::Vault::new(kms, required_env("KMS_KEY_ID"));
    World {
        app,
        admin,
        member,
        team,
        root,
        sealer,
    }
}

/// The settings of a test's runner, as `RunnerConfig::from_env` would read them.
pub fn settings(w: &World, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = [
        ("TABLE_NAME", w.app.table.clone()),
        ("DYNAMODB_ENDPOINT", super::endpoint()),
        ("RUNNER_TARGET", "local".into()),
        (
            "RUNNER_MODULES_DIR",
            repo_root().join("infra/terraform/modules").display().to_string(),
        ),
        ("RUNNER_WORK_DIR", w.root.join("work").display().to_string()),
        ("RUNNER_STATE_DIR", w.root.join("state").display().to_string()),
        ("TF_PLUGIN_DIR", required_env("TF_PLUGIN_DIR")),
        ("TERRAFORM_BIN", required_env("TERRAFORM_BIN")),
        ("RUNNER_CONCURRENCY", "3".into()),
        ("RUNNER_LEASE_SECS", "6".into()),
        ("RUNNER_POLL_MS", "100".into()),
        ("RUNNER_COMMAND_TIMEOUT_SECS", "120".into()),
        ("RUNNER_MAX_ATTEMPTS", "1".into()),
        ("RUNNER_RETRY_BACKOFF_SECS", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for name in ["AWS_ENDPOINT_URL", "KMS_ENDPOINT"] {
        if let Ok(value) = std::env::var(name) {
            vars.insert(name.into(), value);
        }
    }
    vars.insert("KMS_KEY_ID".into(), required_env("KMS_KEY_ID"));
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.to_string());
    }
    vars
}

/// A runner with `settings`; Terraform's environment is the process's (the engines
/// `make test` started) with `tf_overrides` on top.
pub fn runner(w: &World, overrides: &[(&str, &str)], tf_overrides: &[(&str, &str)]) -> Runner {
    let vars = settings(w, overrides);
    let mut cfg = RunnerConfig::from_lookup(|k| vars.get(k).cloned()).expect("runner config");
    cfg.terraform_env = std::env::vars().filter(|(k, _)| passed_to_terraform(k)).collect();
    for (k, v) in tf_overrides {
        cfg.terraform_env.insert(k.to_string(), v.to_string());
    }
    Runner::new(cfg, w.app.app.store.clone(), w.sealer.clone())
}

/// A worker loop running in the background until stopped (or dropped).
pub struct Worker {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Worker {
    pub fn start(runner: Runner) -> Self {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(async move { runner.work(rx).await });
        Self { stop, task: Some(task) }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Submits a request as the member; returns its id.
pub async fn submit(w: &World, resource_type: &str, name: &str, parameters: Value) -> String {
    w.app
        .post(
            REQUESTS,
            Some(&w.member.token),
            json!({ "resource_type": resource_type, "name": name, "parameters": parameters, "justification": "tests" }),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string()
}

pub async fn approve(w: &World, id: &str) {
    w.app
        .post(&format!("{REQUESTS}/{id}/approve"), Some(&w.admin.token), json!({}))
        .await
        .expect(200);
}

pub async fn get(w: &World, id: &str) -> Value {
    w.app
        .get(&format!("{REQUESTS}/{id}"), Some(&w.admin.token))
        .await
        .expect(200)
        .json()
}

/// Polls the request until it reaches one of `statuses`.
pub async fn wait_for(w: &World, id: &str, statuses: &[&str], within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let request = get(w, id).await;
        if statuses.contains(&request["status"].as_str().unwrap_or_default()) {
            return request;
        }
        assert!(
            started.elapsed() < within,
            "request {id} did not become {statuses:?} within {within:?}: {request}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn logs(w: &World, id: &str) -> Vec<Value> {
    w.app
        .get(&format!("{REQUESTS}/{id}/logs?limit=100"), Some(&w.admin.token))
        .await
        .expect(200)
        .json()["items"]
        .as_array()
        .expect("items")
        .clone()
}

/// The request's Terraform state (treated as secret: it holds the sensitive outputs).
pub fn state(w: &World, id: &str) -> Value {
    let path = w.root.join("state").join(id).join("terraform.tfstate");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("state {}: {e}", path.display()));
    serde_json::from_str(&text).expect("state is JSON")
}

/// A sensitive output's value, read from the state (the only place it is kept until
/// the credentials issue delivers it).
pub fn secret_output(w: &World, id: &str, name: &str) -> String {
    state(w, id)["outputs"][name]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no output {name} in the state"))
        .to_string()
}

/// `psql` as the engine's admin (the connection comes from the environment, like the
/// runner's; nothing secret is on the command line).
pub fn psql_admin(sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args(["-X", "-tA", "-d", "postgres", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Connects to `database` as `user` with `password` (given through the environment).
pub fn psql_as(user: &str, password: &str, database: &str) -> std::process::Output {
    std::process::Command::new("psql")
        .args(["-X", "-tA", "-U", user, "-d", database, "-c", "SELECT current_user"])
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs")
}

/// Every item of the test's table, as text (to search it for secrets).
pub async fn table_text(app: &TestApp) -> String {
    let mut text = String::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let out = app
            .app
            .store
            .client()
            .scan()
            .table_name(&app.table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan");
        for item in out.items() {
            text.push_str(&format!("{item:?}\n"));
        }
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return text,
        }
    }
}

pub fn history_steps(request: &Value) -> Vec<(String, String, String)> {
    request["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|s| {
            (
                s["from"].as_str().unwrap_or("-").to_string(),
                s["to"].as_str().unwrap_or("-").to_string(),
                s["by"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

/// A port on 127.0.0.1 where nothing listens (an engine that is down).
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

pub async fn read_credentials(w: &World, id: &str, token: Option<&str>) -> super::Reply {
    w.app.get(&format!("{REQUESTS}/{id}/credentials"), token).await
}

/// Provisions a request of the member's and waits until it is ready.
pub async fn ready_request(w: &World, resource_type: &str, name: &str) -> String {
    let worker = Worker::start(runner(w, &[], &[]));
    let id = submit(w, resource_type, name, json!({})).await;
    approve(w, &id).await;
    let ready = wait_for(w, &id, &["ready", "failed"], Duration::from_secs(90)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    worker.stop().await;
    id
}

/// The body of a test binary's `child_worker_process`: a worker over the runner
/// settings in the environment, until killed. Returns at once unless
/// `SSI_CHILD_WORKER=1` (so running the ignored tests by hand does nothing).
pub async fn child_worker_main() {
    if std::env::var("SSI_CHILD_WORKER").as_deref() != Ok("1") {
        return;
    }
    std::env::set_var("RUST_LOG", "debug");
    shared::logging::init();
    let cfg = RunnerConfig::from_env().expect("runner config");
    let (_stop, rx) = watch::channel(false);
    let mut runner = Runner::from_config(cfg).await;
    // With SMTP_PORT in the environment, as `ssi-runner worker` does.
    let get = |name: &str| std::env::var(name).ok();
    if let Some(notifier) = notifier_function::smtp_from_lookup(runner.store().clone(), get).expect("notifier config") {
        runner = runner.with_notifier(notifier);
    }
    runner.work(rx).await;
}

/// Starts this test binary's ignored `child_worker_process` test as a worker process
/// with the runner settings of `w` (and `overrides`).
pub fn spawn_child_worker(w: &World, overrides: &[(&str, &str)]) -> tokio::process::Child {
    tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_worker_process", "--exact", "--ignored", "--nocapture"])
        .env("SSI_CHILD_WORKER", "1")
        .envs(&settings(w, overrides))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the child runner")
}

/// Runs a short Python program with boto3 (from the tools' virtualenv, next to
/// Terraform) against moto, as the admin key of the environment; returns its stdout.
pub fn boto3(program: &str) -> String {
    let python = Path::new(&required_env("TERRAFORM_BIN")).with_file_name("python");
    let out = std::process::Command::new(python)
        .args(["-c", program])
        .env("MOTO_ENDPOINT", required_env("AWS_ENDPOINT_URL"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
