//! Deletion and lifetime (issue #14), against the real pipeline: DynamoDB Local,
//! Terraform with the offline provider mirror, the local PostgreSQL, MariaDB and
//! Redis, and moto. Run them with `make test`, which starts all of these.

mod common;

use common::provision::*;
use futures::future::join_all;
use runner::worker::JobResult;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

fn path(id: &str, action: &str) -> String {
    format!("{REQUESTS}/{id}/{action}")
}

async fn delete(w: &World, id: &str, token: &str) -> common::Reply {
    w.app.post(&path(id, "delete"), Some(token), json!({})).await
}

/// Deletes a ready request as the member and lets a worker destroy it.
async fn deleted(w: &World, id: &str) -> Value {
    let accepted = delete(w, id, &w.member.token).await.expect(202).json();
    assert_eq!(accepted["status"], "deleting", "{accepted}");
    let worker = Worker::start(runner(w, &[], &[]));
    let done = wait_for(w, id, &["deleted"], Duration::from_secs(90)).await;
    worker.stop().await;
    done
}

fn mariadb(args: &[&str], password: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new("mariadb");
    cmd.args(args);
    if let Some(password) = password {
        cmd.env("MYSQL_PWD", password).env_remove("MYSQL_USER");
    }
    cmd.output().expect("mariadb client runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_postgres_is_gone_with_its_role_credentials_and_name() {
    // GIVEN a ready postgres request, whose credentials work
    let w = world().await;
    let id = ready_request(&w, "postgres", "gone-db").await;
    let creds = read_credentials(&w, &id, Some(&w.member.token))
        .await
        .expect(200)
        .json()["credentials"]
        .clone();
    let (user, password, database) = (
        creds["username"].as_str().unwrap().to_string(),
        creds["password"].as_str().unwrap().to_string(),
        creds["database"].as_str().unwrap().to_string(),
    );
    assert!(psql_as(&user, &password, &database).status.success());

    // WHEN the requester deletes it and the runner destroys it
    let done = deleted(&w, &id).await;

    // THEN the request is deleted, by the system, after the member's step
    let steps = history_steps(&done);
    assert_eq!(
        steps[steps.len() - 2..],
        [
            ("ready".into(), "deleting".into(), w.member.id.clone()),
            ("deleting".into(), "deleted".into(), "system".into()),
        ]
    );
    assert_eq!(done["provisioning"]["operation"], "destroy", "{done}");
    assert!(done["provisioning"]["error"].is_null(), "{done}");
    assert!(done["outputs"].is_null() && done["credentials"].is_null(), "{done}");

    // AND the database and its role are gone: the old credentials no longer connect
    assert_eq!(
        psql_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{database}'"
        )),
        "0"
    );
    assert_eq!(
        psql_admin(&format!("SELECT count(*) FROM pg_roles WHERE rolname = '{user}'")),
        "0"
    );
    assert!(!psql_as(&user, &password, &database).status.success());

    // AND the credentials are destroyed: a read is a 409 (the request is not ready),
    // and no credentials item is left in the table
    let read = read_credentials(&w, &id, Some(&w.member.token)).await.expect(409);
    assert!(read.text.contains("deleted"), "{}", read.text);
    let table = table_text(&w.app).await;
    assert!(
        !table.contains(&format!("CREDS#{id}")),
        "the ciphertext is still stored"
    );
    assert!(!table.contains(&password));

    // AND the state is kept, empty, for the record
    let state = state(&w, &id);
    assert_eq!(state["resources"], json!([]), "{state}");

    // AND the logs keep every command of the apply's run and add the destroy's run
    let logs = logs(&w, &id).await;
    let run = |n: u64| -> Vec<(String, String)> {
        logs.iter()
            .filter(|l| l["run"] == n)
            .map(|l| {
                (
                    l["operation"].as_str().unwrap().into(),
                    l["phase"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let phases = |op: &str, names: &[&str]| -> Vec<(String, String)> {
        names.iter().map(|p| (op.to_string(), p.to_string())).collect()
    };
    assert_eq!(
        run(1),
        phases("apply", &["init", "plan", "apply", "output"]),
        "{logs:?}"
    );
    assert_eq!(run(2), phases("destroy", &["init", "plan", "apply"]), "{logs:?}");

    // AND the name is free again
    let again = submit(&w, "postgres", "gone-db", json!({})).await;
    assert_ne!(again, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_mysql_redis_bucket_and_queue_are_gone_from_the_engines_and_moto() {
    // GIVEN one ready request of each of these types
    let w = world().await;
    let mysql = ready_request(&w, "mysql", "gone-mysql").await;
    let redis = ready_request(&w, "redis", "gone-redis").await;
    let bucket = ready_request(&w, "s3_bucket", "gone-bucket").await;
    let queue = ready_request(&w, "sqs_queue", "gone-queue").await;
    let my = read_credentials(&w, &mysql, Some(&w.member.token))
        .await
        .expect(200)
        .json()["credentials"]
        .clone();
    let rd = read_credentials(&w, &redis, Some(&w.member.token))
        .await
        .expect(200)
        .json()["credentials"]
        .clone();
    let bucket_name = get(&w, &bucket).await["outputs"]["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let queue_url = get(&w, &queue).await["outputs"]["queue_url"]
        .as_str()
        .unwrap()
        .to_string();
    let list_buckets = "import boto3, os\nc = boto3.client('s3', endpoint_url=os.environ['MOTO_ENDPOINT'])\nprint('\\n'.join(b['Name'] for b in c.list_buckets()['Buckets']))";
    let list_queues = "import boto3, os\nc = boto3.client('sqs', endpoint_url=os.environ['MOTO_ENDPOINT'])\nprint('\\n'.join(c.list_queues().get('QueueUrls', [])))";
    assert!(boto3(list_buckets).lines().any(|b| b == bucket_name));
    let queue_name = queue_url.rsplit('/').next().unwrap().to_string();
    assert!(boto3(list_queues).lines().any(|q| q.ends_with(&queue_name)));

    // WHEN all four are deleted
    for id in [&mysql, &redis, &bucket, &queue] {
        delete(&w, id, &w.member.token).await.expect(202);
    }
    let worker = Worker::start(runner(&w, &[], &[]));
    for id in [&mysql, &redis, &bucket, &queue] {
        wait_for(&w, id, &["deleted"], Duration::from_secs(120)).await;
    }
    worker.stop().await;

    // THEN the MariaDB database and user are gone, and the old password is refused
    let (user, database) = (my["username"].as_str().unwrap(), my["database"].as_str().unwrap());
    let admin = required_env("MYSQL_USER");
    let out = mariadb(
        &[
            "-u",
            &admin,
            "-N",
            "-e",
            &format!("SELECT count(*) FROM mysql.user WHERE user = '{user}'"),
        ],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{out:?}");
    let out = mariadb(
        &["-u", &admin, "-N", "-e", &format!("SHOW DATABASES LIKE '{database}'")],
        None,
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "{out:?}"
    );
    let login = mariadb(&["-u", user, "-e", "SELECT 1"], my["password"].as_str());
    assert!(!login.status.success(), "the deleted user still logs in");

    // AND the Redis ACL user is gone
    let users = std::process::Command::new("redis-cli")
        .args(["-h", &required_env("REDIS_HOST"), "-p", &required_env("REDIS_PORT")])
        .args(["--no-auth-warning", "ACL", "USERS"])
        .output()
        .expect("redis-cli runs");
    let listed = String::from_utf8_lossy(&users.stdout).to_string();
    assert!(users.status.success(), "{users:?}");
    assert!(
        !listed.lines().any(|u| u == rd["username"].as_str().unwrap()),
        "{listed}"
    );

    // AND the bucket and the queue are gone from moto
    assert!(!boto3(list_buckets).lines().any(|b| b == bucket_name));
    assert!(!boto3(list_queues).lines().any(|q| q.ends_with(&queue_name)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_deletes_at_once_exactly_one_wins_and_a_second_delete_is_a_409() {
    // GIVEN a ready request
    let w = world().await;
    let id = ready_request(&w, "k8s_namespace", "twice").await;

    // WHEN the member and the admin delete it at the same moment, eight times over
    let tokens = [&w.member.token, &w.admin.token];
    let replies = join_all((0..8).map(|i| delete(&w, &id, tokens[i % 2]))).await;

    // THEN exactly one is accepted, the others get 409, and one step is recorded
    let accepted = replies.iter().filter(|r| r.status.as_u16() == 202).count();
    let refused = replies.iter().filter(|r| r.status.as_u16() == 409).count();
    assert_eq!(
        (accepted, refused),
        (1, 7),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let request = get(&w, &id).await;
    assert_eq!(history_steps(&request).iter().filter(|s| s.1 == "deleting").count(), 1);

    // AND deleting a deleting request is a 409 too
    delete(&w, &id, &w.member.token).await.expect(409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_ready_and_failed_requests_can_be_deleted_by_their_team_or_an_admin() {
    let w = world().await;
    // A pending, an approved and a provisioning request: 409 each.
    let pending = submit(&w, "k8s_namespace", "pending-one", json!({})).await;
    let approved = submit(&w, "k8s_namespace", "approved-one", json!({})).await;
    approve(&w, &approved).await;
    let provisioning = submit(&w, "k8s_namespace", "provisioning-one", json!({})).await;
    approve(&w, &provisioning).await;
    let now = shared::clock::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(1));
    let lease = shared::clock::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::minutes(5));
    let claim = w
        .app
        .app
        .store
        .claim_job(provisioning.parse().unwrap(), "a-runner", &now, &lease)
        .await
        .unwrap();
    assert!(matches!(claim, shared::store::Claim::Claimed(_)), "{claim:?}");
    for (id, status) in [
        (&pending, "pending"),
        (&approved, "approved"),
        (&provisioning, "provisioning"),
    ] {
        let reply = delete(&w, id, &w.member.token).await.expect(409);
        assert!(reply.text.contains(status), "{}", reply.text);
        assert_eq!(get(&w, id).await["status"], status);
    }

    // A ready one: a stranger gets 404, anonymous 401; a teammate who did not ask for
    // it may delete it.
    let ready = ready_request(&w, "k8s_namespace", "ready-one").await;
    let stranger = w.app.user().await;
    delete(&w, &ready, &stranger.token).await.expect(404);
    w.app.post(&path(&ready, "delete"), None, json!({})).await.expect(401);
    let teammate = w.app.user().await;
    w.app.add_member(&w.admin, &w.team, &teammate).await.expect(200);
    delete(&w, &ready, &teammate.token).await.expect(202);

    // Bad input: an unknown field, a malformed id, an unknown id.
    w.app
        .post(
            &path(&pending, "delete"),
            Some(&w.member.token),
            json!({ "force": true }),
        )
        .await
        .expect(422);
    w.app
        .post(&path("not-a-uuid", "delete"), Some(&w.member.token), json!({}))
        .await
        .expect(404);
    w.app
        .post(
            &path(&Uuid::new_v4().to_string(), "delete"),
            Some(&w.admin.token),
            json!({}),
        )
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_can_be_deleted_and_its_partial_state_is_destroyed() {
    // GIVEN a postgres request that failed (the engine was down)
    let w = world().await;
    let port = dead_port().to_string();
    let id = submit(&w, "postgres", "half-db", json!({})).await;
    approve(&w, &id).await;
    let (_stop, rx) = watch::channel(false);
    let broken = runner(&w, &[], &[("PGPORT", &port)]);
    let result = broken.run_job(id.parse().unwrap(), rx).await.unwrap();
    assert!(matches!(result, JobResult::Failed(_)), "{result:?}");
    let partial = state(&w, &id);
    assert_ne!(
        partial["resources"],
        json!([]),
        "the failed apply left nothing to destroy: {partial}"
    );

    // WHEN it is deleted, THEN it becomes deleted (what Terraform had is destroyed)
    let done = deleted(&w, &id).await;
    assert_eq!(done["status"], "deleted");
    assert_eq!(state(&w, &id)["resources"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_down_during_destroy_keeps_the_request_deleting_until_it_is_back() {
    // GIVEN a ready postgres, being deleted by a runner whose PostgreSQL is down and
    // which tries twice
    let w = world().await;
    let id = ready_request(&w, "postgres", "stuck-db").await;
    let database = get(&w, &id).await["outputs"]["database"].as_str().unwrap().to_string();
    delete(&w, &id, &w.member.token).await.expect(202);
    let port = dead_port().to_string();
    let broken = runner(&w, &[("RUNNER_MAX_ATTEMPTS", "2")], &[("PGPORT", &port)]);
    let request_id: Uuid = id.parse().unwrap();
    let (_stop, rx) = watch::channel(false);

    // WHEN the first destroy fails: THEN it is retried later, the request deleting,
    // the error and the next attempt shown
    let first = broken.run_job(request_id, rx.clone()).await.unwrap();
    assert!(matches!(first, JobResult::RetryScheduled(_)), "{first:?}");
    let waiting = get(&w, &id).await;
    assert_eq!(waiting["status"], "deleting", "{waiting}");
    let p = &waiting["provisioning"];
    assert_eq!(p["operation"], "destroy", "{p}");
    assert!(
        p["error"].as_str().unwrap().starts_with("terraform apply failed"),
        "{p}"
    );
    assert!(p["next_attempt_at"].is_string() && p["gave_up"] == false, "{p}");

    // WHEN the second fails too: THEN it gives up, and the request is still deleting,
    // never silently deleted; the database is still there
    let second = broken.run_job(request_id, rx.clone()).await.unwrap();
    assert!(matches!(second, JobResult::Failed(_)), "{second:?}");
    let stuck = get(&w, &id).await;
    assert_eq!(stuck["status"], "deleting", "{stuck}");
    assert_eq!(stuck["provisioning"]["gave_up"], true, "{stuck}");
    assert!(stuck["provisioning"]["next_attempt_at"].is_null(), "{stuck}");
    assert_eq!(
        psql_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{database}'"
        )),
        "1"
    );
    let again = runner(&w, &[], &[]).run_job(request_id, rx.clone()).await.unwrap();
    assert_eq!(
        again,
        JobResult::NotAvailable,
        "a destroy that gave up waits for an admin"
    );

    // WHEN the engine is back and an admin retries (a member may not)
    w.app
        .post(&path(&id, "retry"), Some(&w.member.token), json!({}))
        .await
        .expect(403);
    let retried = w
        .app
        .post(
            &path(&id, "retry"),
            Some(&w.admin.token),
            json!({ "comment": "db is back" }),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(retried["status"], "deleting");
    assert_eq!(
        history_steps(&retried).pop().unwrap(),
        ("deleting".into(), "deleting".into(), w.admin.id.clone())
    );
    let result = runner(&w, &[], &[]).run_job(request_id, rx).await.unwrap();

    // THEN it is deleted and the database is gone
    assert_eq!(result, JobResult::Deleted);
    let done = get(&w, &id).await;
    assert_eq!(done["status"], "deleted", "{done}");
    assert_eq!(
        done["provisioning"]["attempt"], 1,
        "attempts count afresh after a retry"
    );
    assert_eq!(
        psql_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{database}'"
        )),
        "0"
    );
    w.app
        .post(&path(&id, "retry"), Some(&w.admin.token), json!({}))
        .await
        .expect(409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_destroy_is_taken_over_and_the_destroy_completes() {
    // GIVEN a ready postgres whose deletion a worker process of its own is running
    let w = world().await;
    let id = ready_request(&w, "postgres", "killed-db").await;
    let database = get(&w, &id).await["outputs"]["database"].as_str().unwrap().to_string();
    let mut child = spawn_child_worker(&w, &[("RUNNER_LEASE_SECS", "4")]);
    delete(&w, &id, &w.member.token).await.expect(202);

    // WHEN it is killed (SIGKILL) as soon as the destroy is planned
    let started = Instant::now();
    while !logs(&w, &id)
        .await
        .iter()
        .any(|l| l["operation"] == "destroy" && l["phase"] == "plan")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the destroy was never planned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().expect("kill");
    child.wait().await.expect("the child ends");
    assert_eq!(get(&w, &id).await["status"], "deleting");

    // THEN another runner takes the job over once the lease has expired, and the
    // request is deleted on the second attempt, the database gone
    let worker = Worker::start(runner(&w, &[], &[]));
    let done = wait_for(&w, &id, &["deleted"], Duration::from_secs(90)).await;
    worker.stop().await;
    assert_eq!(done["provisioning"]["attempt"], 2, "{done}");
    assert_eq!(
        psql_admin(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{database}'"
        )),
        "0"
    );
    assert_eq!(history_steps(&done).iter().filter(|s| s.1 == "deleted").count(), 1);
}

/// Not a test on its own: the worker process of the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by a_runner_killed_mid_destroy_is_taken_over_and_the_destroy_completes"]
async fn child_worker_process() {
    child_worker_main().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_waits_for_a_rotation_under_way() {
    // GIVEN a ready redis whose rotation is queued
    let w = world().await;
    let id = ready_request(&w, "redis", "rotating").await;
    w.app
        .post(&path(&id, "credentials/rotate"), Some(&w.member.token), json!({}))
        .await
        .expect(202);

    // WHEN it is deleted meanwhile, THEN 409, and it stays ready
    let reply = delete(&w, &id, &w.member.token).await.expect(409);
    assert!(reply.text.contains("job"), "{}", reply.text);
    assert_eq!(get(&w, &id).await["status"], "ready");
}

fn in_days(days: i64) -> String {
    shared::clock::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(days))
}

async fn submit_expiring(w: &World, name: &str, expires_at: Option<&str>) -> common::Reply {
    let mut body = json!({ "resource_type": "k8s_namespace", "name": name, "justification": "sandbox" });
    if let Some(at) = expires_at {
        body["expires_at"] = json!(at);
    }
    w.app.post(REQUESTS, Some(&w.member.token), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_deletes_by_the_system_when_the_clock_passes_it() {
    // GIVEN a ready sandbox namespace that expires in 2 days
    let w = world().await;
    let expires = in_days(2);
    let id = submit_expiring(&w, "sandbox-1", Some(&expires))
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let worker = Worker::start(runner(&w, &[], &[]));
    approve(&w, &id).await;
    wait_for(&w, &id, &["ready"], Duration::from_secs(60)).await;
    let store = &w.app.app.store;

    // WHEN the sweep runs before it: nothing happens
    let early = shared::expiry::sweep(store, &in_days(1)).await.unwrap();
    assert!(!early.deleting.contains(&id.parse().unwrap()), "{early:?}");
    assert_eq!(get(&w, &id).await["status"], "ready");

    // WHEN the (manual) clock passes the expiry
    let late = shared::expiry::sweep(store, &in_days(3)).await.unwrap();

    // THEN the system starts its deletion at that time: the request is deleting, by
    // the system, saying why, and its destroy job is queued (due at the sweep's time;
    // the worker-loop test below runs a whole expiry through to `deleted` in real time)
    worker.stop().await;
    assert!(late.deleting.contains(&id.parse().unwrap()), "{late:?}");
    let deleting = get(&w, &id).await;
    assert_eq!(deleting["status"], "deleting", "{deleting}");
    let step = deleting["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (step["from"].as_str(), step["by"].as_str()),
        (Some("ready"), Some("system")),
        "{step}"
    );
    assert!(
        step["comment"]
            .as_str()
            .unwrap()
            .contains(&format!("expired at {expires}")),
        "{step}"
    );
    let job = store.get_job(id.parse().unwrap()).await.unwrap().expect("job");
    assert_eq!(
        (job.operation, job.status, job.attempts),
        (
            shared::model::JobOperation::Destroy,
            shared::model::JobStatus::Queued,
            0
        )
    );

    // AND a second sweep does nothing more (the expiry is forgotten)
    let again = shared::expiry::sweep(store, &in_days(4)).await.unwrap();
    assert_eq!(again, shared::expiry::Sweep::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_loop_deletes_an_expired_resource_by_itself() {
    // GIVEN a sandbox namespace that expires a few seconds from now, and a worker
    let w = world().await;
    let soon = shared::clock::format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(8));
    let id = submit_expiring(&w, "short-lived", Some(&soon)).await.expect(201).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let worker = Worker::start(runner(&w, &[], &[]));
    approve(&w, &id).await;

    // THEN it is provisioned, and then deleted when its time comes, with no one asking
    let done = wait_for(&w, &id, &["deleted"], Duration::from_secs(90)).await;
    worker.stop().await;
    let statuses: Vec<String> = history_steps(&done).into_iter().map(|s| s.1).collect();
    assert!(statuses.contains(&"ready".to_string()), "{statuses:?}");
    assert_eq!(history_steps(&done)[statuses.len() - 2].2, "system");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_that_expires_is_cancelled_and_cannot_be_approved() {
    let w = world().await;
    let expires = shared::clock::format_timestamp(w.app.clock.now() + time::Duration::minutes(10));
    let id = submit_expiring(&w, "late-review", Some(&expires))
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The API's clock moves past the expiry: an approval is refused.
    w.app.clock.advance(time::Duration::minutes(11));
    let refused = w
        .app
        .post(&path(&id, "approve"), Some(&w.admin.token), json!({}))
        .await
        .expect(409);
    assert!(refused.text.contains("expired"), "{}", refused.text);
    // The sweep cancels it, by the system.
    let now = shared::clock::format_timestamp(w.app.clock.now());
    let sweep = shared::expiry::sweep(&w.app.app.store, &now).await.unwrap();
    assert!(sweep.cancelled.contains(&id.parse().unwrap()), "{sweep:?}");
    let cancelled = get(&w, &id).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(history_steps(&cancelled).pop().unwrap().2, "system");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_within_the_types_maximum_and_extending_follows_the_rules() {
    let w = world().await;
    // A sandbox type defaults to its maximum (30 days) and refuses more.
    let defaulted = submit_expiring(&w, "sandbox-default", None).await.expect(201).json();
    let at = shared::clock::parse_timestamp(defaulted["expires_at"].as_str().unwrap()).unwrap();
    let created = shared::clock::parse_timestamp(defaulted["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(at - created, time::Duration::days(30), "{defaulted}");
    for (bad, why) in [
        (in_days(31), "at most 30 days"),
        (in_days(-1), "in the future"),
        ("next tuesday".to_string(), "RFC 3339"),
    ] {
        let reply = submit_expiring(&w, "sandbox-bad", Some(&bad)).await.expect(422);
        assert!(
            reply.text.contains("expires_at") && reply.text.contains(why),
            "{bad}: {}",
            reply.text
        );
    }
    // A type without a maximum takes any future expiry.
    let pg = w
        .app
        .post(
            REQUESTS,
            Some(&w.member.token),
            json!({ "resource_type": "postgres", "name": "pg-expiring", "justification": "x", "expires_at": in_days(400) }),
        )
        .await
        .expect(201)
        .json();
    assert!(pg["expires_at"].is_string(), "{pg}");

    // Extending: later, within the rolling maximum, by the requester or an admin.
    let id = defaulted["id"].as_str().unwrap();
    let extend = |token: String, at: Value| {
        let url = path(id, "extend");
        let app = &w.app;
        async move { app.post(&url, Some(&token), json!({ "expires_at": at })).await }
    };
    let earlier = in_days(10);
    let reply = extend(w.member.token.clone(), json!(earlier)).await.expect(422);
    assert!(reply.text.contains("later than the current expiry"), "{}", reply.text);
    extend(w.member.token.clone(), json!(in_days(31))).await.expect(422);
    extend(w.member.token.clone(), json!(5)).await.expect(422);
    let teammate = w.app.user().await;
    w.app.add_member(&w.admin, &w.team, &teammate).await.expect(200);
    let later = shared::clock::format_timestamp(at + time::Duration::minutes(30));
    extend(teammate.token.clone(), json!(later)).await.expect(403);
    let stranger = w.app.user().await;
    extend(stranger.token.clone(), json!(later)).await.expect(404);
    // The manual clock moves on 50 minutes: the rolling window moves with it.
    w.app.clock.advance(time::Duration::minutes(50));
    let moved = extend(w.member.token.clone(), json!(later)).await.expect(200).json();
    assert_eq!(moved["expires_at"], later.as_str());
    let step = history_steps(&moved).pop().unwrap();
    assert_eq!(step, ("pending".into(), "pending".into(), w.member.id.clone()));
    let latest = shared::clock::format_timestamp(at + time::Duration::minutes(40));
    extend(w.admin.token.clone(), json!(latest)).await.expect(200);

    // A cancelled request cannot be extended.
    w.app
        .post(&path(id, "cancel"), Some(&w.member.token), json!({}))
        .await
        .expect(200);
    let reply = extend(w.member.token.clone(), json!(in_days(5))).await.expect(409);
    assert!(reply.text.contains("cancelled"), "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_with_resources_cannot_be_deleted_until_they_are() {
    // GIVEN a team with a ready resource
    let w = world().await;
    let id = ready_request(&w, "k8s_namespace", "team-owned").await;

    // WHEN an admin deletes the team: 409, listing the resource; nothing changed
    let refused = w
        .app
        .delete(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(409);
    assert!(
        refused.text.contains(&id) && refused.text.contains("team-owned"),
        "{}",
        refused.text
    );
    let team = w
        .app
        .get(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(team["members"].as_array().unwrap().len(), 1, "{team}");
    // The team works as before: its member can still ask for resources.
    submit(&w, "k8s_namespace", "still-works", json!({})).await;

    // WHEN the resources are deleted and the pending request cancelled
    deleted(&w, &id).await;
    let pending = w
        .app
        .get(&format!("{REQUESTS}?scope=team&status=pending"), Some(&w.member.token))
        .await
        .expect(200)
        .json();
    for r in pending["items"].as_array().unwrap() {
        let rid = r["id"].as_str().unwrap();
        w.app
            .post(&path(rid, "cancel"), Some(&w.member.token), json!({}))
            .await
            .expect(200);
    }

    // THEN the team can be deleted
    w.app
        .delete(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_cancels_their_pending_requests_and_leaves_their_resources_to_the_team() {
    // GIVEN a member with a ready resource and two pending requests, and a teammate
    let w = world().await;
    let ready = ready_request(&w, "k8s_namespace", "kept").await;
    let pending: Vec<String> = [
        submit(&w, "k8s_namespace", "wait-1", json!({})).await,
        submit(&w, "postgres", "wait-2", json!({})).await,
    ]
    .into();
    let teammate = w.app.user().await;
    w.app.add_member(&w.admin, &w.team, &teammate).await.expect(200);

    // WHEN an admin deletes the member
    w.app
        .delete(&format!("/api/v1/users/{}", w.member.id), Some(&w.admin.token))
        .await
        .expect(204);

    // THEN the pending requests are cancelled, by the admin, saying why; their names
    // are free
    for id in &pending {
        let r = get(&w, id).await;
        assert_eq!(r["status"], "cancelled", "{r}");
        assert_eq!(history_steps(&r).pop().unwrap().2, w.admin.id);
        assert!(r["history"].as_array().unwrap().last().unwrap()["comment"]
            .as_str()
            .unwrap()
            .contains("deleted"));
    }
    // AND the ready resource stays with the team: the teammate sees it, reads its
    // credentials and may delete it
    let seen = w
        .app
        .get(&format!("{REQUESTS}/{ready}"), Some(&teammate.token))
        .await
        .expect(200)
        .json();
    assert_eq!(seen["status"], "ready");
    read_credentials(&w, &ready, Some(&teammate.token)).await.expect(200);
    let names = w.app.post(
        REQUESTS,
        Some(&teammate.token),
        json!({ "resource_type": "postgres", "name": "wait-2", "justification": "reuse the name" }),
    );
    names.await.expect(201);
    delete(&w, &ready, &teammate.token).await.expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_made_while_the_sweep_runs_wins_over_the_expiry() {
    // GIVEN a ready sandbox namespace that expires in 2 days
    let w = world().await;
    let old = in_days(2);
    let id = submit_expiring(&w, "extended", Some(&old)).await.expect(201).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let worker = Worker::start(runner(&w, &[], &[]));
    approve(&w, &id).await;
    wait_for(&w, &id, &["ready"], Duration::from_secs(60)).await;
    worker.stop().await;
    let store = &w.app.app.store;
    let request_id: Uuid = id.parse().unwrap();

    // WHEN the sweep has read it (as expired, in 3 days) and the requester extends it
    // before the sweep writes
    let now = in_days(3);
    let read = store.get_request(request_id).await.unwrap().unwrap();
    let extended = in_days(20);
    w.app
        .post(
            &path(&id, "extend"),
            Some(&w.member.token),
            json!({ "expires_at": extended }),
        )
        .await
        .expect(200);
    let mut planned = shared::domain::plan_transition(
        &read,
        shared::model::RequestStatus::Deleting,
        shared::domain::Actor::System,
        None,
        &now,
    )
    .unwrap();
    planned.if_expires_at = read.expires_at.clone();
    let write = store
        .apply_transition(&read, &planned, &shared::domain::audit::Origin::system(now.clone()))
        .await;

    // THEN the sweep's write is refused and the request stays ready
    assert!(
        matches!(write, Err(shared::store::StoreError::StatusChanged { .. })),
        "{write:?}"
    );
    assert_eq!(get(&w, &id).await["status"], "ready");

    // AND a sweep at that time leaves it alone, one after the new expiry deletes it
    let early = shared::expiry::sweep(store, &now).await.unwrap();
    assert!(!early.deleting.contains(&request_id), "{early:?}");
    assert_eq!(get(&w, &id).await["status"], "ready");
    let late = shared::expiry::sweep(store, &in_days(21)).await.unwrap();
    assert!(late.deleting.contains(&request_id), "{late:?}");
}

/// Moves the `requests_created` count of a team or user item (`key` is its PK and SK)
/// behind the API's back, as an index that lags behind it would look.
async fn add_to_requests_created(w: &World, key: &str, by: i64) {
    let key = aws_sdk_dynamodb::types::AttributeValue::S(key.to_string());
    w.app
        .app
        .store
        .client()
        .update_item()
        .table_name(&w.app.table)
        .key("PK", key.clone())
        .key("SK", key)
        .update_expression("ADD requests_created :by")
        .expression_attribute_values(":by", aws_sdk_dynamodb::types::AttributeValue::N(by.to_string()))
        .send()
        .await
        .expect("move the counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_deletion_waits_for_the_request_index_and_never_deletes_past_it() {
    // GIVEN a team with no live request, whose counter says one more request was
    // made than the index holds (as when a request committed a moment ago has not
    // reached the eventually consistent index yet)
    let w = world().await;
    let key = format!("TEAM#{}", w.team);
    add_to_requests_created(&w, &key, 1).await;

    // WHEN an admin deletes the team: THEN it waits, then answers 503 (retry), and the
    // team is not deleted nor left marked: its member can still ask for resources
    let reply = w
        .app
        .delete(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(503);
    assert!(reply.header("retry-after").is_some(), "{reply:?}");
    w.app
        .get(&format!("/api/v1/teams/{}", w.team), Some(&w.admin.token))
        .await
        .expect(200);
    submit(&w, "k8s_namespace", "after-wait", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deletion_waits_for_the_request_index_and_never_misses_a_pending_request() {
    // GIVEN a member with a pending request, whose counter says one more request was
    // made than the index holds (one committed a moment ago, not yet indexed)
    let w = world().await;
    let pending = submit(&w, "k8s_namespace", "not-missed", json!({})).await;
    let key = format!("USER#{}", w.member.id);
    add_to_requests_created(&w, &key, 1).await;

    // WHEN an admin deletes the member: THEN it waits, then answers 503 (retry); the
    // user and the pending request are untouched
    let user = format!("/api/v1/users/{}", w.member.id);
    let reply = w.app.delete(&user, Some(&w.admin.token)).await.expect(503);
    assert!(reply.header("retry-after").is_some(), "{reply:?}");
    w.app.get(&user, Some(&w.admin.token)).await.expect(200);
    assert_eq!(get(&w, &pending).await["status"], "pending");

    // WHEN the index holds every request the counter names (the counter back in
    // step), THEN the deletion goes through and cancels the request
    add_to_requests_created(&w, &key, -1).await;
    w.app.delete(&user, Some(&w.admin.token)).await.expect(204);
    assert_eq!(get(&w, &pending).await["status"], "cancelled");
}
