//! The orphan report (`ssi-runner orphans`, `runner::orphans::scan`): orphans made on
//! purpose are listed, healthy things are not. Against DynamoDB Local, the local
//! engines and moto that `make test` starts (scripts/test.sh exports where they are).
//!
//! Other tests use the same engines and moto at the same time, and their requests are
//! in their own tables, so this test's scans see their objects as orphans too: every
//! assertion looks at the ids this test made, never at the total.
//!
//! The command-line test runs the `ssi-runner` binary next to this test binary
//! (`target/debug/ssi-runner`; `cargo test --workspace` builds it, as does
//! `cargo build -p runner`), or the one `SSI_RUNNER_BIN` names.

mod common;

use common::provision::*;
use runner::{
    config::passed_to_terraform,
    orphans::{scan, Orphan, OrphanKind, Report},
};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::Command,
};
use uuid::Uuid;

/// A Terraform state holding one resource (what the scan counts).
const STATE_WITH_A_RESOURCE: &str = r#"{"version":4,"terraform_version":"1.0.3","serial":1,"lineage":"x","outputs":{},"resources":[{"mode":"managed","type":"null_resource","name":"database","provider":"provider[\"registry.terraform.io/hashicorp/null\"]","instances":[{"schema_version":0,"attributes":{"id":"1","triggers":{}}}]}]}"#;
/// What a destroyed request's state looks like: kept, empty.
const EMPTY_STATE: &str =
    r#"{"version":4,"terraform_version":"1.0.3","serial":3,"lineage":"x","outputs":{},"resources":[]}"#;

fn engine_name(id: Uuid) -> String {
    format!("ssi_{}", id.simple())
}

fn write_state(w: &World, id: &str, text: &str) -> PathBuf {
    let dir = w.root.join("state").join(id);
    std::fs::create_dir_all(&dir).expect("state dir");
    let path = dir.join("terraform.tfstate");
    std::fs::write(&path, text).expect("state file");
    path
}

async fn scan_world(w: &World) -> Report {
    let runner = runner(w, &[], &[]);
    scan(runner.config(), runner.store()).await.expect("the scan succeeds")
}

fn findings_for<'a>(report: &'a Report, id: &str) -> Vec<&'a Orphan> {
    report.orphans.iter().filter(|o| o.request_id == id).collect()
}

/// The engines' admin clients, with the environment `make test` exported (nothing
/// secret on the command line).
fn mariadb_admin(sql: &str) {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=TCP",
            &format!("--host={}", required_env("MYSQL_HOST")),
            &format!("--port={}", required_env("MYSQL_TCP_PORT")),
            &format!("--user={}", required_env("MYSQL_USER")),
            "--batch",
            "-e",
            sql,
        ])
        .output()
        .expect("mariadb runs");
    assert!(
        out.status.success(),
        "mariadb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn redis_admin(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "--no-auth-warning",
            "-h",
            &required_env("REDIS_HOST"),
            "-p",
            &required_env("REDIS_PORT"),
        ])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// moto's S3, as the admin key of the environment.
async fn s3() -> aws_sdk_s3::Client {
    let sdk = shared::app::sdk_config("us-east-1", None).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .endpoint_url(required_env("AWS_ENDPOINT_URL"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn delete_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    if let Ok(list) = s3.list_objects_v2().bucket(bucket).send().await {
        for object in list.contents() {
            if let Some(key) = object.key() {
                let _ = s3.delete_object().bucket(bucket).key(key).send().await;
            }
        }
    }
    let _ = s3.delete_bucket().bucket(bucket).send().await;
}

/// What a test made on the engines, removed when the test ends (also when it fails).
#[derive(Default)]
struct Cleanup {
    postgres: Vec<String>,
    mysql: Vec<String>,
    redis: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.postgres {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-d", "postgres"])
                .args(["-c", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
                .args(["-c", &format!("DROP ROLE IF EXISTS {name}")])
                .output();
        }
        for name in &self.mysql {
            let _ = Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "--protocol=TCP",
                    &format!("--host={}", std::env::var("MYSQL_HOST").unwrap_or_default()),
                    &format!("--port={}", std::env::var("MYSQL_TCP_PORT").unwrap_or_default()),
                    &format!("--user={}", std::env::var("MYSQL_USER").unwrap_or_default()),
                    "-e",
                    &format!("DROP USER IF EXISTS '{name}'@'%'; DROP DATABASE IF EXISTS {name};"),
                ])
                .output();
        }
        for name in &self.redis {
            let _ = Command::new("redis-cli")
                .args([
                    "--no-auth-warning",
                    "-h",
                    &std::env::var("REDIS_HOST").unwrap_or_default(),
                ])
                .args([
                    "-p",
                    &std::env::var("REDIS_PORT").unwrap_or_default(),
                    "ACL",
                    "DELUSER",
                    name,
                ])
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_with_resources_of_an_unknown_or_ended_request_is_listed_and_an_empty_one_is_not() {
    // GIVEN a state with a resource for a request the table does not know
    let w = world().await;
    let unknown = Uuid::new_v4().to_string();
    let unknown_state = write_state(&w, &unknown, STATE_WITH_A_RESOURCE);
    // AND one for a rejected request
    let rejected = submit(&w, "k8s_namespace", "rejected", json!({})).await;
    w.app
        .post(
            &format!("{REQUESTS}/{rejected}/reject"),
            Some(&w.admin.token),
            json!({ "reason": "no" }),
        )
        .await
        .expect(200);
    write_state(&w, &rejected, STATE_WITH_A_RESOURCE);
    // AND empty states (as a destroy leaves them) for a cancelled and an unknown request
    let cancelled = submit(&w, "k8s_namespace", "cancelled", json!({})).await;
    w.app
        .post(
            &format!("{REQUESTS}/{cancelled}/cancel"),
            Some(&w.member.token),
            json!({}),
        )
        .await
        .expect(200);
    write_state(&w, &cancelled, EMPTY_STATE);
    let unknown_empty = Uuid::new_v4().to_string();
    write_state(&w, &unknown_empty, EMPTY_STATE);
    // AND a pending request, which has no state yet
    let pending = submit(&w, "k8s_namespace", "pending", json!({})).await;

    // WHEN the orphans are listed
    let report = scan_world(&w).await;

    // THEN the two states with resources are, with where they are and their request's status
    let found = findings_for(&report, &unknown);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, OrphanKind::StateWithoutRequest);
    assert_eq!(found[0].location, unknown_state.display().to_string());
    assert_eq!(found[0].status_str(), "unknown");
    let found = findings_for(&report, &rejected);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, OrphanKind::StateWithoutRequest);
    assert_eq!(found[0].status_str(), "rejected");

    // AND the empty states and the pending request are not
    for id in [&cancelled, &unknown_empty, &pending] {
        assert!(findings_for(&report, id).is_empty(), "{id}: {:?}", report.orphans);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_roles_and_users_named_for_an_unknown_request_are_listed() {
    // GIVEN, on each local engine, the objects a local module names for a request the
    // table does not know
    let w = world().await;
    let mut cleanup = Cleanup::default();
    let (pg, my, rd) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (pg_name, my_name, rd_name) = (engine_name(pg), engine_name(my), engine_name(rd));
    cleanup.postgres.push(pg_name.clone());
    psql_admin(&format!("CREATE ROLE {pg_name}"));
    psql_admin(&format!("CREATE DATABASE {pg_name} OWNER {pg_name}"));
    cleanup.mysql.push(my_name.clone());
    mariadb_admin(&format!(
        "CREATE DATABASE {my_name}; CREATE USER '{my_name}'@'%' ACCOUNT LOCK;"
    ));
    cleanup.redis.push(rd_name.clone());
    assert_eq!(redis_admin(&["ACL", "SETUSER", &rd_name, "off"]), "OK");
    // AND a name that only looks alike
    let lookalike = format!("ssi_{}", &pg.simple().to_string()[..31]);
    cleanup.postgres.push(lookalike.clone());
    psql_admin(&format!("CREATE ROLE {lookalike}"));

    // WHEN the orphans are listed
    let report = scan_world(&w).await;

    // THEN each object is, as a resource of an unknown request
    let listed = |id: Uuid| -> Vec<(OrphanKind, String, &'static str)> {
        let mut v: Vec<_> = findings_for(&report, &id.to_string())
            .into_iter()
            .map(|o| (o.kind, o.location.clone(), o.status_str()))
            .collect();
        v.sort();
        v
    };
    let r = OrphanKind::ResourceWithoutRequest;
    assert_eq!(
        listed(pg),
        [
            (r, format!("postgres database {pg_name}"), "unknown"),
            (r, format!("postgres role {pg_name}"), "unknown"),
        ]
    );
    assert_eq!(
        listed(my),
        [
            (r, format!("mysql database {my_name}"), "unknown"),
            (r, format!("mysql user {my_name}"), "unknown"),
        ]
    );
    assert_eq!(listed(rd), [(r, format!("redis user {rd_name}"), "unknown")]);
    assert!(
        !report.orphans.iter().any(|o| o.location.ends_with(&lookalike)),
        "{:?}",
        report.orphans
    );
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_tagged_with_an_unknown_request_is_listed_through_the_tagging_api() {
    // GIVEN a bucket on moto tagged with a request id the table does not know, as the
    // s3_bucket module tags its buckets
    let w = world().await;
    let s3 = s3().await;
    let id = Uuid::new_v4();
    let bucket = format!("ssi-orphan-{}", &id.simple().to_string()[..16]);
    s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    let tag = |k: &str, v: &str| aws_sdk_s3::types::Tag::builder().key(k).value(v).build().expect("tag");
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .tag_set(tag("ssi:request_id", &id.to_string()))
        .tag_set(tag("ssi:resource_type", "s3_bucket"))
        .build()
        .expect("tagging");
    let tagged = s3.put_bucket_tagging().bucket(&bucket).tagging(tagging).send().await;

    // WHEN the orphans are listed
    let report = if tagged.is_ok() {
        Some(scan_world(&w).await)
    } else {
        None
    };
    delete_bucket(&s3, &bucket).await;

    // THEN the bucket is, by its ARN
    tagged.expect("tag the bucket");
    let report = report.expect("report");
    let found = findings_for(&report, &id.to_string());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, OrphanKind::ResourceWithoutRequest);
    assert_eq!(found[0].location, format!("arn:aws:s3:::{bucket}"));
    assert_eq!(found[0].status_str(), "unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_request_is_not_listed_until_its_state_goes_missing() {
    // GIVEN a postgres request provisioned through the pipeline
    let w = world().await;
    let id = ready_request(&w, "postgres", "orphans-db").await;
    let uuid: Uuid = id.parse().expect("uuid");
    let mut cleanup = Cleanup::default();
    cleanup.postgres.push(engine_name(uuid));

    // WHEN the orphans are listed
    // THEN neither its state nor its database and role are
    let report = scan_world(&w).await;
    assert!(
        findings_for(&report, &id).is_empty(),
        "{:?}",
        findings_for(&report, &id)
    );

    // WHEN its state is emptied, and then removed
    let state = w.root.join("state").join(&id).join("terraform.tfstate");
    std::fs::write(&state, EMPTY_STATE).expect("empty the state");
    let emptied = scan_world(&w).await;
    std::fs::remove_file(&state).expect("remove the state");
    let removed = scan_world(&w).await;

    // THEN it is listed each time as a ready request without state, and only so (its
    // database belongs to a live request)
    for (report, how) in [(&emptied, "(empty)"), (&removed, "(missing)")] {
        let found = findings_for(report, &id);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, OrphanKind::RequestWithoutState);
        assert_eq!(found[0].location, format!("{} {how}", state.display()));
        assert_eq!(found[0].status_str(), "ready");
    }
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_in_an_s3_state_bucket_are_read_as_the_local_ones_are() {
    // GIVEN an S3 state bucket (as in AWS) holding a state with a resource and an empty
    // one, of requests the table does not know, and a stray object
    let w = world().await;
    let s3 = s3().await;
    let bucket = format!("ssi-state-{}", &Uuid::new_v4().simple().to_string()[..16]);
    s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    let (full, empty) = (Uuid::new_v4(), Uuid::new_v4());
    let mut put = Vec::new();
    for (key, body) in [
        (format!("requests/{full}/terraform.tfstate"), STATE_WITH_A_RESOURCE),
        (format!("requests/{empty}/terraform.tfstate"), EMPTY_STATE),
        ("requests/README".to_string(), "not a state"),
    ] {
        put.push(
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(body.as_bytes().to_vec().into())
                .send()
                .await
                .map(|_| ()),
        );
    }

    // WHEN the orphans are listed with the S3 backend
    let runner = runner(
        &w,
        &[
            ("RUNNER_STATE_BUCKET", &bucket),
            ("RUNNER_LOCK_TABLE", "ssi-orphans-unused"),
        ],
        &[],
    );
    let result = scan(runner.config(), runner.store()).await;
    delete_bucket(&s3, &bucket).await;

    // THEN the state with a resource is, by its key, and the empty one is not
    for p in put {
        p.expect("put the states");
    }
    let report = result.expect("the scan succeeds");
    let found = findings_for(&report, &full.to_string());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, OrphanKind::StateWithoutRequest);
    assert_eq!(
        found[0].location,
        format!("s3://{bucket}/requests/{full}/terraform.tfstate")
    );
    assert!(findings_for(&report, &empty.to_string()).is_empty());
}

fn runner_bin() -> PathBuf {
    if let Ok(path) = std::env::var("SSI_RUNNER_BIN") {
        return PathBuf::from(path);
    }
    // target/debug/deps/orphans-<hash> → target/debug/ssi-runner
    let exe = std::env::current_exe().expect("test binary");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("ssi-runner"))
        .expect("target directory");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p runner` (`cargo test --workspace` does)",
        bin.display()
    );
    bin
}

/// Runs `ssi-runner <args>` with the runner settings of `w` (with `overrides`) and
/// `env` only.
fn run_cli(
    w: &World,
    args: &[&str],
    overrides: &[(&str, &str)],
    env: &[(String, String)],
) -> (Option<i32>, String, String) {
    let out = Command::new(runner_bin())
        .args(args)
        .env_clear()
        .envs(settings(w, overrides))
        .envs(env.iter().cloned())
        .output()
        .expect("ssi-runner runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssi_runner_orphans_prints_each_orphan_and_exits_2_0_when_clean_and_1_on_error() {
    let w = world().await;
    // The engines' admin connections and moto's key, as the runner passes them on.
    let engines: Vec<(String, String)> = std::env::vars().filter(|(k, _)| passed_to_terraform(k)).collect();
    let path: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k == "PATH").collect();

    // GIVEN nothing to find: no engines, no moto (an empty setting is unset), no state,
    // no request
    // WHEN the report runs THEN it exits 0, says so, and names what it could not check
    let (code, stdout, stderr) = run_cli(&w, &["orphans"], &[("AWS_ENDPOINT_URL", "")], &path);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "no orphans found\n");
    assert!(stderr.contains("not checked: postgres"), "{stderr}");

    // GIVEN an orphaned state and an orphaned database
    let id = Uuid::new_v4();
    let state = write_state(&w, &id.to_string(), STATE_WITH_A_RESOURCE);
    let mut cleanup = Cleanup::default();
    cleanup.postgres.push(engine_name(id));
    psql_admin(&format!("CREATE DATABASE {}", engine_name(id)));

    // WHEN the report runs with the engines THEN it exits 2 with one line for each
    let (code, stdout, stderr) = run_cli(&w, &["orphans"], &[], &engines);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(&id.to_string())).collect();
    let expected = [
        format!("state_without_request\t{id}\t{}\tunknown", state.display()),
        format!(
            "resource_without_request\t{id}\tpostgres database {}\tunknown",
            engine_name(id)
        ),
    ];
    assert_eq!(lines, expected, "{stdout}");
    assert!(
        stdout.lines().last().unwrap_or_default().contains("orphan(s):"),
        "{stdout}"
    );

    // AND with --json a JSON array with the same findings
    let (code, stdout, stderr) = run_cli(&w, &["orphans", "--json"], &[], &engines);
    assert_eq!(code, Some(2), "{stderr}");
    let all: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let mine: Vec<&Value> = all.iter().filter(|o| o["request_id"] == id.to_string()).collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine.contains(&&json!({
        "kind": "state_without_request",
        "request_id": id.to_string(),
        "location": state.display().to_string(),
        "status": "unknown",
    })));

    // AND nothing secret of its environment is ever printed
    for (name, value) in &engines {
        if ["PGPASSWORD", "MYSQL_PWD", "REDISCLI_AUTH", "AWS_SECRET_ACCESS_KEY"].contains(&name.as_str()) {
            assert!(
                !stdout.contains(value.as_str()) && !stderr.contains(value.as_str()),
                "{name} printed"
            );
        }
    }

    // GIVEN an engine that cannot be reached WHEN the report runs THEN it fails (1)
    // rather than call the engine clean
    let mut unreachable = engines.clone();
    unreachable.retain(|(k, _)| k != "PGPORT");
    unreachable.push(("PGPORT".into(), dead_port().to_string()));
    let (code, stdout, stderr) = run_cli(&w, &["orphans"], &[], &unreachable);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("postgres:"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");

    // AND an unknown option is refused
    let (code, _, stderr) = run_cli(&w, &["orphans", "--delete"], &[], &path);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("usage"), "{stderr}");
    drop(cleanup);
}
