//! Terraform for one run of a job: the working directory it renders (module files,
//! provider and backend configuration, a 0600 variables file) and removes afterwards,
//! and the commands it runs there, each with a timeout, in a process group of its
//! own with a minimal environment, and stopped with that whole group.

use crate::config::{RunnerConfig, StateBackend, Target};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use shared::model::ProvisioningJob;
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::{io::AsyncReadExt, process::Command, sync::watch};

/// How long Terraform gets after SIGINT (it then releases its state lock and writes
/// its state) before the group is killed.
pub const GRACE: Duration = Duration::from_secs(15);

/// At most this much of each output stream is kept (the end of it: that is where
/// Terraform's errors are).
pub const MAX_OUTPUT_BYTES: usize = 128 * 1024;

/// For the local engine modules: where the engine is, from the runner's environment.
const LOCAL_ENGINES: &[(&str, &str, &str)] = &[
    ("postgres", "PGHOST", "PGPORT"),
    ("mysql", "MYSQL_HOST", "MYSQL_TCP_PORT"),
    ("redis", "REDIS_HOST", "REDIS_PORT"),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("resource type `{0}` is not in the catalog")]
    UnknownType(String),
    #[error("no Terraform module for `{0}` (looked in {1})")]
    NoModule(String, String),
    #[error("the local engine for `{0}` is not configured: set {1}")]
    EngineNotConfigured(String, &'static str),
    #[error("AWS_ENDPOINT_URL must be set for `{0}` on the local target (moto)")]
    NoAwsEndpoint(String),
    #[error("could not prepare the working directory")]
    Io(#[from] std::io::Error),
}

/// A rendered working directory; removed (with the variables file, the plan and the
/// provider copies) when dropped.
pub struct WorkDir {
    pub path: PathBuf,
    /// Variables the module declares.
    pub variables: BTreeSet<String>,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove a working directory");
            }
        }
    }
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// The names of the `variable "…"` blocks in a module's files.
pub fn declared_variables(module: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(module)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tf") {
            for line in fs::read_to_string(&path)?.lines() {
                let Some(rest) = line.trim_start().strip_prefix("variable") else {
                    continue;
                };
                let mut parts = rest.trim_start().splitn(3, '"');
                if let (Some(""), Some(name)) = (parts.next(), parts.next()) {
                    names.insert(name.to_string());
                }
            }
        }
    }
    Ok(names)
}

/// The module a job uses on the configured target: `<type>/<target>/`, or for the
/// local target the AWS module itself when the type has no local one (S3 and SQS are
/// applied against moto as they are).
pub fn module_dir(cfg: &RunnerConfig, resource_type: &str) -> Result<PathBuf, RenderError> {
    if shared::catalog::find(resource_type).is_none() {
        return Err(RenderError::UnknownType(resource_type.to_string()));
    }
    let base = cfg.modules_dir.join(resource_type);
    let candidates = match cfg.target {
        Target::Aws => vec![base.join("aws")],
        Target::Local => vec![base.join("local"), base.join("aws")],
    };
    candidates
        .into_iter()
        .find(|dir| dir.is_dir())
        .ok_or_else(|| RenderError::NoModule(resource_type.to_string(), base.display().to_string()))
}

/// The state directory of a request on the local backend.
pub fn local_state_dir(dir: &Path, request_id: uuid::Uuid) -> PathBuf {
    dir.join(request_id.to_string())
}

fn uses_aws_provider(module: &Path) -> std::io::Result<bool> {
    for entry in fs::read_dir(module)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tf") && fs::read_to_string(&path)?.contains("hashicorp/aws") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn provider_config(cfg: &RunnerConfig, job: &ProvisioningJob) -> Result<Value, RenderError> {
    Ok(match cfg.target {
        // No default_tags: every module tags its resources itself (the AWS provider
        // refuses tags that repeat its default_tags).
        Target::Aws => json!({ "provider": { "aws": { "region": cfg.region } } }),
        Target::Local => {
            let endpoint = cfg
                .aws_endpoint
                .as_deref()
                .ok_or_else(|| RenderError::NoAwsEndpoint(job.resource_type.clone()))?;
            // moto: credentials come from the environment (any value works), and
            // everything that would ask the real AWS is skipped.
            json!({ "provider": { "aws": {
                "region": cfg.region,
                "skip_credentials_validation": true,
                "skip_requesting_account_id": true,
                "skip_metadata_api_check": true,
                "skip_get_ec2_platforms": true,
                "skip_region_validation": true,
                "s3_force_path_style": true,
                "endpoints": [{ "s3": endpoint, "sqs": endpoint, "iam": endpoint, "sts": endpoint }],
            }}})
        }
    })
}

fn backend_config(cfg: &RunnerConfig, job: &ProvisioningJob) -> Result<Value, RenderError> {
    Ok(match &cfg.state {
        StateBackend::Local { dir } => {
            let state_dir = local_state_dir(&absolute(dir)?, job.request_id);
            private_dir(&state_dir)?;
            json!({ "terraform": { "backend": { "local": {
                "path": state_dir.join("terraform.tfstate").display().to_string(),
            }}}})
        }
        StateBackend::S3 {
            bucket,
            lock_table,
            kms_key_id,
        } => {
            let mut s3 = json!({
                "bucket": bucket,
                "key": format!("requests/{}/terraform.tfstate", job.request_id),
                "region": cfg.region,
                "encrypt": true,
                "dynamodb_table": lock_table,
            });
            if let Some(key) = kms_key_id {
                s3["kms_key_id"] = json!(key);
            }
            json!({ "terraform": { "backend": { "s3": s3 } } })
        }
    })
}

/// The module's variables: the request's validated parameters, its identity, the
/// generated password and, for local engines, where the engine is.
fn variables(
    job: &ProvisioningJob,
    declared: &BTreeSet<String>,
    password: Option<&SecretString>,
    env: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, RenderError> {
    let mut vars = Map::new();
    if let Value::Object(params) = &job.parameters {
        for (k, v) in params {
            if declared.contains(k) {
                vars.insert(k.clone(), v.clone());
            }
        }
    }
    vars.insert("request_id".into(), json!(job.request_id.to_string()));
    vars.insert("team_id".into(), json!(job.team_id.to_string()));
    vars.insert("name".into(), json!(job.name));
    if let (true, Some(password)) = (declared.contains("password"), password) {
        vars.insert("password".into(), json!(password.expose_secret()));
    }
    if declared.contains("host") {
        let (_, host_var, port_var) = LOCAL_ENGINES
            .iter()
            .find(|(t, _, _)| *t == job.resource_type)
            .ok_or_else(|| RenderError::EngineNotConfigured(job.resource_type.clone(), "a local engine"))?;
        let host = env
            .get(*host_var)
            .ok_or_else(|| RenderError::EngineNotConfigured(job.resource_type.clone(), host_var))?;
        let port = env
            .get(*port_var)
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| RenderError::EngineNotConfigured(job.resource_type.clone(), port_var))?;
        vars.insert("host".into(), json!(host));
        vars.insert("port".into(), json!(port));
    }
    vars.retain(|k, _| declared.contains(k));
    Ok(vars)
}

/// Renders a fresh working directory for one run of `job` under `parent` (which is
/// created mode 0700).
pub fn render(
    cfg: &RunnerConfig,
    job: &ProvisioningJob,
    parent: &Path,
    password: Option<&SecretString>,
) -> Result<WorkDir, RenderError> {
    let module = module_dir(cfg, &job.resource_type)?;
    let declared = declared_variables(&module)?;
    private_dir(parent)?;
    let path = parent.join(format!("run-{}", uuid::Uuid::new_v4().simple()));
    private_dir(&path)?;
    // From here on the directory is removed on every exit path.
    let dir = WorkDir {
        path,
        variables: declared,
    };
    for entry in fs::read_dir(&module)? {
        let src = entry?.path();
        if src.extension().is_some_and(|e| e == "tf" || e == "sh" || e == "sql") && src.is_file() {
            if let Some(name) = src.file_name() {
                fs::copy(&src, dir.path.join(name))?;
            }
        }
    }
    if uses_aws_provider(&module)? {
        write_private(
            &dir.path.join("provider.tf.json"),
            &provider_config(cfg, job)?.to_string(),
        )?;
    }
    write_private(
        &dir.path.join("backend.tf.json"),
        &backend_config(cfg, job)?.to_string(),
    )?;
    let vars = variables(job, &dir.variables, password, &cfg.terraform_env)?;
    write_private(
        &dir.path.join("terraform.tfvars.json"),
        &Value::Object(vars).to_string(),
    )?;
    Ok(dir)
}

/// How one command ended. `output` is raw (unredacted): redact before keeping it.
#[derive(Debug)]
pub struct CommandRun {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Stopped because the runner lost its lease or is shutting down.
    pub cancelled: bool,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

impl CommandRun {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }

    pub fn combined(&self) -> String {
        match (self.stdout.is_empty(), self.stderr.is_empty()) {
            (_, true) => self.stdout.clone(),
            (true, false) => self.stderr.clone(),
            (false, false) => format!("{}\n{}", self.stdout, self.stderr),
        }
    }
}

/// The environment of a Terraform process: `base` (what the runner passes on, see
/// [`crate::config::passed_to_terraform`]) plus Terraform's automation settings.
fn terraform_env(base: &BTreeMap<String, String>, workdir: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = base.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.extend(
        [
            ("TF_IN_AUTOMATION", "1"),
            ("TF_INPUT", "0"),
            ("CHECKPOINT_DISABLE", "1"),
            // No user configuration, no plugin cache: the run is self-contained.
            ("TF_CLI_CONFIG_FILE", "/dev/null"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env.push(("HOME".into(), workdir.display().to_string()));
    env
}

#[allow(unsafe_code)]
fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: killpg only sends a signal; `pgid` is the group of a child this runner
    // started with `process_group(0)`, so no other process group is touched.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

async fn read_capped(mut reader: impl tokio::io::AsyncRead + Unpin) -> (String, bool) {
    let mut kept: Vec<u8> = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * MAX_OUTPUT_BYTES {
                    kept.drain(..kept.len() - MAX_OUTPUT_BYTES);
                    truncated = true;
                }
            }
        }
    }
    if kept.len() > MAX_OUTPUT_BYTES {
        kept.drain(..kept.len() - MAX_OUTPUT_BYTES);
        truncated = true;
    }
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

/// Runs `terraform <args>` in `workdir`. Stops it (SIGINT to its process group, then
/// SIGKILL after `grace`, normally [`GRACE`]) when it outlives `timeout` or when
/// `cancel` turns true.
pub async fn run(
    terraform: &Path,
    env: &BTreeMap<String, String>,
    workdir: &Path,
    args: &[&str],
    timeout: Duration,
    grace: Duration,
    mut cancel: watch::Receiver<bool>,
) -> std::io::Result<CommandRun> {
    let mut command = Command::new(terraform);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl, which is async-signal-safe. It makes the kernel kill Terraform when the
    // runner dies (a crashed or killed runner must not leave an apply going on that
    // nobody watches; the job's lease expires and another run converges instead).
    // The signal follows the runner's tokio worker thread, which lives as long as
    // the runtime.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command
        .args(args)
        .current_dir(workdir)
        .env_clear()
        .envs(terraform_env(env, workdir))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let stdout = tokio::spawn(read_capped(child.stdout.take().expect("piped stdout")));
    let stderr = tokio::spawn(read_capped(child.stderr.take().expect("piped stderr")));

    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let (mut timed_out, mut cancelled, mut cancel_open) = (false, false, true);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            () = &mut deadline => timed_out = true,
            changed = cancel.changed(), if cancel_open => match changed {
                Ok(()) if *cancel.borrow() => cancelled = true,
                Ok(()) => continue,
                // Nobody can cancel any more: wait for the command or its timeout.
                Err(_) => {
                    cancel_open = false;
                    continue;
                }
            },
        }
        // Timed out or cancelled: stop the whole group, gently first.
        let Some(pgid) = pgid else { break child.wait().await? };
        signal_group(pgid, libc::SIGINT);
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => break status?,
            Err(_) => {
                signal_group(pgid, libc::SIGKILL);
                break child.wait().await?;
            }
        }
    };
    // Whatever the command left running in its group (a provider, a local-exec
    // child) does not outlive it.
    if let Some(pgid) = pgid {
        signal_group(pgid, libc::SIGKILL);
    }
    let (stdout, t1) = stdout.await.unwrap_or_default();
    let (stderr, t2) = stderr.await.unwrap_or_default();
    Ok(CommandRun {
        exit_code: if timed_out || cancelled { None } else { status.code() },
        timed_out,
        cancelled,
        stdout,
        stderr,
        truncated: t1 || t2,
    })
}

/// The lock id in Terraform's "Error acquiring the state lock" message, when a
/// previous run that was killed left its lock behind (the S3 backend's DynamoDB lock;
/// the local backend's OS lock goes with the process).
pub fn stale_lock_id(output: &str) -> Option<String> {
    if !output.contains("Error acquiring the state lock") {
        return None;
    }
    output.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("ID:")?.trim();
        let ok = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        ok.then(|| rest.to_string())
    })
}

/// The first of Terraform's `Error:` lines (with the one after it, which usually says
/// what failed), for a short summary.
pub fn error_summary(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("Error:") || l.starts_with("│ Error:"))?;
    let mut summary = lines[i].trim_start_matches("│ ").to_string();
    if let Some(next) = lines
        .iter()
        .skip(i + 1)
        .map(|l| l.trim_start_matches('│').trim())
        .find(|l| !l.is_empty())
    {
        summary.push_str(" — ");
        summary.push_str(next);
    }
    Some(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_id_of_a_stale_lock() {
        let out = "\nError: Error acquiring the state lock\n\nLock Info:\n  ID:        8f3a0c2e-1b2d-4e5f-9a8b-7c6d5e4f3a2b\n  Path:      b/k\n";
        assert_eq!(
            stale_lock_id(out).as_deref(),
            Some("8f3a0c2e-1b2d-4e5f-9a8b-7c6d5e4f3a2b")
        );
        assert_eq!(stale_lock_id("Error: something else\n  ID: 1234"), None);
        assert_eq!(stale_lock_id("Error acquiring the state lock\n ID: $(rm -rf /)"), None);
    }

    #[test]
    fn summarises_the_first_error() {
        let out =
            "null_resource.db: Creating...\n╷\n│ Error: local-exec provisioner error\n│ \n│   with null_resource.db,\n";
        assert_eq!(
            error_summary(out).as_deref(),
            Some("Error: local-exec provisioner error — with null_resource.db,")
        );
        assert_eq!(error_summary("all good"), None);
    }

    #[test]
    fn reads_variable_names_from_a_module() {
        let dir = std::env::temp_dir().join(format!("ssi-vars-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("variables.tf"),
            "variable \"name\" {\n  type = string\n}\nvariable  \"storage_gb\" {}\n# variable \"no\"\n",
        )
        .unwrap();
        fs::write(dir.join("notes.txt"), "variable \"ignored\" {}").unwrap();
        let names = declared_variables(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["name", "storage_gb"]);
    }

    #[tokio::test]
    async fn a_command_that_outlives_its_timeout_is_stopped_with_its_group() {
        let dir = std::env::temp_dir();
        let (_tx, rx) = watch::channel(false);
        // `sh -c` stands in for Terraform: it starts a child of its own that ignores
        // SIGINT, as a provider or a local-exec could.
        let script = Path::new("/bin/sh");
        let started = std::time::Instant::now();
        let run = run(
            script,
            &BTreeMap::new(),
            &dir,
            &["-c", "trap '' INT; sleep 30 & wait"],
            Duration::from_millis(300),
            Duration::from_millis(300),
            rx,
        )
        .await
        .unwrap();
        assert!(run.timed_out);
        assert_eq!(run.exit_code, None);
        assert!(started.elapsed() < Duration::from_secs(30), "the group was not killed");
    }

    #[tokio::test]
    async fn a_command_is_stopped_when_cancelled() {
        let dir = std::env::temp_dir();
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            run(
                Path::new("/bin/sh"),
                &BTreeMap::new(),
                &dir,
                &["-c", "sleep 30"],
                Duration::from_secs(60),
                GRACE,
                rx,
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(true).unwrap();
        let run = task.await.unwrap().unwrap();
        assert!(run.cancelled);
        assert!(!run.succeeded());
    }

    #[tokio::test]
    async fn a_command_sees_only_the_given_environment() {
        std::env::set_var("SSI_RUNNER_TEST_PRIVATE", "do-not-pass");
        let dir = std::env::temp_dir();
        let (_tx, rx) = watch::channel(false);
        let base = BTreeMap::from([("PGPORT".to_string(), "5999".to_string())]);
        let run = run(
            Path::new("/usr/bin/env"),
            &base,
            &dir,
            &[],
            Duration::from_secs(10),
            GRACE,
            rx,
        )
        .await
        .unwrap();
        assert!(run.succeeded());
        assert!(!run.stdout.contains("do-not-pass"), "{}", run.stdout);
        assert!(run.stdout.contains("TF_IN_AUTOMATION=1"));
        assert!(run.stdout.contains("PGPORT=5999"));
    }
}
