//! One run of a claimed job: render the working directory, then `init`, `plan -out`,
//! `apply` of that plan and `output -json`, each logged (redacted) as it ends. A
//! destroy plans with `-destroy` and has no outputs to read.

use crate::{
    config::RunnerConfig,
    secrets::{self, Redactor},
    terraform::{self, CommandRun, GRACE},
    worker::now,
};
use serde_json::{Map, Value};
use shared::{
    model::{JobLog, JobOperation},
    store::{ClaimedJob, Store},
    vault::OpenCredentials,
};
use std::{fs, path::Path};
use tokio::sync::watch;

/// The longest failure summary kept on the request.
pub const MAX_SUMMARY_CHARS: usize = 500;

/// How a run ended.
#[derive(Debug)]
pub enum Execution {
    /// Applied: the module's non-secret outputs, and every output (the credentials
    /// the owning team receives, sealed before they are stored).
    Applied {
        outputs: Map<String, Value>,
        credentials: OpenCredentials,
    },
    /// Destroyed: the state holds nothing any more.
    Destroyed,
    /// Failed, with a short summary that holds no secret.
    Failed(String),
    /// Stopped because the lease was lost or the runner is stopping: another run will
    /// pick the job up, so nothing is recorded as its outcome.
    Cancelled,
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(MAX_SUMMARY_CHARS).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// The outputs of `terraform output -json`: the non-secret ones, and all of them as
/// the credentials; every sensitive value is added to the redactor.
fn split_outputs(raw: &str, redactor: &mut Redactor) -> Result<(Map<String, Value>, OpenCredentials), String> {
    let parsed: Map<String, Value> =
        serde_json::from_str(raw).map_err(|_| "terraform output -json did not print a JSON object".to_string())?;
    let mut outputs = Map::new();
    let mut all = Map::new();
    for (name, output) in parsed {
        let value = output.get("value").cloned().unwrap_or(Value::Null);
        if output.get("sensitive").and_then(Value::as_bool).unwrap_or(false) {
            redactor.add_json(&value);
        } else {
            outputs.insert(name.clone(), value.clone());
        }
        all.insert(name, value);
    }
    Ok((outputs, OpenCredentials::new(all)))
}

/// What the log of the `output` step shows: non-secret values, and only the names of
/// the sensitive ones.
fn outputs_log(raw: &str) -> String {
    let Ok(parsed) = serde_json::from_str::<Map<String, Value>>(raw) else {
        return "(no JSON output)".into();
    };
    parsed
        .iter()
        .map(|(name, o)| {
            if o.get("sensitive").and_then(Value::as_bool).unwrap_or(false) {
                format!("{name} = (sensitive value)")
            } else {
                format!("{name} = {}", o.get("value").cloned().unwrap_or(Value::Null))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Step<'a> {
    cfg: &'a RunnerConfig,
    store: &'a Store,
    claimed: &'a ClaimedJob,
    workdir: &'a Path,
    cancel: watch::Receiver<bool>,
    seq: u32,
}

impl Step<'_> {
    /// Runs one Terraform command; if a killed earlier run left the state locked, the
    /// lock is released (this runner holds the job's lease, so the lock is stale) and
    /// the command runs once more. Logs the redacted output.
    async fn run(&mut self, phase: &str, args: &[&str], redactor: &Redactor) -> std::io::Result<CommandRun> {
        let started_at = now();
        let (tf, env) = (&self.cfg.terraform_bin, &self.cfg.terraform_env);
        let timeout = self.cfg.command_timeout;
        let mut run = terraform::run(tf, env, self.workdir, args, timeout, GRACE, self.cancel.clone()).await?;
        if let Some(lock) = (!run.succeeded())
            .then(|| terraform::stale_lock_id(&run.combined()))
            .flatten()
        {
            tracing::warn!(request_id = %self.claimed.job.request_id, phase, "releasing a stale state lock");
            terraform::run(
                tf,
                env,
                self.workdir,
                &["force-unlock", "-force", &lock],
                timeout,
                GRACE,
                self.cancel.clone(),
            )
            .await?;
            run = terraform::run(tf, env, self.workdir, args, timeout, GRACE, self.cancel.clone()).await?;
        }
        let shown = if phase == "output" && run.succeeded() {
            outputs_log(&run.stdout)
        } else {
            redactor.redact(&run.combined())
        };
        let log = JobLog {
            run: self.claimed.job.runs,
            operation: self.claimed.job.operation,
            attempt: self.claimed.job.attempts,
            seq: self.seq,
            phase: phase.to_string(),
            started_at,
            finished_at: now(),
            exit_code: run.exit_code,
            timed_out: run.timed_out,
            output: shown,
            truncated: run.truncated,
        };
        self.seq += 1;
        if let Err(e) = self.store.put_job_log(self.claimed.job.request_id, &log).await {
            tracing::warn!(request_id = %self.claimed.job.request_id, phase, error = %e, "could not store a job log");
        }
        tracing::info!(
            request_id = %self.claimed.job.request_id,
            attempt = self.claimed.job.attempts,
            phase,
            exit_code = ?run.exit_code,
            timed_out = run.timed_out,
            cancelled = run.cancelled,
            "terraform step finished"
        );
        Ok(run)
    }
}

fn failure(phase: &str, run: &CommandRun, timeout_secs: u64, redactor: &Redactor) -> String {
    if run.timed_out {
        return format!("terraform {phase} timed out after {timeout_secs} s and was stopped");
    }
    let detail = terraform::error_summary(&run.combined())
        .map(|e| redactor.redact(&e))
        .unwrap_or_else(|| format!("exit code {}", run.exit_code.map_or("none".into(), |c| c.to_string())));
    short(&format!("terraform {phase} failed: {detail}"))
}

/// Runs the claimed job once. The working directory (with its variables file and
/// plan) is removed whatever happens; so are the leftovers of an earlier run of the
/// same job that was killed.
pub async fn execute(
    cfg: &RunnerConfig,
    store: &Store,
    claimed: &ClaimedJob,
    cancel: watch::Receiver<bool>,
) -> Execution {
    let job = &claimed.job;
    let parent = cfg.work_dir.join(job.request_id.to_string());
    if let Err(e) = fs::remove_dir_all(&parent) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Execution::Failed(format!("could not clear the working directory: {e}"));
        }
    }
    let password = secrets::generate_password();
    let mut redactor = Redactor::default();
    redactor.add(secrecy::ExposeSecret::expose_secret(&password));
    let workdir = match terraform::render(cfg, job, &parent, Some(&password)) {
        Ok(dir) => dir,
        Err(e) => return Execution::Failed(short(&e.to_string())),
    };
    drop(password);
    let plugin_dir = match cfg.plugin_dir.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            return Execution::Failed(format!(
                "the provider mirror {} does not exist (run the install step)",
                cfg.plugin_dir.display()
            ))
        }
    };
    let plugin_arg = format!("-plugin-dir={}", plugin_dir.display());
    let mut step = Step {
        cfg,
        store,
        claimed,
        workdir: &workdir.path,
        cancel,
        seq: 0,
    };
    let timeout_secs = cfg.command_timeout.as_secs();
    let destroy = job.operation == JobOperation::Destroy;
    let mut plan = vec!["plan", "-input=false", "-no-color", "-lock-timeout=30s", "-out=tfplan"];
    if destroy {
        plan.push("-destroy");
    }
    let phases: [(&str, Vec<&str>); 3] = [
        ("init", vec!["init", "-input=false", "-no-color", &plugin_arg]),
        ("plan", plan),
        (
            "apply",
            vec!["apply", "-input=false", "-no-color", "-lock-timeout=30s", "tfplan"],
        ),
    ];
    for (phase, args) in &phases {
        let run = match step.run(phase, args, &redactor).await {
            Ok(run) => run,
            Err(e) => return Execution::Failed(format!("could not start terraform {phase}: {e}")),
        };
        if run.cancelled {
            return Execution::Cancelled;
        }
        if !run.succeeded() {
            return Execution::Failed(failure(phase, &run, timeout_secs, &redactor));
        }
    }
    if destroy {
        return Execution::Destroyed;
    }
    let run = match step.run("output", &["output", "-json", "-no-color"], &redactor).await {
        Ok(run) => run,
        Err(e) => return Execution::Failed(format!("could not start terraform output: {e}")),
    };
    if run.cancelled {
        return Execution::Cancelled;
    }
    if !run.succeeded() {
        return Execution::Failed(failure("output", &run, timeout_secs, &redactor));
    }
    match split_outputs(&run.stdout, &mut redactor) {
        Ok((outputs, credentials)) => Execution::Applied { outputs, credentials },
        Err(e) => Execution::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = r#"{
        "host": {"sensitive": false, "type": "string", "value": "127.0.0.1"},
        "port": {"sensitive": false, "type": "number", "value": 5432},
        "password": {"sensitive": true, "type": "string", "value": "hunter2hunter2"},
        "uri": {"sensitive": true, "type": "string", "value": "postgresql://u:hunter2hunter2@h/db"}
    }"#;

    #[test]
    fn sensitive_outputs_are_kept_out_and_redacted() {
        let mut redactor = Redactor::default();
        let (outputs, credentials) = split_outputs(OUTPUT, &mut redactor).unwrap();
        assert_eq!(outputs.keys().collect::<Vec<_>>(), ["host", "port"]);
        assert_eq!(credentials.expose()["password"], "hunter2hunter2");
        assert_eq!(credentials.expose().len(), 4);
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert_eq!(outputs["port"], 5432);
        assert_eq!(redactor.redact("pw hunter2hunter2"), "pw (redacted)");
        let log = outputs_log(OUTPUT);
        assert!(!log.contains("hunter2"), "{log}");
        assert!(log.contains("password = (sensitive value)"), "{log}");
        assert!(log.contains("host = \"127.0.0.1\""), "{log}");
    }

    #[test]
    fn summaries_are_short() {
        let long = "x".repeat(2 * MAX_SUMMARY_CHARS);
        assert!(short(&long).chars().count() <= MAX_SUMMARY_CHARS + 1);
        assert_eq!(short("ok"), "ok");
    }
}
