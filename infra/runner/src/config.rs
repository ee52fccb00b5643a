//! The runner's settings, read once at start from the environment; a bad value stops
//! it with a message naming the variable.

use shared::config::ConfigError;
use std::{collections::BTreeMap, path::PathBuf, time::Duration};

/// Environment variables a Terraform process gets from the runner's environment: the
/// path, and the settings of the targets (AWS credentials, the local engines' admin
/// connection). Nothing else (e.g. the runner's own configuration) reaches Terraform.
pub const PASSED_PREFIXES: &[&str] = &["AWS_", "PG", "MYSQL_", "REDIS", "SSI_K8S_"];
pub const PASSED_NAMES: &[&str] = &["PATH", "TMPDIR", "LANG", "LC_ALL", "TZ"];

/// Whether the runner passes this environment variable on to Terraform.
pub fn passed_to_terraform(name: &str) -> bool {
    PASSED_NAMES.contains(&name) || PASSED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Where the modules are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// AWS itself (RDS, ElastiCache, S3, SQS, EKS).
    Aws,
    /// This machine: local database engines, moto for the AWS APIs, a simulated
    /// Kubernetes namespace.
    Local,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Local => "local",
        }
    }
}

/// Where each request's Terraform state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateBackend {
    /// `<dir>/<request id>/terraform.tfstate`, directories mode 0700.
    Local { dir: PathBuf },
    /// `s3://<bucket>/requests/<request id>/terraform.tfstate`, SSE-KMS, locked in
    /// the DynamoDB table `lock_table`.
    S3 {
        bucket: String,
        lock_table: String,
        kms_key_id: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub table_name: String,
    pub region: String,
    pub dynamodb_endpoint: Option<String>,
    pub target: Target,
    /// `infra/terraform/modules`: `<type>/<target>/` per catalog type.
    pub modules_dir: PathBuf,
    /// Working directories are rendered under here, one per run, and removed after it.
    pub work_dir: PathBuf,
    pub state: StateBackend,
    /// The offline provider mirror for `terraform init -plugin-dir`.
    pub plugin_dir: PathBuf,
    pub terraform_bin: PathBuf,
    /// The AWS API endpoint the AWS provider talks to (moto locally); unset in AWS.
    pub aws_endpoint: Option<String>,
    /// Jobs one worker runs at the same time.
    pub concurrency: usize,
    /// How long a claim holds; renewed every third of it while Terraform runs.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs.
    pub poll: Duration,
    /// The longest one Terraform command may run before it is stopped.
    pub command_timeout: Duration,
    /// Runs of a job before it is given up (`failed`).
    pub max_attempts: u32,
    /// Wait before the second run of a failed job; doubled for each further run.
    pub retry_backoff: Duration,
    /// The KMS key the credentials are sealed under (`KMS_KEY_ID`, required).
    pub kms_key_id: String,
    /// Locally, moto's endpoint for KMS (`KMS_ENDPOINT`).
    pub kms_endpoint: Option<String>,
    /// What Terraform's environment starts from: the [`passed_to_terraform`] part of
    /// the runner's environment.
    pub terraform_env: BTreeMap<String, String>,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| bad(var, format!("`{v}` is not a whole number from {min} to {max}"))),
    }
}

impl RunnerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut cfg = Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))?;
        cfg.terraform_env = std::env::vars().filter(|(k, _)| passed_to_terraform(k)).collect();
        Ok(cfg)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name =
            get("TABLE_NAME").ok_or_else(|| bad("TABLE_NAME", "must be set to the DynamoDB table name"))?;
        let target = match get("RUNNER_TARGET").as_deref() {
            None | Some("local") => Target::Local,
            Some("aws") => Target::Aws,
            Some(other) => return Err(bad("RUNNER_TARGET", format!("`{other}` is neither `local` nor `aws`"))),
        };
        let path = |var: &'static str, default: &str| PathBuf::from(get(var).unwrap_or_else(|| default.to_string()));
        let state = match get("RUNNER_STATE_BUCKET") {
            Some(bucket) => StateBackend::S3 {
                bucket,
                lock_table: get("RUNNER_LOCK_TABLE")
                    .ok_or_else(|| bad("RUNNER_LOCK_TABLE", "must be set with RUNNER_STATE_BUCKET"))?,
                kms_key_id: get("RUNNER_STATE_KMS_KEY"),
            },
            None if target == Target::Aws => {
                return Err(bad("RUNNER_STATE_BUCKET", "must be set when RUNNER_TARGET=aws"));
            }
            None => StateBackend::Local {
                dir: path("RUNNER_STATE_DIR", ".local/terraform/state"),
            },
        };
        Ok(Self {
            table_name,
            region: get("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            dynamodb_endpoint: get("DYNAMODB_ENDPOINT"),
            target,
            modules_dir: path("RUNNER_MODULES_DIR", "infra/terraform/modules"),
            work_dir: path("RUNNER_WORK_DIR", ".local/terraform/work"),
            state,
            plugin_dir: path("TF_PLUGIN_DIR", ".local/terraform/plugins"),
            terraform_bin: path("TERRAFORM_BIN", "terraform"),
            aws_endpoint: get("AWS_ENDPOINT_URL"),
            concurrency: number(&get, "RUNNER_CONCURRENCY", 2, 1, 64)? as usize,
            lease: Duration::from_secs(number(&get, "RUNNER_LEASE_SECS", 120, 3, 3600)?),
            poll: Duration::from_millis(number(&get, "RUNNER_POLL_MS", 2000, 50, 60_000)?),
            command_timeout: Duration::from_secs(number(&get, "RUNNER_COMMAND_TIMEOUT_SECS", 1800, 1, 8 * 3600)?),
            max_attempts: number(&get, "RUNNER_MAX_ATTEMPTS", 3, 1, 20)? as u32,
            retry_backoff: Duration::from_secs(number(&get, "RUNNER_RETRY_BACKOFF_SECS", 30, 0, 3600)?),
            kms_key_id: get("KMS_KEY_ID")
                .ok_or_else(|| bad("KMS_KEY_ID", "must name the KMS key that encrypts credentials"))?,
            kms_endpoint: get("KMS_ENDPOINT"),
            terraform_env: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn defaults_are_local_with_a_local_state() {
        let c = RunnerConfig::from_lookup(lookup(&[("TABLE_NAME", "t"), ("KMS_KEY_ID", "k")])).unwrap();
        assert_eq!(c.target, Target::Local);
        assert_eq!(
            c.state,
            StateBackend::Local {
                dir: ".local/terraform/state".into()
            }
        );
        assert_eq!(c.concurrency, 2);
        assert_eq!(c.max_attempts, 3);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("RUNNER_TARGET", "gcp"),
            ("RUNNER_CONCURRENCY", "0"),
            ("RUNNER_LEASE_SECS", "1"),
            ("RUNNER_MAX_ATTEMPTS", "many"),
        ] {
            let err = RunnerConfig::from_lookup(lookup(&[("TABLE_NAME", "t"), ("KMS_KEY_ID", "k"), (var, value)]))
                .unwrap_err();
            assert_eq!(err.var, var);
        }
        let err = RunnerConfig::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(err.var, "TABLE_NAME");
        let err = RunnerConfig::from_lookup(lookup(&[("TABLE_NAME", "t")])).unwrap_err();
        assert_eq!(err.var, "KMS_KEY_ID");
    }

    #[test]
    fn the_aws_target_needs_a_state_bucket_and_lock_table() {
        let err = RunnerConfig::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("KMS_KEY_ID", "k"),
            ("RUNNER_TARGET", "aws"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "RUNNER_STATE_BUCKET");
        let err = RunnerConfig::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("KMS_KEY_ID", "k"),
            ("RUNNER_TARGET", "aws"),
            ("RUNNER_STATE_BUCKET", "b"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "RUNNER_LOCK_TABLE");
    }
}
