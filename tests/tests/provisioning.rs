//! Provisioning: approval → job → runner → real Terraform → `ready`, against DynamoDB
//! Local, Terraform 1.0.3 with the offline provider mirror, and the local engines
//! (PostgreSQL, MariaDB, Redis) and moto that `make test` starts (scripts/test.sh
//! exports where they are). Kubernetes is the one simulated target (no cluster can
//! run here): its local module writes the namespace manifest to `SSI_K8S_SIM_DIR`.
//!
//! Each test has its own table, its own state and working directories and its own
//! runners, so the tests run in parallel.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::provision::*;
use futures::future::join_all;
use runner::worker::JobResult;
use serde_json::{json, Value};
use shared::store::Claim;
use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, Instant},
};
use tokio::sync::watch;
use uuid::Uuid;

// ---------------------------------------------------------------------------------
// What users see
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_postgres_request_becomes_ready_with_outputs_and_a_real_database() {
    // GIVEN a running worker and a pending postgres request
    let w = world().await;
    let worker = Worker::start(runner(&w, &[], &[]));
    let id = submit(&w, "postgres", "orders-db", json!({})).await;

    // WHEN an admin approves it
    approve(&w, &id).await;

    // THEN within 60 seconds it is ready, with the non-secret outputs
    let ready = wait_for(&w, &id, &["ready", "failed"], Duration::from_secs(60)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let outputs = &ready["outputs"];
    assert_eq!(outputs["host"], required_env("PGHOST"), "{outputs}");
    assert_eq!(
        outputs["port"].as_u64(),
        Some(required_env("PGPORT").parse().unwrap()),
        "{outputs}"
    );
    let database = outputs["database"].as_str().expect("database output").to_string();
    assert!(
        outputs.get("password").is_none() && outputs.get("uri").is_none(),
        "{outputs}"
    );

    // AND the provisioning block tells the attempt and its times
    let p = &ready["provisioning"];
    assert_eq!(p["attempt"], 1, "{p}");
    assert!(
        p["started_at"].as_str().unwrap() <= p["finished_at"].as_str().unwrap(),
        "{p}"
    );
    assert!(p["error"].is_null(), "{p}");

    // AND the system's steps are in the history
    let steps = history_steps(&ready);
    assert_eq!(
        steps[1..],
        [
            ("pending".into(), "approved".into(), w.admin.id.clone()),
            ("approved".into(), "provisioning".into(), "system".into()),
            ("provisioning".into(), "ready".into(), "system".into()),
        ]
    );

    // AND the database really exists on the local PostgreSQL, and its own user can
    // connect to it with the generated password
    assert_eq!(
        psql_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{database}'"
        )),
        "1"
    );
    let user = outputs["username"].as_str().expect("username output");
    let password = secret_output(&w, &id, "password");
    let out = psql_as(user, &password, &database);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // AND the job is finished and no longer indexed for runners
    let job = w
        .app
        .app
        .store
        .get_job(id.parse().unwrap())
        .await
        .unwrap()
        .expect("job");
    assert_eq!(job.status, shared::model::JobStatus::Succeeded);
    assert!(w.app.app.store.due_jobs("9999", 10).await.unwrap().is_empty());
    worker.stop().await;
}

async fn provisions_locally(resource_type: &str, parameters: Value, outputs: &[&str]) -> (World, String, Value) {
    let w = world().await;
    let worker = Worker::start(runner(&w, &[], &[]));
    let id = submit(&w, resource_type, "thing-1", parameters).await;
    approve(&w, &id).await;
    let ready = wait_for(&w, &id, &["ready", "failed"], Duration::from_secs(90)).await;
    assert_eq!(ready["status"], "ready", "{resource_type}: {ready}");
    for name in outputs {
        assert!(
            !ready["outputs"][name].is_null(),
            "{resource_type}: no output {name}: {ready}"
        );
    }
    worker.stop().await;
    (w, id, ready)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_request_is_provisioned_on_the_local_mariadb() {
    let (w, id, ready) = provisions_locally("mysql", json!({}), &["host", "port", "database", "username"]).await;
    let database = ready["outputs"]["database"].as_str().unwrap();
    let password = secret_output(&w, &id, "password");
    let out = std::process::Command::new("mariadb")
        .args([
            "-u",
            ready["outputs"]["username"].as_str().unwrap(),
            "-D",
            database,
            "-e",
            "SELECT 1",
        ])
        .env("MYSQL_PWD", &password)
        .env_remove("MYSQL_USER")
        .output()
        .expect("mariadb client runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_request_is_provisioned_on_the_local_redis() {
    let (w, id, ready) = provisions_locally("redis", json!({}), &["host", "port", "username", "key_prefix"]).await;
    let user = ready["outputs"]["username"].as_str().unwrap();
    let prefix = ready["outputs"]["key_prefix"].as_str().unwrap();
    let password = secret_output(&w, &id, "password");
    let (host, port) = (
        ready["outputs"]["host"].as_str().unwrap(),
        ready["outputs"]["port"].to_string(),
    );
    let redis = |key: &str| {
        std::process::Command::new("redis-cli")
            .args([
                "-h",
                host,
                "-p",
                &port,
                "--user",
                user,
                "--no-auth-warning",
                "SET",
                key,
                "v",
            ])
            .env("REDISCLI_AUTH", &password)
            .output()
            .expect("redis-cli runs")
    };
    let own = redis(&format!("{prefix}k"));
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), "OK", "{own:?}");
    let other = redis("someone-elses-key");
    assert!(String::from_utf8_lossy(&other.stdout).contains("NOPERM"), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_bucket_and_sqs_queue_requests_are_applied_with_the_aws_provider_against_moto() {
    let (_w, _id, bucket) = provisions_locally("s3_bucket", json!({}), &["bucket", "arn"]).await;
    assert!(
        bucket["outputs"]["arn"].as_str().unwrap().starts_with("arn:aws:s3:::"),
        "{bucket}"
    );
    let (_w, _id, queue) = provisions_locally("sqs_queue", json!({}), &["queue_url", "arn"]).await;
    assert!(
        queue["outputs"]["arn"].as_str().unwrap().starts_with("arn:aws:sqs:"),
        "{queue}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k8s_namespace_request_is_applied_to_the_simulated_cluster() {
    let (_w, _id, ready) = provisions_locally("k8s_namespace", json!({ "cpu_quota": 1.5 }), &["namespace"]).await;
    let namespace = ready["outputs"]["namespace"].as_str().unwrap();
    let manifest = Path::new(&required_env("SSI_K8S_SIM_DIR")).join(format!("{namespace}.yaml"));
    let text = std::fs::read_to_string(&manifest).expect("the simulated namespace manifest");
    assert!(text.contains(namespace), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_show_every_phase_redacted_and_no_secret_is_left_anywhere() {
    // GIVEN a postgres request provisioned by a worker
    let w = world().await;
    let worker = Worker::start(runner(&w, &[], &[]));
    let id = submit(&w, "postgres", "leak-check", json!({})).await;
    approve(&w, &id).await;
    let ready = wait_for(&w, &id, &["ready", "failed"], Duration::from_secs(60)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    worker.stop().await;
    let password = secret_output(&w, &id, "password");
    let uri = secret_output(&w, &id, "uri");
    assert!(password.len() >= 20, "a generated password");

    // WHEN an admin reads the logs
    let logs = logs(&w, &id).await;

    // THEN there is init, plan, apply and output of attempt 1, in order
    let phases: Vec<(u64, &str)> = logs
        .iter()
        .map(|l| (l["attempt"].as_u64().unwrap(), l["phase"].as_str().unwrap()))
        .collect();
    assert_eq!(phases, [(1, "init"), (1, "plan"), (1, "apply"), (1, "output")]);
    assert!(
        logs[2]["output"].as_str().unwrap().contains("Apply complete"),
        "{}",
        logs[2]
    );
    assert!(
        logs[3]["output"]
            .as_str()
            .unwrap()
            .contains("password = (sensitive value)"),
        "{}",
        logs[3]
    );
    assert!(logs.iter().all(|l| l["exit_code"] == 0));

    // AND the generated password appears in no log, no stored item, no answer
    let everything = format!(
        "{}\n{}\n{}",
        serde_json::to_string(&logs).unwrap(),
        table_text(&w.app).await,
        get(&w, &id).await
    );
    assert!(!everything.contains(&password), "the generated password leaked");
    assert!(!everything.contains(&uri), "the connection URI leaked");

    // AND the working directory (variables file, plan) is gone
    let work = w.root.join("work").join(&id);
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind in {}: {left:?}", work.display());

    // AND the state directory is private
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.root.join("state").join(&id))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

// ---------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_runners_racing_for_one_job_exactly_one_claims_it() {
    // GIVEN an approved request
    let w = world().await;
    let id = submit(&w, "k8s_namespace", "race", json!({})).await;
    approve(&w, &id).await;
    let request_id: Uuid = id.parse().unwrap();

    // WHEN eight runners claim its job at the same moment
    let now = shared::clock::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(1));
    let lease = shared::clock::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::minutes(5));
    let store = &w.app.app.store;
    let claims = join_all((0..8).map(|i| {
        let (now, lease) = (now.clone(), lease.clone());
        async move {
            store
                .claim_job(request_id, &format!("runner-{i}"), &now, &lease)
                .await
                .expect("claim")
        }
    }))
    .await;

    // THEN exactly one got it, and the request counts one attempt
    let won = claims.iter().filter(|c| matches!(c, Claim::Claimed(_))).count();
    assert_eq!(won, 1, "{claims:?}");
    let job = store.get_job(request_id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1);
    assert_eq!(get(&w, &id).await["provisioning"]["attempt"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_approvals_at_once_give_ten_databases_each_with_its_own_credentials() {
    // GIVEN two workers of two jobs each, and ten postgres requests
    let w = world().await;
    let workers = [
        Worker::start(runner(
            &w,
            &[("RUNNER_CONCURRENCY", "2"), ("RUNNER_LEASE_SECS", "30")],
            &[],
        )),
        Worker::start(runner(
            &w,
            &[("RUNNER_CONCURRENCY", "2"), ("RUNNER_LEASE_SECS", "30")],
            &[],
        )),
    ];
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(submit(&w, "postgres", &format!("db-{i}"), json!({})).await);
    }

    // WHEN all ten are approved at once
    join_all(ids.iter().map(|id| approve(&w, id))).await;

    // THEN all ten become ready, each on its first and only run
    let mut windows = Vec::new();
    let mut databases = Vec::new();
    let mut passwords = Vec::new();
    for id in &ids {
        let ready = wait_for(&w, id, &["ready", "failed"], Duration::from_secs(240)).await;
        assert_eq!(ready["status"], "ready", "{ready}");
        assert_eq!(ready["provisioning"]["attempt"], 1, "{ready}");
        let p = &ready["provisioning"];
        windows.push((
            p["started_at"].as_str().unwrap().to_string(),
            p["finished_at"].as_str().unwrap().to_string(),
        ));
        databases.push(ready["outputs"]["database"].as_str().unwrap().to_string());
        passwords.push(secret_output(&w, id, "password"));
    }
    for worker in workers {
        worker.stop().await;
    }

    // AND there are ten distinct databases, each with its own password
    databases.sort();
    databases.dedup();
    assert_eq!(databases.len(), 10);
    let list = databases.iter().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(",");
    assert_eq!(
        psql_admin(&format!("SELECT count(*) FROM pg_database WHERE datname IN ({list})")),
        "10"
    );
    passwords.sort();
    passwords.dedup();
    assert_eq!(passwords.len(), 10);

    // AND never more than the configured 2 + 2 ran at the same time
    let most = windows
        .iter()
        .map(|(start, _)| windows.iter().filter(|(s, f)| s <= start && start < f).count())
        .max()
        .unwrap();
    assert!(most <= 4, "{most} runs overlapped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_apply_is_taken_over_when_its_lease_expires_and_converges() {
    // GIVEN a worker in a process of its own, and an approved postgres request
    let w = world().await;
    let id = submit(&w, "postgres", "crash-db", json!({})).await;
    let mut child = spawn_child_worker(&w, &[("RUNNER_LEASE_SECS", "4")]);
    approve(&w, &id).await;

    // WHEN the runner is killed (SIGKILL) as soon as its plan is done: during apply
    let started = Instant::now();
    loop {
        if logs(&w, &id).await.iter().any(|l| l["phase"] == "plan") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child runner never planned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().expect("kill");
    let output = child.wait_with_output().await.expect("child output");
    assert_eq!(get(&w, &id).await["status"], "provisioning");

    // THEN another runner takes the job over once the lease has expired, and the
    // request becomes ready on its second attempt
    let worker = Worker::start(runner(&w, &[], &[]));
    let ready = wait_for(&w, &id, &["ready", "failed"], Duration::from_secs(90)).await;
    worker.stop().await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["provisioning"]["attempt"], 2, "{ready}");
    let attempt_one: Vec<Value> = logs(&w, &id).await.into_iter().filter(|l| l["attempt"] == 1).collect();
    assert!(
        attempt_one.iter().all(|l| l["phase"] != "apply"),
        "the first run was not killed mid-apply: {attempt_one:?}"
    );

    // AND there is one database and one role for the request: nothing duplicated,
    // nothing orphaned, and the state knows both
    let database = ready["outputs"]["database"].as_str().unwrap();
    let user = ready["outputs"]["username"].as_str().unwrap();
    assert_eq!(
        psql_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{database}'"
        )),
        "1"
    );
    assert_eq!(
        psql_admin(&format!("SELECT count(*) FROM pg_roles WHERE rolname = '{user}'")),
        "1"
    );
    let out = psql_as(user, &secret_output(&w, &id, "password"), database);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // AND the history has one step per move, not one per attempt
    let steps = history_steps(&ready);
    assert_eq!(steps.iter().filter(|s| s.1 == "provisioning").count(), 1, "{steps:?}");

    // AND the killed runner's log lines never held the generated password
    let password = secret_output(&w, &id, "password");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("job claimed"), "the child logged nothing: {printed}");
    assert!(!printed.contains(&password));
}

/// Not a test on its own: the worker process of the test above (started with
/// `SSI_CHILD_WORKER=1` and the runner settings in its environment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by a_runner_killed_mid_apply_is_taken_over_when_its_lease_expires_and_converges"]
async fn child_worker_process() {
    child_worker_main().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_is_down_fails_the_request_readably_and_retry_works_once_it_is_back() {
    // GIVEN a runner that tries twice, pointed at a PostgreSQL that is down
    let w = world().await;
    let port = dead_port().to_string();
    let broken = runner(&w, &[("RUNNER_MAX_ATTEMPTS", "2")], &[("PGPORT", &port)]);
    let id = submit(&w, "postgres", "flaky-db", json!({})).await;
    approve(&w, &id).await;
    let request_id: Uuid = id.parse().unwrap();

    // WHEN it runs: the first failure is retried, the second gives up
    let (_stop, rx) = watch::channel(false);
    let first = broken.run_job(request_id, rx.clone()).await.unwrap();
    assert!(matches!(first, JobResult::RetryScheduled(_)), "{first:?}");
    assert_eq!(get(&w, &id).await["status"], "provisioning");
    let second = broken.run_job(request_id, rx.clone()).await.unwrap();
    assert!(matches!(second, JobResult::Failed(_)), "{second:?}");

    // THEN the request is failed, with a readable summary and the system's step
    let failed = get(&w, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["provisioning"]["attempt"], 2);
    let error = failed["provisioning"]["error"].as_str().expect("an error summary");
    assert!(error.starts_with("terraform apply failed: Error:"), "{error}");
    assert!(error.chars().count() <= 501, "{error}");
    let last = history_steps(&failed).pop().unwrap();
    assert_eq!(last, ("provisioning".into(), "failed".into(), "system".into()));
    assert!(failed["outputs"].is_null());

    // AND only an admin may retry, and only a failed request
    let retry = format!("{REQUESTS}/{id}/retry");
    w.app.post(&retry, Some(&w.member.token), json!({})).await.expect(403);

    // WHEN the engine is back and an admin retries
    let again = w
        .app
        .post(&retry, Some(&w.admin.token), json!({ "comment": "db is back" }))
        .await
        .expect(200)
        .json();
    assert_eq!(again["status"], "provisioning");
    assert_eq!(
        history_steps(&again).pop().unwrap(),
        ("failed".into(), "provisioning".into(), w.admin.id.clone())
    );
    w.app.post(&retry, Some(&w.admin.token), json!({})).await.expect(409);
    let fixed = runner(&w, &[], &[]);
    let result = fixed.run_job(request_id, rx).await.unwrap();

    // THEN it is ready, its attempts counted afresh
    assert_eq!(result, JobResult::Ready);
    let ready = get(&w, &id).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["provisioning"]["attempt"], 1);
    assert!(ready["provisioning"]["error"].is_null());
    w.app.post(&retry, Some(&w.admin.token), json!({})).await.expect(409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_terraform_is_stopped_at_the_timeout_and_the_request_does_not_stay_provisioning() {
    // GIVEN a module whose apply never ends, and a 15-second command timeout (init and
    // plan fit in it even on a loaded machine)
    let w = world().await;
    let modules = repo_root().join("tests/fixtures/terraform/hang");
    let modules = modules.display().to_string();
    let hanging = runner(
        &w,
        &[("RUNNER_MODULES_DIR", &modules), ("RUNNER_COMMAND_TIMEOUT_SECS", "15")],
        &[],
    );
    let id = submit(&w, "k8s_namespace", "stuck", json!({})).await;
    approve(&w, &id).await;

    // WHEN it runs
    let started = Instant::now();
    let (_stop, rx) = watch::channel(false);
    let result = hanging.run_job(id.parse().unwrap(), rx).await.unwrap();

    // THEN it was stopped (well before the module's 600-second sleep) and failed
    assert!(started.elapsed() < Duration::from_secs(90), "{:?}", started.elapsed());
    assert!(matches!(result, JobResult::Failed(_)), "{result:?}");
    let failed = get(&w, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["provisioning"]["error"],
        "terraform apply timed out after 15 s and was stopped"
    );
    let apply = logs(&w, &id)
        .await
        .into_iter()
        .find(|l| l["phase"] == "apply")
        .expect("apply log");
    assert_eq!(apply["timed_out"], true);
    assert!(apply["exit_code"].is_null());
    // AND no process of the module is left running
    let ps = std::process::Command::new("pgrep").args(["-f", &id]).output().unwrap();
    assert!(ps.stdout.is_empty(), "the module's process outlived the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_cancelled_requests_are_never_provisioned() {
    // GIVEN one rejected, one cancelled and one approved request
    let w = world().await;
    let rejected = submit(&w, "k8s_namespace", "rejected", json!({})).await;
    let cancelled = submit(&w, "k8s_namespace", "cancelled", json!({})).await;
    let approved = submit(&w, "k8s_namespace", "approved", json!({})).await;
    w.app
        .post(
            &format!("{REQUESTS}/{rejected}/reject"),
            Some(&w.admin.token),
            json!({ "reason": "no" }),
        )
        .await
        .expect(200);
    w.app
        .post(
            &format!("{REQUESTS}/{cancelled}/cancel"),
            Some(&w.member.token),
            json!({}),
        )
        .await
        .expect(200);
    approve(&w, &approved).await;
    // AND a job item for the cancelled request, as if written by mistake
    let job = shared::model::ProvisioningJob::queued(
        &serde_json::from_value(get(&w, &cancelled).await).unwrap(),
        shared::model::JobOperation::Apply,
        &shared::clock::format_timestamp(time::OffsetDateTime::now_utc()),
    );
    let item = serde_dynamo::to_item(json!({
        "PK": format!("JOB#{cancelled}"), "SK": format!("JOB#{cancelled}"),
        "GSI1PK": "JOBSTATUS#queued", "GSI1SK": format!("JOB#{}#{cancelled}", job.due_at),
        "entity_type": "JOB",
    }))
    .unwrap();
    let mut item: HashMap<String, AttributeValue> = item;
    let job_item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&job).unwrap();
    item.extend(job_item);
    w.app
        .app
        .store
        .client()
        .put_item()
        .table_name(&w.app.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();

    // WHEN a worker runs
    let worker = Worker::start(runner(&w, &[], &[]));
    let ready = wait_for(&w, &approved, &["ready", "failed"], Duration::from_secs(60)).await;
    assert_eq!(ready["status"], "ready");
    let started = Instant::now();
    while w
        .app
        .app
        .store
        .get_job(cancelled.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .status
        != shared::model::JobStatus::Failed
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stray job was not abandoned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.stop().await;

    // THEN the rejected and cancelled requests are untouched and nothing ran for them
    assert_eq!(get(&w, &rejected).await["status"], "rejected");
    assert_eq!(get(&w, &cancelled).await["status"], "cancelled");
    assert!(w
        .app
        .app
        .store
        .get_job(rejected.parse().unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(logs(&w, &cancelled).await.is_empty());
    assert!(logs(&w, &rejected).await.is_empty());
    assert!(!w.root.join("state").join(&cancelled).exists());
    let job = w
        .app
        .app
        .store
        .get_job(cancelled.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(job.last_error.unwrap().contains("the request is cancelled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_team_was_deleted_meanwhile_is_not_run_and_the_request_fails() {
    // GIVEN an approved request: its team cannot be deleted through the API (409,
    // naming the request)
    let w = world().await;
    let id = submit(&w, "k8s_namespace", "orphan", json!({})).await;
    approve(&w, &id).await;
    let refused = w
        .app
        .delete(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(409);
    assert!(
        refused.text.contains(&id) && refused.text.contains("approved"),
        "{}",
        refused.text
    );
    // ... but a team removed behind the API's back (data from before that rule, an
    // operator's mistake) is a case the runner still guards against
    w.app
        .app
        .store
        .client()
        .delete_item()
        .table_name(&w.app.table)
        .key("PK", AttributeValue::S(format!("TEAM#{}", w.team)))
        .key("SK", AttributeValue::S(format!("TEAM#{}", w.team)))
        .send()
        .await
        .expect("remove the team item");

    // WHEN a runner picks the job up
    let (_stop, rx) = watch::channel(false);
    let result = runner(&w, &[], &[]).run_job(id.parse().unwrap(), rx).await.unwrap();

    // THEN nothing is provisioned and the request fails, by the system, with the reason
    assert!(matches!(result, JobResult::Abandoned(_)), "{result:?}");
    let failed = get(&w, &id).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["provisioning"]["error"]
            .as_str()
            .unwrap()
            .contains("team was deleted"),
        "{failed}"
    );
    assert_eq!(history_steps(&failed).pop().unwrap().2, "system");
    assert!(logs(&w, &id).await.is_empty());
    assert!(!w.root.join("state").join(&id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_gives_its_job_back_for_the_next_one() {
    // GIVEN a worker in the middle of a run that never ends
    let w = world().await;
    let modules = repo_root().join("tests/fixtures/terraform/hang").display().to_string();
    let worker = Worker::start(runner(
        &w,
        &[("RUNNER_MODULES_DIR", &modules), ("RUNNER_LEASE_SECS", "600")],
        &[],
    ));
    let id = submit(&w, "k8s_namespace", "interrupted", json!({})).await;
    approve(&w, &id).await;
    let started = Instant::now();
    while !logs(&w, &id).await.iter().any(|l| l["phase"] == "plan") {
        assert!(started.elapsed() < Duration::from_secs(60), "never planned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // WHEN it is stopped
    worker.stop().await;

    // THEN the job is queued again at once, its interrupted run not counted, although
    // its lease had ten minutes left
    let job = w.app.app.store.get_job(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(job.status, shared::model::JobStatus::Queued);
    assert_eq!(job.attempts, 0);
    assert!(job.lease_owner.is_none());
    assert_eq!(get(&w, &id).await["status"], "provisioning");
}

// ---------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_of_a_ready_postgres_reach_only_the_owning_team_and_really_connect() {
    // GIVEN a ready postgres request of the member's, a teammate, and a user of
    // another team
    let w = world().await;
    let teammate = w.app.user().await;
    w.app.add_member(&w.admin, &w.team, &teammate).await.expect(200);
    let stranger = w.app.user().await;
    let other_team = w
        .app
        .team(&w.admin, &format!("other {}", Uuid::new_v4().simple()))
        .await;
    w.app.add_member(&w.admin, &other_team, &stranger).await.expect(200);
    let id = submit(&w, "postgres", "creds-db", json!({})).await;

    // WHEN it is not ready yet, THEN the requester gets 409
    read_credentials(&w, &id, Some(&w.member.token)).await.expect(409);
    let worker = Worker::start(runner(&w, &[], &[]));
    approve(&w, &id).await;
    wait_for(&w, &id, &["ready", "failed"], Duration::from_secs(60)).await;
    worker.stop().await;

    // WHEN the requester reads the credentials
    let reply = read_credentials(&w, &id, Some(&w.member.token)).await.expect(200);

    // THEN they come with no-store and everything a client needs
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["request_id"], id.as_str());
    assert_eq!(body["resource_type"], "postgres");
    assert_eq!(body["version"], 1);
    let c = &body["credentials"];
    for field in ["username", "password", "database", "uri", "host", "port"] {
        assert!(!c[field].is_null(), "no {field}: {body}");
    }
    let (user, password, database) = (
        c["username"].as_str().unwrap(),
        c["password"].as_str().unwrap(),
        c["database"].as_str().unwrap(),
    );
    assert!(c["uri"].as_str().unwrap().starts_with(&format!("postgresql://{user}:")));
    let out = psql_as(user, password, database);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(password, secret_output(&w, &id, "password"));

    // AND the teammate reads them too
    read_credentials(&w, &id, Some(&teammate.token)).await.expect(200);

    // AND nobody else does: another team's user, the admin (separation of duties),
    // anonymous callers and forged tokens
    read_credentials(&w, &id, Some(&stranger.token)).await.expect(404);
    read_credentials(&w, &id, Some(&w.admin.token)).await.expect(404);
    read_credentials(&w, &id, None).await.expect(401);
    let forged = format!("{}x", &w.member.token[..w.member.token.len() - 1]);
    read_credentials(&w, &id, Some(&forged)).await.expect(401);

    // AND the admin sees that credentials exist, in the request, never their value
    let seen = get(&w, &id).await;
    assert_eq!(seen["credentials"]["version"], 1, "{seen}");
    assert!(!seen.to_string().contains(password));

    // AND the stored item holds only ciphertext
    assert!(!table_text(&w.app).await.contains(password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_and_redis_credentials_delivered_by_the_api_really_connect() {
    let w = world().await;
    let mysql = ready_request(&w, "mysql", "creds-mysql").await;
    let redis = ready_request(&w, "redis", "creds-redis").await;

    let c = read_credentials(&w, &mysql, Some(&w.member.token))
        .await
        .expect(200)
        .json()["credentials"]
        .clone();
    let out = std::process::Command::new("mariadb")
        .args([
            "-h",
            c["host"].as_str().unwrap(),
            "-P",
            &c["port"].to_string(),
            "-u",
            c["username"].as_str().unwrap(),
            "-D",
            c["database"].as_str().unwrap(),
            "-e",
            "SELECT 1",
        ])
        .env("MYSQL_PWD", c["password"].as_str().unwrap())
        .env_remove("MYSQL_USER")
        .output()
        .expect("mariadb client runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let c = read_credentials(&w, &redis, Some(&w.member.token))
        .await
        .expect(200)
        .json()["credentials"]
        .clone();
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            c["host"].as_str().unwrap(),
            "-p",
            &c["port"].to_string(),
            "--user",
            c["username"].as_str().unwrap(),
            "--no-auth-warning",
            "SET",
            &format!("{}k", c["key_prefix"].as_str().unwrap()),
            "v",
        ])
        .env("REDISCLI_AUTH", c["password"].as_str().unwrap())
        .output()
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_under_another_encryption_context_does_not_decrypt() {
    // GIVEN credentials sealed for one request of one team (KMS in moto)
    let w = world().await;
    let vault = w.app.app.vault.clone().expect("vault");
    let (request, team) = (Uuid::new_v4(), Uuid::new_v4());
    let fields = json!({ "password": "a-password-of-some-length" })
        .as_object()
        .unwrap()
        .clone();
    // The API's own user may not seal (make data keys); the runner's may.
    let denied = vault
        .seal(
            request,
            team,
            1,
            "2026-01-01T00:00:00.000000Z",
            &shared::vault::OpenCredentials::new(fields.clone()),
        )
        .await;
    assert!(matches!(denied, Err(VaultError::Kms(_))), "{denied:?}");
    let sealed = w
        .sealer
        .seal(
            request,
            team,
            1,
            "2026-01-01T00:00:00.000000Z",
            &shared::vault::OpenCredentials::new(fields),
        )
        .await
        .expect("seal");
    assert!(!String::from_utf8_lossy(&sealed.ciphertext).contains("a-password"));

    // THEN they open for that request and team
    let open = vault.open(&sealed, request, team).await.expect("open");
    assert_eq!(open.expose()["password"], "a-password-of-some-length");

    // AND not for another request, another team, a changed version, or altered bytes
    use shared::vault::VaultError;
    let other_request = vault.open(&sealed, Uuid::new_v4(), team).await;
    assert!(
        matches!(other_request, Err(VaultError::Integrity) | Err(VaultError::Kms(_))),
        "{other_request:?}"
    );
    assert!(vault.open(&sealed, request, Uuid::new_v4()).await.is_err());
    let mut bumped = sealed.clone();
    bumped.version = 2;
    assert!(matches!(
        vault.open(&bumped, request, team).await,
        Err(VaultError::Integrity)
    ));
    let mut altered = sealed.clone();
    altered.ciphertext[0] ^= 1;
    assert!(matches!(
        vault.open(&altered, request, team).await,
        Err(VaultError::Integrity)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_gives_a_new_version_and_the_old_password_stops_working() {
    // GIVEN a ready postgres request and its first credentials
    let w = world().await;
    let id = ready_request(&w, "postgres", "rotating-db").await;
    let v1 = read_credentials(&w, &id, Some(&w.member.token))
        .await
        .expect(200)
        .json();
    let (user, old, database) = (
        v1["credentials"]["username"].as_str().unwrap().to_string(),
        v1["credentials"]["password"].as_str().unwrap().to_string(),
        v1["credentials"]["database"].as_str().unwrap().to_string(),
    );
    psql_admin(&format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"));

    // WHEN the requester asks for a rotation
    let rotate = format!("{REQUESTS}/{id}/credentials/rotate");
    let accepted = w
        .app
        .post(&rotate, Some(&w.member.token), json!({}))
        .await
        .expect(202)
        .json();
    assert_eq!(accepted["status"], "ready");
    assert_eq!(accepted["credentials"]["rotating"], true, "{accepted}");

    // THEN a second one is refused while it is under way, and the request and the
    // current credentials stay readable
    w.app.post(&rotate, Some(&w.admin.token), json!({})).await.expect(409);
    assert_eq!(get(&w, &id).await["status"], "ready");
    assert_eq!(
        read_credentials(&w, &id, Some(&w.member.token))
            .await
            .expect(200)
            .json()["version"],
        1
    );

    // WHEN the runner has done it
    let (_stop, rx) = watch::channel(false);
    let result = runner(&w, &[], &[]).run_job(id.parse().unwrap(), rx).await.unwrap();
    assert_eq!(result, JobResult::Ready);

    // THEN version 2 works, the old password is refused, the database is the same
    let v2 = read_credentials(&w, &id, Some(&w.member.token))
        .await
        .expect(200)
        .json();
    assert_eq!(v2["version"], 2);
    let new = v2["credentials"]["password"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(v2["credentials"]["database"], database.as_str());
    assert!(psql_as(&user, new, &database).status.success());
    let refused = psql_as(&user, &old, &database);
    assert!(!refused.status.success(), "the old password still works");
    let seen = get(&w, &id).await;
    assert_eq!(seen["status"], "ready");
    assert_eq!(seen["credentials"]["version"], 2);
    assert_eq!(seen["credentials"]["rotating"], false);

    // AND types without a generated password, or requests that are not ready, are 409
    let pending = submit(&w, "postgres", "not-yet", json!({})).await;
    w.app
        .post(
            &format!("{REQUESTS}/{pending}/credentials/rotate"),
            Some(&w.member.token),
            json!({}),
        )
        .await
        .expect(409);
}

fn open_sealed(identity: &age::x25519::Identity, armored: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let reader = age::armor::ArmoredReader::new(armored.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| e.to_string())?
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_registered_age_key_credentials_arrive_sealed_to_it() {
    // GIVEN a ready postgres request, and the requester's own age key
    let w = world().await;
    let id = ready_request(&w, "postgres", "sealed-db").await;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();

    // WHEN bad keys are offered, THEN 422 naming the field
    for bad in ["age1notakey", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", ""] {
        let reply = w
            .app
            .put(
                "/api/v1/users/me/public-key",
                Some(&w.member.token),
                json!({ "age_recipient": bad }),
            )
            .await
            .expect(422);
        assert_eq!(reply.json()["errors"][0]["field"], "age_recipient");
    }

    // WHEN the requester registers the key
    let me = w
        .app
        .put(
            "/api/v1/users/me/public-key",
            Some(&w.member.token),
            json!({ "age_recipient": recipient }),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(me["age_recipient"], recipient.as_str());
    let me = w
        .app
        .get("/api/v1/auth/me", Some(&w.member.token))
        .await
        .expect(200)
        .json();
    assert_eq!(me["age_recipient"], recipient.as_str());

    // THEN the credentials come sealed, with no plaintext in the answer
    let body = read_credentials(&w, &id, Some(&w.member.token))
        .await
        .expect(200)
        .json();
    let password = secret_output(&w, &id, "password");
    assert!(body["credentials"].is_null(), "{body}");
    assert!(!body.to_string().contains(&password));
    let armored = body["sealed"].as_str().expect("sealed");
    assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));

    // AND they open with the matching identity, and not with another one
    let opened: Value = serde_json::from_slice(&open_sealed(&identity, armored).unwrap()).unwrap();
    assert_eq!(opened["password"], password.as_str());
    assert!(open_sealed(&age::x25519::Identity::generate(), armored).is_err());

    // WHEN the key is removed, THEN plain JSON again
    w.app
        .delete("/api/v1/users/me/public-key", Some(&w.member.token))
        .await
        .expect(204);
    let body = read_credentials(&w, &id, Some(&w.member.token))
        .await
        .expect(200)
        .json();
    assert_eq!(body["credentials"]["password"], password.as_str());
}
