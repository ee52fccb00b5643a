//! The audit log against DynamoDB Local: every action leaves its event (with actor,
//! target, context and no secret), the chain stays one line under concurrent writers,
//! tampering is found (by the API and by an outside script on the export), and the
//! lists filter, page and keep to their readers.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::provision::{approve, dead_port, get, read_credentials, runner, submit, wait_for, world, Worker, REQUESTS};
use common::{TestApp, PASSWORD};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

const AGE_RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

/// Every event, oldest first, through the export (as an admin).
async fn export(app: &TestApp, token: &str) -> (String, Vec<Value>) {
    let reply = app.get("/api/v1/audit/export", Some(token)).await.expect(200);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let events = reply
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event a line"))
        .collect();
    (reply.text, events)
}

fn find<'a>(events: &'a [Value], action: &str, target_id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["action"] == action && e["target"]["id"] == target_id)
        .collect()
}

/// The one event of `action` on `target_id`, by `actor`.
fn expect_event<'a>(events: &'a [Value], action: &str, target_id: &str, actor: &str) -> &'a Value {
    let found = find(events, action, target_id);
    assert!(!found.is_empty(), "no {action} event for {target_id} in {events:#?}");
    let by_actor: Vec<_> = found.iter().filter(|e| e["actor"] == actor).collect();
    assert!(
        !by_actor.is_empty(),
        "{action} on {target_id} not by {actor}: {found:#?}"
    );
    by_actor[0]
}

async fn verify(app: &TestApp, token: &str) -> Value {
    app.get("/api/v1/audit/verify", Some(token)).await.expect(200).json()
}

/// Runs `scripts/audit-verify.py` with `args` on an export.
fn verifier_with(ndjson: &str, args: &[&str]) -> std::process::Output {
    use std::io::Write;
    let script = common::provision::repo_root().join("scripts/audit-verify.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ndjson.as_bytes())
        .expect("write");
    child.wait_with_output().expect("verifier ends")
}

fn verifier(ndjson: &str) -> std::process::Output {
    verifier_with(ndjson, &[])
}

/// The raw event items of the table, by `seq`.
async fn event_items(app: &TestApp) -> Vec<HashMap<String, AttributeValue>> {
    let out = app
        .app
        .store
        .client()
        .query()
        .table_name(&app.table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("AUDIT".into()))
        .send()
        .await
        .expect("query");
    out.items.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_recorded_with_its_actor_and_target_and_no_secret() {
    // GIVEN an admin, a member of a team (registered, signed in) and a runner
    let w = world().await;
    let (admin, member, team) = (&w.admin, &w.member, w.team.clone());
    let app = &w.app;

    // WHEN every kind of action is done once
    // ... logins: a wrong password on a known and an unknown account, then throttling
    app.login(&member.email, "wrong password, not it").await.expect(401);
    let nobody = "nobody-here@example.com";
    let reply = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", "audit-test/1.0")
        .json(&json!({ "email": nobody, "password": "wrong password, not it" }))
        .send()
        .await
        .expect("login");
    assert_eq!(reply.status(), 401);
    let victim = app.user().await;
    let mut throttled = false;
    for _ in 0..12 {
        if app.login(&victim.email, "guess guess guess").await.status == 429 {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "the throttle never answered 429");
    // ... account changes
    let changer = app.user().await;
    let new_password = "a brand new passphrase 42";
    app.put(
        "/api/v1/users/me/password",
        Some(&changer.token),
        json!({ "current_password": PASSWORD, "new_password": new_password }),
    )
    .await
    .expect(204);
    app.patch(
        &format!("/api/v1/users/{}", changer.id),
        Some(&admin.token),
        json!({ "is_admin": true }),
    )
    .await
    .expect(200);
    app.put(
        "/api/v1/users/me/public-key",
        Some(&member.token),
        json!({ "age_recipient": AGE_RECIPIENT }),
    )
    .await
    .expect(200);
    app.delete("/api/v1/users/me/public-key", Some(&member.token))
        .await
        .expect(204);
    // ... teams
    app.put(
        &format!("/api/v1/teams/{team}"),
        Some(&admin.token),
        json!({ "description": "audited" }),
    )
    .await
    .expect(200);
    let spare = app.team(admin, "spare team for the audit").await;
    let passer = app.user().await;
    app.add_member(admin, &spare, &passer).await.expect(200);
    app.delete(
        &format!("/api/v1/teams/{spare}/members/{}", passer.id),
        Some(&admin.token),
    )
    .await
    .expect(204);
    app.delete(&format!("/api/v1/teams/{spare}"), Some(&admin.token))
        .await
        .expect(204);
    // ... a budget set and removed, a policy created and deleted
    let budget = format!("/api/v1/teams/{team}/budget");
    app.put(
        &budget,
        Some(&admin.token),
        json!({ "monthly_limit": { "amount": "100000.00", "currency": "USD" } }),
    )
    .await
    .expect(200);
    app.delete(&budget, Some(&admin.token)).await.expect(204);
    let policy = app
        .post(
            "/api/v1/policies",
            Some(&admin.token),
            json!({ "resource_type": "sqs_queue", "max_monthly_cost": { "amount": "1.00", "currency": "USD" } }),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("policy id")
        .to_string();
    app.delete(&format!("/api/v1/policies/{policy}"), Some(&admin.token))
        .await
        .expect(204);
    // ... notification settings, a webhook registered and deleted
    app.put(
        "/api/v1/users/me/notifications",
        Some(&member.token),
        json!({ "notifications": { "request_approved": false } }),
    )
    .await
    .expect(200);
    let hook_url = "https://hooks.example.com/services/T000/B000/a-token-in-the-path";
    let hook = app
        .post(
            "/api/v1/webhooks",
            Some(&admin.token),
            json!({ "url": hook_url, "events": ["request_submitted"] }),
        )
        .await
        .expect(201)
        .json();
    let hook_id = hook["id"].as_str().expect("hook id").to_string();
    let hook_secret = hook["secret"].as_str().expect("secret").to_string();
    app.delete(&format!("/api/v1/webhooks/{hook_id}"), Some(&admin.token))
        .await
        .expect(204);
    // ... requests: cancelled, rejected, approved and provisioned, read, rotated,
    // extended, deleted; one failed and retried
    let cancelled = submit(&w, "postgres", "audit-cancel", json!({})).await;
    app.post(
        &format!("{REQUESTS}/{cancelled}/cancel"),
        Some(&member.token),
        json!({}),
    )
    .await
    .expect(200);
    let rejected = submit(&w, "postgres", "audit-reject", json!({})).await;
    app.post(
        &format!("{REQUESTS}/{rejected}/reject"),
        Some(&admin.token),
        json!({ "reason": "no need" }),
    )
    .await
    .expect(200);
    let failing = submit(&w, "postgres", "audit-fail", json!({})).await;
    approve(&w, &failing).await;
    let port = dead_port().to_string();
    let broken = runner(&w, &[("RUNNER_MAX_ATTEMPTS", "1")], &[("PGPORT", &port)]);
    let (_stop, rx) = watch::channel(false);
    broken.run_job(failing.parse().unwrap(), rx).await.expect("run");
    assert_eq!(get(&w, &failing).await["status"], "failed");
    app.post(
        &format!("{REQUESTS}/{failing}/retry"),
        Some(&admin.token),
        json!({ "comment": "db back" }),
    )
    .await
    .expect(200);
    let worker = Worker::start(runner(&w, &[], &[]));
    let db = submit(&w, "postgres", "audit-db", json!({})).await;
    approve(&w, &db).await;
    let ready = wait_for(&w, &db, &["ready", "failed"], Duration::from_secs(90)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let creds = read_credentials(&w, &db, Some(&member.token)).await.expect(200).json();
    let secret = creds["credentials"]["password"]
        .as_str()
        .expect("a password")
        .to_string();
    app.post(
        &format!("{REQUESTS}/{db}/credentials/rotate"),
        Some(&member.token),
        json!({}),
    )
    .await
    .expect(202);
    wait_until(&w, &db, |r| r["credentials"]["version"] == 2).await;
    let rotated = read_credentials(&w, &db, Some(&member.token)).await.expect(200).json();
    let rotated_secret = rotated["credentials"]["password"]
        .as_str()
        .expect("password")
        .to_string();
    let now = w.app.clock.now();
    let sooner = shared::clock::format_timestamp(now + time::Duration::days(1));
    let later = shared::clock::format_timestamp(now + time::Duration::days(2));
    let short = app
        .post(
            REQUESTS,
            Some(&member.token),
            json!({ "resource_type": "k8s_namespace", "name": "audit-short", "parameters": {},
                    "justification": "tests", "expires_at": sooner }),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.post(
        &format!("{REQUESTS}/{short}/extend"),
        Some(&member.token),
        json!({ "expires_at": later }),
    )
    .await
    .expect(200);
    app.post(&format!("{REQUESTS}/{db}/delete"), Some(&member.token), json!({}))
        .await
        .expect(202);
    let gone = wait_for(&w, &db, &["deleted"], Duration::from_secs(90)).await;
    assert_eq!(gone["status"], "deleted");
    wait_for(&w, &failing, &["ready"], Duration::from_secs(90)).await;
    worker.stop().await;
    // ... a user deletion (cancelling their pending request) and a logout
    let leaver = app.user().await;
    app.add_member(admin, &team, &leaver).await.expect(200);
    let orphan = app
        .post(
            REQUESTS,
            Some(&leaver.token),
            json!({ "resource_type": "s3_bucket", "name": "audit-orphan", "parameters": {}, "justification": "x" }),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.delete(&format!("/api/v1/users/{}", leaver.id), Some(&admin.token))
        .await
        .expect(204);
    // (the password change revoked the old token)
    let changer_token = app.token(&changer.email, new_password).await;
    app.post("/api/v1/auth/logout", Some(&changer_token), json!({}))
        .await
        .expect(204);

    // THEN each has its event, by the right actor, on the right target
    let (text, events) = export(app, &admin.token).await;
    let system = "system";
    let anonymous = "anonymous";
    expect_event(&events, "user.created", &admin.id, system);
    expect_event(&events, "user.registered", &member.id, &member.id);
    expect_event(&events, "auth.login_succeeded", &member.id, &member.id);
    let failure = expect_event(&events, "auth.login_failed", &member.id, anonymous);
    assert_eq!(failure["team_id"], team.as_str());
    assert_eq!(failure["context"]["source_ip"], "127.0.0.1", "{failure}");
    assert!(failure["context"]["request_id"].is_string(), "{failure}");
    let with_agent = find(&events, "auth.login_failed", nobody);
    assert_eq!(
        with_agent[0]["context"]["user_agent"], "audit-test/1.0",
        "{with_agent:#?}"
    );
    expect_event(&events, "auth.login_failed", nobody, anonymous);
    let throttle = expect_event(&events, "auth.throttled", &victim.email.to_lowercase(), anonymous);
    assert_eq!(throttle["target"]["type"], "account");
    expect_event(&events, "user.password_changed", &changer.id, &changer.id);
    let role = expect_event(&events, "user.role_changed", &changer.id, &admin.id);
    assert_eq!(role["changes"]["is_admin"], json!({ "from": false, "to": true }));
    let key = expect_event(&events, "user.public_key_set", &member.id, &member.id);
    assert_eq!(key["changes"]["age_recipient"], AGE_RECIPIENT);
    expect_event(&events, "user.public_key_removed", &member.id, &member.id);
    expect_event(&events, "team.created", &team, &admin.id);
    let updated = expect_event(&events, "team.updated", &team, &admin.id);
    assert_eq!(updated["changes"]["description"]["to"], "audited");
    expect_event(&events, "team.member_added", &member.id, &admin.id);
    expect_event(&events, "team.member_added", &passer.id, &admin.id);
    expect_event(&events, "team.member_removed", &passer.id, &admin.id);
    expect_event(&events, "team.deleted", &spare, &admin.id);
    let set = expect_event(&events, "team.budget_set", &team, &admin.id);
    assert_eq!(set["changes"]["monthly_limit"]["amount"], "100000.00", "{set}");
    expect_event(&events, "team.budget_removed", &team, &admin.id);
    expect_event(&events, "policy.created", &policy, &admin.id);
    expect_event(&events, "policy.deleted", &policy, &admin.id);
    let prefs = expect_event(&events, "user.notifications_changed", &member.id, &member.id);
    assert_eq!(prefs["changes"]["off"], json!(["request_approved"]), "{prefs}");
    let created = expect_event(&events, "webhook.created", &hook_id, &admin.id);
    assert_eq!(created["changes"]["host"], "hooks.example.com");
    expect_event(&events, "webhook.deleted", &hook_id, &admin.id);
    expect_event(&events, "request.submitted", &cancelled, &member.id);
    expect_event(&events, "request.cancelled", &cancelled, &member.id);
    let reject = expect_event(&events, "request.rejected", &rejected, &admin.id);
    assert_eq!(reject["changes"]["comment"], "no need");
    expect_event(&events, "request.approved", &db, &admin.id);
    let started = expect_event(&events, "request.run_started", &db, system);
    assert_eq!(
        started["changes"]["status"],
        json!({ "from": "approved", "to": "provisioning" })
    );
    expect_event(&events, "request.ready", &db, system);
    assert_eq!(
        find(&events, "request.credentials_read", &db).len(),
        2,
        "two reads, two events"
    );
    expect_event(&events, "request.credentials_read", &db, &member.id);
    expect_event(&events, "request.rotation_requested", &db, &member.id);
    let rotation = expect_event(&events, "request.credentials_rotated", &db, system);
    assert_eq!(rotation["changes"]["version"], 2);
    expect_event(&events, "request.extended", &short, &member.id);
    expect_event(&events, "request.deletion_requested", &db, &member.id);
    expect_event(&events, "request.deleted", &db, system);
    expect_event(&events, "request.failed", &failing, system);
    expect_event(&events, "request.retried", &failing, &admin.id);
    let deletion = expect_event(&events, "user.deleted", &leaver.id, &admin.id);
    assert_eq!(deletion["changes"]["cancelled_requests"], json!([orphan]));
    // The cancellation also has its own event, on the request.
    expect_event(&events, "request.cancelled", &orphan, &admin.id);
    expect_event(&events, "auth.logged_out", &changer.id, &changer.id);
    // Every kind the log knows was seen here (ssi-admin's user.created included).
    let seen: std::collections::BTreeSet<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in shared::domain::audit::Action::ALL {
        // A retried failure: in its own test below; a webhook's disabling: in
        // tests/tests/notifications.rs.
        if matches!(
            action,
            shared::domain::audit::Action::RunFailed | shared::domain::audit::Action::WebhookDisabled
        ) {
            continue;
        }
        assert!(seen.contains(action.as_str()), "no {} event at all", action.as_str());
    }

    // AND no event holds a password, a password hash or a credential
    for needle in [
        PASSWORD,
        new_password,
        &secret,
        &rotated_secret,
        &hook_secret,
        "a-token-in-the-path",
        "$argon2",
        "guess guess guess",
        "wrong password",
    ] {
        assert!(!text.contains(needle), "the audit log holds `{needle}`");
    }
    // AND the chain holds, and no audit item expires
    let check = verify(app, &admin.token).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["events"].as_u64(), Some(events.len() as u64));
    for item in event_items(app).await {
        assert!(!item.contains_key("expires_at"), "an audit item with a TTL: {item:?}");
    }
}

/// Polls a request until `done` holds (60 s at most).
async fn wait_until(w: &common::provision::World, id: &str, done: impl Fn(&Value) -> bool) {
    for _ in 0..600 {
        if done(&get(w, id).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {id} never got there: {}", get(w, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_will_be_retried_is_recorded_as_a_failed_run() {
    let w = world().await;
    let id = submit(&w, "postgres", "audit-flaky", json!({})).await;
    approve(&w, &id).await;
    let port = dead_port().to_string();
    let (_stop, rx) = watch::channel(false);
    runner(&w, &[("RUNNER_MAX_ATTEMPTS", "3")], &[("PGPORT", &port)])
        .run_job(id.parse().unwrap(), rx)
        .await
        .expect("run");
    let (_, events) = export(&w.app, &w.admin.token).await;
    let failed = expect_event(&events, "request.run_failed", &id, "system");
    assert_eq!(failed["changes"]["gave_up"], false, "{failed}");
    assert!(failed["changes"]["retry_at"].is_string(), "{failed}");
    assert!(find(&events, "request.failed", &id).is_empty(), "not failed yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_actions_keep_one_unbroken_chain() {
    // GIVEN an admin
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // WHEN 20 teams are created at once
    let creations = (0..20).map(|i| {
        let (app, token) = (&app, admin.token.clone());
        async move {
            app.post(
                "/api/v1/teams",
                Some(&token),
                json!({ "name": format!("concurrent {i}") }),
            )
            .await
            .status
        }
    });
    let statuses = futures::future::join_all(creations).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");

    // THEN the events are numbered 1..=22 with no gap and no fork, each linked to the one
    // before, and the check agrees
    let (_, events) = export(&app, &admin.token).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(events.iter().filter(|e| e["action"] == "team.created").count(), 20);
    for pair in events.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "{pair:#?}");
        assert!(
            pair[1]["at"].as_str() >= pair[0]["at"].as_str(),
            "time went backwards: {pair:#?}"
        );
    }
    assert_eq!(events[0]["prev_hash"], shared::domain::audit::GENESIS);
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["head"]["seq"].as_u64(), Some(events.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_in_separate_processes_race_through_the_head_and_keep_one_chain() {
    // GIVEN four stores on one table, each with its own client and its own turn, as
    // four Lambda instances have (the writers of one store queue; these race)
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let stores: Vec<shared::store::Store> = (0..4)
        .map(|_| shared::store::Store::new(app.app.store.client().clone(), app.app.store.table()))
        .collect();

    // WHEN each records six events at once
    let writes = stores.iter().enumerate().flat_map(|(process, store)| {
        (0..6).map(move |i| {
            let event =
                shared::domain::audit::Origin::system(shared::clock::format_timestamp(time::OffsetDateTime::now_utc()))
                    .event(
                        shared::domain::audit::Action::TeamUpdated,
                        shared::domain::audit::Target::team(uuid::Uuid::nil()),
                    )
                    .fact("process", process)
                    .fact("round", i);
            store.record(event)
        })
    });
    let results = futures::future::join_all(writes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // THEN all 24 are in the one chain, numbered on without gap or fork
    let (_, events) = export(&app, &admin.token).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(events.iter().filter(|e| e["action"] == "team.updated").count(), 24);
    for pair in events.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "{pair:#?}");
    }
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["ok"], true, "{check}");
}

/// Some events to tamper with: a team, renamed a few times.
async fn some_events(app: &TestApp) -> (common::TestUser, Vec<Value>) {
    let admin = app.admin().await;
    let team = app.team(&admin, "tamper target").await;
    for i in 0..4 {
        app.put(
            &format!("/api/v1/teams/{team}"),
            Some(&admin.token),
            json!({ "name": format!("tamper target {i}") }),
        )
        .await
        .expect(200);
    }
    let (_, events) = export(app, &admin.token).await;
    assert!(events.len() >= 6, "{events:#?}");
    assert_eq!(verify(app, &admin.token).await["ok"], true);
    (admin, events)
}

fn key_of(event: &Value) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("PK".to_string(), AttributeValue::S("AUDIT".into())),
        (
            "SK".to_string(),
            AttributeValue::S(format!(
                "EVENT#{}#{:012}",
                event["at"].as_str().expect("at"),
                event["seq"].as_u64().expect("seq")
            )),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_edited_in_the_table_is_found_by_the_check_and_by_the_export_script() {
    // GIVEN a few events, checked intact (by the API and by the outside script)
    let app = TestApp::spawn().await;
    let (admin, events) = some_events(&app).await;
    let (ndjson, _) = export(&app, &admin.token).await;
    let clean = verifier(&ndjson);
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stdout));

    // WHEN event 3's action is rewritten directly in DynamoDB
    let target = &events[2];
    app.app
        .store
        .client()
        .update_item()
        .table_name(&app.table)
        .set_key(Some(key_of(target)))
        .update_expression("SET #action = :a")
        .expression_attribute_names("#action", "action")
        .expression_attribute_values(":a", AttributeValue::S("team.deleted".into()))
        .send()
        .await
        .expect("tamper");

    // THEN the check names event 3 as the first broken link
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["first_broken"]["seq"], 3, "{check}");
    // AND so does the outside script on a new export
    let (ndjson, _) = export(&app, &admin.token).await;
    let out = verifier(&ndjson);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seq 3"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_event_and_a_cut_off_tail_are_found() {
    // GIVEN a few events
    let app = TestApp::spawn().await;
    let (admin, events) = some_events(&app).await;
    let delete = |event: &Value| {
        let key = key_of(event);
        let app = &app;
        async move {
            app.app
                .store
                .client()
                .delete_item()
                .table_name(&app.table)
                .set_key(Some(key))
                .send()
                .await
                .expect("delete")
        }
    };

    // WHEN the newest event is deleted: THEN the head gives it away
    delete(events.last().expect("last")).await;
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(
        check["first_broken"]["seq"].as_u64(),
        Some(events.len() as u64),
        "{check}"
    );

    // WHEN event 4 is deleted too: THEN it is the first broken link, as missing
    delete(&events[3]).await;
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["first_broken"]["seq"], 4, "{check}");
    assert!(
        check["first_broken"]["reason"]
            .as_str()
            .expect("reason")
            .contains("missing"),
        "{check}"
    );
    let (ndjson, _) = export(&app, &admin.token).await;
    assert_eq!(verifier(&ndjson).status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_list_filters_pages_newest_first_and_refuses_bad_filters() {
    // GIVEN two teams' worth of events
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let red = app.team(&admin, "red team").await;
    let blue = app.team(&admin, "blue team").await;
    let user = app.user().await;
    app.add_member(&admin, &red, &user).await.expect(200);
    app.clock.advance(time::Duration::minutes(5));
    let middle = shared::clock::format_timestamp(app.clock.now());
    app.clock.advance(time::Duration::minutes(5));
    app.put(
        &format!("/api/v1/teams/{blue}"),
        Some(&admin.token),
        json!({ "description": "later" }),
    )
    .await
    .expect(200);
    let list = |query: String| {
        let (app, token) = (&app, admin.token.clone());
        async move { app.get(&format!("/api/v1/audit{query}"), Some(&token)).await }
    };

    // THEN the whole list is newest first
    let all = list(String::new()).await.expect(200).json();
    let seqs: Vec<u64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seqs, sorted);
    // AND each filter keeps only its events
    let by_team = list(format!("?team_id={red}")).await.expect(200).json();
    assert!(by_team["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["team_id"] == red.as_str()));
    assert_eq!(
        by_team["items"].as_array().unwrap().len(),
        2,
        "created and member added: {by_team}"
    );
    let by_action = list("?action=team.created".into()).await.expect(200).json();
    assert_eq!(by_action["items"].as_array().unwrap().len(), 2);
    let by_actor = list(format!("?actor={}", user.id)).await.expect(200).json();
    let actions: Vec<&str> = by_actor["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["auth.login_succeeded", "user.registered"]);
    let by_target = list(format!("?target_type=team&target_id={blue}"))
        .await
        .expect(200)
        .json();
    assert_eq!(by_target["items"].as_array().unwrap().len(), 2);
    let both = list(format!("?team_id={red}&actor={}", admin.id))
        .await
        .expect(200)
        .json();
    assert_eq!(both["items"].as_array().unwrap().len(), 2);
    let later = list(format!("?from={middle}")).await.expect(200).json();
    let later_actions: Vec<&str> = later["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(later_actions, ["team.updated"]);
    let earlier = list(format!("?to={middle}")).await.expect(200).json();
    assert!(!earlier["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "team.updated"));
    // AND pages follow on without gaps or repeats
    let (paged, pages) = common::collect_pages(&app, "/api/v1/audit", &admin.token, 2).await;
    assert!(pages >= 3);
    let paged_seqs: Vec<u64> = paged.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(paged_seqs, seqs);
    // AND a cursor only works with the filters it came from
    let first = list("?limit=1&action=team.created".into()).await.expect(200).json();
    let cursor = first["next_cursor"].as_str().expect("cursor");
    list(format!("?limit=1&cursor={cursor}")).await.expect(400);
    // AND bad filters are 400s
    for bad in [
        "?actor=someone",
        "?action=request.nope",
        "?target_type=galaxy",
        "?team_id=nope",
        "?from=yesterday",
        "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "?limit=0",
        "?colour=red",
    ] {
        let reply = list(bad.into()).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_pages_with_its_cursor_and_keeps_to_its_range() {
    let app = TestApp::spawn().await;
    let (admin, events) = some_events(&app).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/audit/export?limit=2".to_string();
    loop {
        let reply = app.get(&path, Some(&admin.token)).await.expect(200);
        seen.extend(
            reply
                .text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap()),
        );
        match reply.header("x-next-cursor") {
            Some(cursor) => path = format!("/api/v1/audit/export?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=events.len() as u64).collect::<Vec<_>>());
    let first_at = events[0]["at"].as_str().unwrap();
    let range = app
        .get(
            &format!("/api/v1/audit/export?from={first_at}&to={first_at}"),
            Some(&admin.token),
        )
        .await
        .expect(200);
    assert!(range
        .text
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).unwrap()["at"] == first_at));
    app.get("/api/v1/audit/export?limit=5001", Some(&admin.token))
        .await
        .expect(400);
    app.get("/api/v1/audit/export?cursor=forged", Some(&admin.token))
        .await
        .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_their_own_teams_events_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let red = app.team(&admin, "red audit").await;
    let blue = app.team(&admin, "blue audit").await;
    let (alice, bob, loner) = (app.user().await, app.user().await, app.user().await);
    app.add_member(&admin, &red, &alice).await.expect(200);
    app.add_member(&admin, &blue, &bob).await.expect(200);

    let mine = app
        .get("/api/v1/users/me/team/audit", Some(&alice.token))
        .await
        .expect(200)
        .json();
    let items = mine["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e["team_id"] == red.as_str()), "{mine}");
    // Teammates' addresses and browsers are for admins only.
    assert!(items.iter().all(|e| e["context"].is_null()), "{mine}");
    assert!(!mine.to_string().contains(&bob.id));
    app.get(
        &format!("/api/v1/users/me/team/audit?team_id={blue}"),
        Some(&alice.token),
    )
    .await
    .expect(400);
    app.get("/api/v1/users/me/team/audit", Some(&loner.token))
        .await
        .expect(404);
    app.get("/api/v1/audit", Some(&alice.token)).await.expect(403);
    app.get("/api/v1/audit/verify", None).await.expect(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_creations_of_one_name_give_one_team_and_one_event() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let creations = (0..20).map(|_| {
        let (app, token) = (&app, admin.token.clone());
        async move {
            app.post("/api/v1/teams", Some(&token), json!({ "name": "only one" }))
                .await
                .status
        }
    });
    let statuses = futures::future::join_all(creations).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    let (_, events) = export(&app, &admin.token).await;
    assert_eq!(events.iter().filter(|e| e["action"] == "team.created").count(), 1);
    assert_eq!(verify(&app, &admin.token).await["ok"], true);
}

async fn put_raw(app: &TestApp, item: HashMap<String, AttributeValue>) {
    app.app
        .store
        .client()
        .put_item()
        .table_name(&app.table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

fn head_key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("PK".to_string(), AttributeValue::S("META#AUDITHEAD".into())),
        ("SK".to_string(), AttributeValue::S("META#AUDITHEAD".into())),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_head_removed_changes_are_refused_whole_and_the_check_says_why() {
    // GIVEN a few events, then the head item deleted
    let app = TestApp::spawn().await;
    let (admin, events) = some_events(&app).await;
    let team = events.iter().find(|e| e["action"] == "team.created").expect("team")["target"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app
        .get(&format!("/api/v1/teams/{team}"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    app.app
        .store
        .client()
        .delete_item()
        .table_name(&app.table)
        .set_key(Some(head_key()))
        .send()
        .await
        .expect("delete head");

    // WHEN a change is asked for: THEN it is refused (503), and not made: the chain
    // would otherwise start again from event 1
    let reply = app
        .put(
            &format!("/api/v1/teams/{team}"),
            Some(&admin.token),
            json!({ "description": "after" }),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    let after = app
        .get(&format!("/api/v1/teams/{team}"), Some(&admin.token))
        .await
        .expect(200)
        .json();
    assert_eq!(after["description"], before["description"]);
    let (_, now) = export(&app, &admin.token).await;
    assert_eq!(now.len(), events.len(), "no event was written");
    // AND the check names the missing head
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["ok"], false);
    assert!(
        check["first_broken"]["reason"].as_str().unwrap().contains("head"),
        "{check}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_edited_out_of_shape_or_forged_past_the_head_is_found() {
    // GIVEN a few events
    let app = TestApp::spawn().await;
    let (admin, events) = some_events(&app).await;

    // WHEN a forged, well-formed event is appended after the head (with a valid hash)
    let last: shared::domain::audit::ChainedEvent = serde_json::from_value(events.last().unwrap().clone()).unwrap();
    let head = shared::domain::audit::ChainHead {
        seq: last.seq,
        hash: last.hash.clone(),
        at: last.at.clone(),
    };
    let forged_event = shared::domain::audit::Origin::system(last.at.clone()).event(
        shared::domain::audit::Action::TeamDeleted,
        shared::domain::audit::Target::team(uuid::Uuid::nil()),
    );
    let (forged, _) = shared::domain::audit::chain(&head, &[forged_event]);
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&forged[0]).unwrap();
    item.insert("PK".into(), AttributeValue::S("AUDIT".into()));
    item.insert("entity_type".into(), AttributeValue::S("AUDIT".into()));
    item.insert(
        "SK".into(),
        AttributeValue::S(format!("EVENT#{}#{:012}", forged[0].at, forged[0].seq)),
    );
    put_raw(&app, item).await;
    // THEN the check finds it past the head
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["first_broken"]["seq"].as_u64(), Some(last.seq + 1), "{check}");
    assert!(
        check["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("past the head"),
        "{check}"
    );
    // AND the outside script, given the export's head, finds it too
    let reply = app.get("/api/v1/audit/export", Some(&admin.token)).await.expect(200);
    let head_header = reply.header("x-audit-head").expect("head header").to_string();
    assert_eq!(head_header, format!("{}:{}", last.seq, last.hash));
    assert_eq!(
        verifier_with(&reply.text, &["--head", &head_header]).status.code(),
        Some(1)
    );

    // WHEN event 2 is edited out of shape (its seq made a string)
    app.app
        .store
        .client()
        .update_item()
        .table_name(&app.table)
        .set_key(Some(key_of(&events[1])))
        .update_expression("SET seq = :s")
        .expression_attribute_values(":s", AttributeValue::S("two".into()))
        .send()
        .await
        .expect("tamper");
    // THEN the check reports event 2 as unreadable (no 500), and the lists still answer
    let check = verify(&app, &admin.token).await;
    assert_eq!(check["first_broken"]["seq"], 2, "{check}");
    assert!(
        check["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("not a readable event"),
        "{check}"
    );
    app.get("/api/v1/audit", Some(&admin.token)).await.expect(200);
    let (ndjson, _) = export(&app, &admin.token).await;
    assert_eq!(verifier(&ndjson).status.code(), Some(1), "the gap shows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_input_that_is_no_email_never_reaches_the_log_and_a_throttle_is_recorded_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // A password typed into the email field, short and long.
    let typed = "Tr0ub4dor&3-not-an-email";
    app.login(typed, "whatever it is").await.expect(401);
    app.login(&"x".repeat(400), "whatever it is").await.expect(401);
    // A throttled account, refused several times in its window.
    let victim = app.user().await;
    let mut refusals = 0;
    for _ in 0..16 {
        if app.login(&victim.email, "guess guess guess").await.status == 429 {
            refusals += 1;
        }
    }
    assert!(refusals >= 3, "{refusals}");

    let (text, events) = export(&app, &admin.token).await;
    assert!(!text.contains(typed), "the raw login input is in the log");
    assert_eq!(
        find(&events, "auth.login_failed", shared::auth::NOT_AN_EMAIL).len(),
        2,
        "both attempts recorded, without their input"
    );
    let throttles = find(&events, "auth.throttled", &victim.email.to_lowercase());
    assert_eq!(throttles.len(), 1, "one event per throttled window: {throttles:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssi_admin_audit_verify_reports_an_intact_and_a_broken_chain() {
    let app = TestApp::spawn().await;
    let (_admin, events) = some_events(&app).await;
    let run = || {
        // target/debug/deps/audit-<hash> → target/debug/ssi-admin
        let exe = std::env::current_exe().expect("test binary");
        let bin = exe
            .parent()
            .and_then(std::path::Path::parent)
            .expect("target")
            .join("ssi-admin");
        assert!(
            bin.is_file(),
            "{} is missing: `cargo test --workspace` builds it",
            bin.display()
        );
        let out = std::process::Command::new(bin)
            .args(["audit", "verify"])
            .env("TABLE_NAME", &app.table)
            .env("DYNAMODB_ENDPOINT", common::endpoint())
            .output()
            .expect("ssi-admin runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run();
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert!(stdout.contains(&format!("{} events", events.len())), "{stdout}");
    app.app
        .store
        .client()
        .delete_item()
        .table_name(&app.table)
        .set_key(Some(key_of(&events[2])))
        .send()
        .await
        .expect("delete");
    let (code, _, stderr) = run();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("broken at event 3"), "{stderr}");
}
