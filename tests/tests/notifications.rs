//! Notifications (issue #17), end to end: changes through the API write outbox items
//! in their own transactions; a notifier delivers them to a real SMTP sink (aiosmtpd)
//! and to webhook receivers on 127.0.0.1.

mod common;

use common::{
    notify::{config, drain, free_port, notifier, MailSink, Receiver},
    provision::{self, REQUESTS},
    TestApp, TestUser, PASSWORD,
};
use serde_json::{json, Value};
use shared::{
    clock::format_timestamp,
    notify::signature,
    store::{Claim, RunOutcome},
};
use std::time::Duration;

struct World {
    app: TestApp,
    admins: [TestUser; 2],
    member: TestUser,
    outsider: TestUser,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let admins = [app.admin().await, app.admin().await];
    let member = app.user().await;
    let outsider = app.user().await;
    let team = app
        .team(
            &admins[0],
            &format!("team {}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        )
        .await;
    app.add_member(&admins[0], &team, &member).await.expect(200);
    World {
        app,
        admins,
        member,
        outsider,
    }
}

async fn submit(w: &World, name: &str) -> String {
    w.app
        .post(
            REQUESTS,
            Some(&w.member.token),
            json!({ "resource_type": "s3_bucket", "name": name, "justification": "static files" }),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn now() -> String {
    format_timestamp(time::OffsetDateTime::now_utc())
}

#[tokio::test]
async fn each_event_produces_exactly_one_message_to_the_right_people() {
    let w = world().await;
    let sink = MailSink::start().await;
    let n = notifier(&w.app.app.store, sink.port, config(3));
    let [a1, a2] = &w.admins;

    // Submission: each admin, once; nobody else.
    let first = submit(&w, "assets").await;
    // Approval and rejection: the requester, with the reason.
    w.app
        .post(&format!("{REQUESTS}/{first}/approve"), Some(&a1.token), json!({}))
        .await
        .expect(200);
    let second = submit(&w, "logs").await;
    w.app
        .post(
            &format!("{REQUESTS}/{second}/reject"),
            Some(&a2.token),
            json!({ "reason": "use the shared bucket" }),
        )
        .await
        .expect(200);
    // A run that gives up: the requester hears it failed (the runner's outcome,
    // written here as the runner writes it, without Terraform).
    let store = &w.app.app.store;
    let id = uuid::Uuid::parse_str(&first).unwrap();
    let lease = format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::minutes(5));
    let Claim::Claimed(claimed) = store.claim_job(id, "test-runner", &now(), &lease).await.unwrap() else {
        panic!("the job could be claimed");
    };
    let failed = RunOutcome::Failed {
        error: "the engine was unreachable".into(),
        retry_at: None,
    };
    assert!(store
        .finish_job(&claimed, "test-runner", &failed, &now())
        .await
        .unwrap());
    // A password change: a security notice to the user.
    w.app
        .put(
            "/api/v1/users/me/password",
            Some(&w.outsider.token),
            json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }),
        )
        .await
        .expect(204);

    drain(&n).await;
    // A second notifier pass later finds nothing more to send.
    drain(&n).await;

    for admin in [a1, a2] {
        assert_eq!(
            sink.to(&admin.email, "\"assets\" submitted").len(),
            1,
            "admin mails: {:?}",
            sink.to(&admin.email, "")
        );
        assert_eq!(sink.to(&admin.email, "\"logs\" submitted").len(), 1);
    }
    let member = &w.member.email;
    assert_eq!(sink.to(member, "submitted").len(), 0, "the requester is no admin");
    let approved = sink.to(member, "s3_bucket \"assets\" is now approved");
    assert_eq!(approved.len(), 1, "{:?}", sink.mails());
    let rejected = sink.to(member, "s3_bucket \"logs\" is now rejected");
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0].text.contains("Reason: use the shared bucket"),
        "{}",
        rejected[0].text
    );
    assert!(rejected[0].html.contains("use the shared bucket"));
    let failed = sink.to(member, "\"assets\" is now failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].text.contains(&format!("/api/v1/requests/{first}")),
        "a link to the request"
    );
    assert_eq!(sink.to(&w.outsider.email, "Your password was changed").len(), 1);
    // 2 submissions x 2 admins + approved + rejected + failed + password.
    assert_eq!(
        sink.mails().len(),
        8,
        "{:#?}",
        sink.mails().iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn nothing_is_lost_when_the_mail_server_is_down_during_a_change() {
    let w = world().await;
    let port = free_port();
    // The sink is down when the change happens and when the notifier first tries.
    let n = notifier(&w.app.app.store, port, config(50));
    let id = submit(&w, "assets").await;
    let pass = n.run_once(time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((pass.sent, pass.retried), (0, 2), "{pass:?}");
    // The API did not wait for it: the request is there, pending.
    let request = w
        .app
        .get(&format!("{REQUESTS}/{id}"), Some(&w.member.token))
        .await
        .expect(200);
    assert_eq!(request.json()["status"], "pending");

    let root = std::env::temp_dir().join(format!("ssi-mail-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&root).unwrap();
    let sink = MailSink::start_at(port, root.join("maildir")).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // past the back-off
    drain(&n).await;
    for admin in &w.admins {
        assert_eq!(sink.to(&admin.email, "\"assets\" submitted").len(), 1);
    }
    assert_eq!(sink.mails().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_notifiers_racing_never_send_twice() {
    let w = world().await;
    let sink = MailSink::start().await;
    for i in 0..6 {
        submit(&w, &format!("bucket-{i}")).await;
    }
    let (one, two) = (
        notifier(&w.app.app.store, sink.port, config(3)),
        notifier(&w.app.app.store, sink.port, config(3)),
    );
    let (a, b) = tokio::join!(
        async {
            let mut sent = 0;
            for _ in 0..10 {
                sent += one.run_once(time::OffsetDateTime::now_utc()).await.unwrap().sent;
            }
            sent
        },
        async {
            let mut sent = 0;
            for _ in 0..10 {
                sent += two.run_once(time::OffsetDateTime::now_utc()).await.unwrap().sent;
            }
            sent
        }
    );
    // 6 notices x 2 admins, each sent by exactly one of the two.
    assert_eq!(a + b, 12, "sent {a} + {b}");
    let mails = sink.mails();
    assert_eq!(mails.len(), 12);
    for admin in &w.admins {
        for i in 0..6 {
            assert_eq!(sink.to(&admin.email, &format!("\"bucket-{i}\" submitted")).len(), 1);
        }
    }
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_marked_failed_and_shown_to_admins() {
    let w = world().await;
    let n = notifier(&w.app.app.store, free_port(), config(2));
    submit(&w, "assets").await;
    for _ in 0..4 {
        n.run_once(time::OffsetDateTime::now_utc()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let page = w
        .app
        .get("/api/v1/admin/notifications?status=failed", Some(&w.admins[0].token))
        .await
        .expect(200)
        .json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    for item in items {
        assert_eq!(item["status"], "failed");
        assert_eq!(item["attempts"], 2);
        assert_eq!(item["kind"], "request_submitted");
        assert_eq!(item["last_error"], "could not reach the SMTP server");
    }
    w.app
        .get("/api/v1/admin/notifications", Some(&w.member.token))
        .await
        .expect(403);
    w.app
        .get("/api/v1/admin/notifications?status=sent", Some(&w.admins[0].token))
        .await
        .expect(400);
}

#[tokio::test]
async fn a_kind_turned_off_is_not_sent_but_security_notices_cannot_be_turned_off() {
    let w = world().await;
    let sink = MailSink::start().await;
    let n = notifier(&w.app.app.store, sink.port, config(3));
    let me = &w.member;
    let settings = w
        .app
        .get("/api/v1/users/me/notifications", Some(&me.token))
        .await
        .expect(200)
        .json();
    assert_eq!(settings["notifications"]["request_approved"], true);
    assert_eq!(
        settings["always_on"],
        json!(["credentials_rotated", "password_changed"])
    );

    let off = w
        .app
        .put(
            "/api/v1/users/me/notifications",
            Some(&me.token),
            json!({ "notifications": { "request_approved": false, "request_ready": true } }),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(off["notifications"]["request_approved"], false);
    for kind in ["password_changed", "credentials_rotated"] {
        let refused = w
            .app
            .put(
                "/api/v1/users/me/notifications",
                Some(&me.token),
                json!({ "notifications": { kind: false } }),
            )
            .await
            .expect(422);
        assert!(refused.text.contains("security notice"), "{}", refused.text);
    }
    w.app
        .put(
            "/api/v1/users/me/notifications",
            Some(&me.token),
            json!({ "notifications": { "nope": false } }),
        )
        .await
        .expect(422);
    w.app
        .put(
            "/api/v1/users/me/notifications",
            Some(&me.token),
            json!({ "notifications": {}, "x": 1 }),
        )
        .await
        .expect(422);
    // Still off after the refused updates.
    let now_settings = w
        .app
        .get("/api/v1/users/me/notifications", Some(&me.token))
        .await
        .expect(200)
        .json();
    assert_eq!(now_settings["notifications"]["request_approved"], false);

    let id = submit(&w, "assets").await;
    w.app
        .post(&format!("{REQUESTS}/{id}/approve"), Some(&w.admins[0].token), json!({}))
        .await
        .expect(200);
    w.app
        .put(
            "/api/v1/users/me/password",
            Some(&me.token),
            json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }),
        )
        .await
        .expect(204);
    drain(&n).await;
    assert_eq!(sink.to(&me.email, "approved").len(), 0, "turned off");
    assert_eq!(
        sink.to(&me.email, "Your password was changed").len(),
        1,
        "security notices always go"
    );
    // The admins still got theirs.
    assert_eq!(sink.to(&w.admins[0].email, "submitted").len(), 1);
}

async fn register_hook(w: &World, url: &str, events: Value, slack: bool) -> Value {
    w.app
        .post(
            "/api/v1/webhooks",
            Some(&w.admins[0].token),
            json!({ "url": url, "events": events, "slack": slack }),
        )
        .await
        .expect(201)
        .json()
}

#[tokio::test]
async fn webhook_deliveries_are_signed_and_a_tampered_payload_fails_verification() {
    let w = world().await;
    let sink = MailSink::start().await;
    let n = notifier(&w.app.app.store, sink.port, config(3));
    let receiver = Receiver::start(204, &[]).await;
    let slack_receiver = Receiver::start(200, &[]).await;
    let hook = register_hook(&w, &receiver.url, json!(["request_submitted"]), false).await;
    let secret = hook["secret"].as_str().expect("the secret, once").to_string();
    assert!(secret.starts_with("whsec_"));
    register_hook(
        &w,
        &slack_receiver.url,
        json!(["request_submitted", "request_rejected"]),
        true,
    )
    .await;
    // Never shown again.
    let list = w
        .app
        .get("/api/v1/webhooks", Some(&w.admins[0].token))
        .await
        .expect(200);
    assert!(
        !list.text.contains(&secret) && !list.text.contains("secret"),
        "{}",
        list.text
    );
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 2);

    let id = submit(&w, "assets").await;
    drain(&n).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1, "exactly one delivery");
    let delivery = &got[0];
    assert_eq!(delivery.path, "/hook");
    assert_eq!(delivery.header("x-ssi-event"), Some("request_submitted"));
    let header = delivery.header("x-ssi-signature").expect("signed");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(signature::verify(&secret, header, &delivery.body, now, 300), Ok(()));
    let event: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(event["type"], "request_submitted");
    assert_eq!(event["data"]["request_id"], id.as_str());
    // Tampered: the body, the timestamp, or another secret.
    let mut tampered = delivery.body.clone();
    let at = tampered.iter().position(|b| *b == b'a').unwrap();
    tampered[at] = b'b';
    assert_eq!(
        signature::verify(&secret, header, &tampered, now, 300),
        Err(signature::SignatureError::Mismatch)
    );
    let t: i64 = header
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("t=")
        .parse()
        .unwrap();
    let moved = header.replacen(&format!("t={t}"), &format!("t={}", t + 1), 1);
    assert!(signature::verify(&secret, &moved, &delivery.body, now, 300).is_err());
    assert!(signature::verify(&signature::new_secret(), header, &delivery.body, now, 300).is_err());

    // The Slack-compatible hook gets `{"text": …}` only.
    let slack = slack_receiver.received();
    assert_eq!(slack.len(), 1);
    let body: Value = serde_json::from_slice(&slack[0].body).unwrap();
    assert!(
        body["text"].as_str().unwrap().contains("\"assets\" submitted"),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1);
    // Deleted hooks get nothing more.
    let hook_id = hook["id"].as_str().unwrap();
    w.app
        .delete(&format!("/api/v1/webhooks/{hook_id}"), Some(&w.admins[0].token))
        .await
        .expect(204);
    w.app
        .delete(&format!("/api/v1/webhooks/{hook_id}"), Some(&w.admins[0].token))
        .await
        .expect(404);
    submit(&w, "logs").await;
    drain(&n).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(slack_receiver.received().len(), 2);
}

#[tokio::test]
async fn webhook_redirects_are_not_followed() {
    let w = world().await;
    let sink = MailSink::start().await;
    let n = notifier(&w.app.app.store, sink.port, config(1));
    let target = Receiver::start(200, &[]).await;
    let redirector = Receiver::start(302, &[("location", &target.url)]).await;
    register_hook(&w, &redirector.url, json!(["request_submitted"]), false).await;
    submit(&w, "assets").await;
    drain(&n).await;
    assert_eq!(redirector.received().len(), 1);
    assert!(target.received().is_empty(), "the redirect was followed");
    let failed = w
        .app
        .get("/api/v1/admin/notifications", Some(&w.admins[0].token))
        .await
        .expect(200)
        .json();
    let webhook_failures: Vec<&Value> = failed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "webhook")
        .collect();
    assert_eq!(webhook_failures.len(), 1, "{failed}");
    assert_eq!(
        webhook_failures[0]["last_error"],
        "the webhook answered 302 (redirects are not followed)"
    );
}

#[tokio::test]
async fn webhook_urls_must_be_https_unless_the_local_configuration_allows_loopback() {
    // AWS-like configuration: no loopback.
    let strict = TestApp::spawn_with(&common::endpoint(), |c| c.webhook_allow_loopback = false).await;
    let admin = strict.admin().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://hooks.example.com/x",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest",
        "https://user:pw@hooks.example.com/",
        "ftp://hooks.example.com/",
    ] {
        let reply = strict
            .post(
                "/api/v1/webhooks",
                Some(&admin.token),
                json!({ "url": url, "events": ["request_ready"] }),
            )
            .await
            .expect(422);
        assert!(reply.text.contains("\"url\""), "{url}: {}", reply.text);
    }
    strict
        .post(
            "/api/v1/webhooks",
            Some(&admin.token),
            json!({ "url": "https://hooks.example.com/ssi", "events": ["request_ready"] }),
        )
        .await
        .expect(201);
    strict
        .post(
            "/api/v1/webhooks",
            Some(&admin.token),
            json!({ "url": "https://hooks.example.com/ssi", "events": ["password_changed"] }),
        )
        .await
        .expect(422);
    // The local configuration: loopback over http, nothing else over http.
    let local = TestApp::spawn().await;
    let admin = local.admin().await;
    local
        .post(
            "/api/v1/webhooks",
            Some(&admin.token),
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["request_ready"] }),
        )
        .await
        .expect(201);
    local
        .post(
            "/api/v1/webhooks",
            Some(&admin.token),
            json!({ "url": "http://hooks.example.com/x", "events": ["request_ready"] }),
        )
        .await
        .expect(422);
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_disabled_and_the_admins_are_told() {
    let w = world().await;
    let sink = MailSink::start().await;
    // One attempt per delivery, disabled after 2 deliveries in a row failed.
    let n = notifier(&w.app.app.store, sink.port, config(1));
    let broken = Receiver::start(500, &[]).await;
    let hook = register_hook(&w, &broken.url, json!(["request_submitted"]), false).await;
    submit(&w, "one").await;
    drain(&n).await;
    submit(&w, "two").await;
    drain(&n).await;
    submit(&w, "three").await;
    drain(&n).await;
    assert_eq!(broken.received().len(), 2, "nothing after it was disabled");
    let hooks = w
        .app
        .get("/api/v1/webhooks", Some(&w.admins[0].token))
        .await
        .expect(200)
        .json();
    let shown = &hooks["items"][0];
    assert_eq!(shown["id"], hook["id"]);
    assert_eq!(shown["enabled"], false);
    assert!(
        shown["disabled_reason"].as_str().unwrap().contains("answered 500"),
        "{shown}"
    );
    for admin in &w.admins {
        let told = sink.to(&admin.email, "Webhook disabled");
        assert_eq!(
            told.len(),
            1,
            "{:?}",
            sink.mails().iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>()
        );
        assert!(told[0].text.contains(&broken.url));
    }
    // AND the disabling is in the audit log, by the system (the URL's host only)
    let export = w
        .app
        .get("/api/v1/audit/export", Some(&w.admins[0].token))
        .await
        .expect(200);
    let disabled: Vec<Value> = export
        .text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "webhook.disabled" && e["target"]["id"] == hook["id"])
        .collect();
    assert_eq!(disabled.len(), 1, "{}", export.text);
    assert_eq!(disabled[0]["actor"], "system");
    let created: Vec<Value> = export
        .text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "webhook.created" && e["target"]["id"] == hook["id"])
        .collect();
    assert_eq!(created[0]["changes"]["host"], "127.0.0.1", "{:?}", created);
    assert!(!export.text.contains(&broken.url), "the full URL is not recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_expiry_warning_goes_out_once_three_days_ahead() {
    let w = world().await;
    let sink = MailSink::start().await;
    let n = notifier(&w.app.app.store, sink.port, config(3));
    let far = format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(20));
    let soon = format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(2));
    let create = |name: &str, at: &str| json!({ "resource_type": "s3_bucket", "name": name, "justification": "x", "expires_at": at });
    let later = w
        .app
        .post(REQUESTS, Some(&w.member.token), create("later", &far))
        .await
        .expect(201)
        .json();
    w.app
        .post(REQUESTS, Some(&w.member.token), create("soon", &soon))
        .await
        .expect(201);
    let store = &w.app.app.store;
    // Two sweeps racing: one warning.
    let at = now();
    let (a, b) = tokio::join!(shared::expiry::warn(store, &at), shared::expiry::warn(store, &at));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1);
    assert!(
        shared::expiry::warn(store, &now()).await.unwrap().is_empty(),
        "sent once"
    );
    drain(&n).await;
    let warned = sink.to(&w.member.email, "\"soon\" expires at");
    assert_eq!(
        warned.len(),
        1,
        "{:?}",
        sink.mails().iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert_eq!(sink.to(&w.member.email, "expires at").len(), 1);
    // The other is warned when its time comes: 3 days before.
    let id = later["id"].as_str().unwrap();
    let just_before =
        format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(17) - time::Duration::hours(1));
    assert!(shared::expiry::warn(store, &just_before).await.unwrap().is_empty());
    let after =
        format_timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(17) + time::Duration::minutes(1));
    assert_eq!(
        shared::expiry::warn(store, &after).await.unwrap(),
        [uuid::Uuid::parse_str(id).unwrap()]
    );
}

/// The real pipeline: a postgres request is provisioned, rotated and deleted by a
/// worker process with its notifier (the SMTP sink), and the generated passwords
/// appear in no mail and in none of the worker's logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_rotated_and_deleted_mails_carry_no_secret() {
    let w = provision::world().await;
    let sink = MailSink::start().await;
    let port = sink.port.to_string();
    let mut child = provision::spawn_child_worker(
        &w,
        &[
            ("SMTP_PORT", &port),
            ("NOTIFY_RETRY_BASE_MS", "200"),
            ("NOTIFY_POLL_MS", "200"),
            ("NOTIFY_LEASE_SECS", "20"),
            ("NOTIFY_SEND_TIMEOUT_SECS", "5"),
        ],
    );
    let id = provision::submit(&w, "postgres", "notify-db", json!({})).await;
    provision::approve(&w, &id).await;
    let ready = provision::wait_for(&w, &id, &["ready", "failed"], Duration::from_secs(120)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let first_password = provision::secret_output(&w, &id, "password");
    w.app
        .post(
            &format!("{REQUESTS}/{id}/credentials/rotate"),
            Some(&w.member.token),
            json!({}),
        )
        .await
        .expect(202);
    let started = std::time::Instant::now();
    loop {
        let r = provision::get(&w, &id).await;
        if r["credentials"]["version"] == 2 && r["credentials"]["rotating"] == false {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "rotation did not finish: {r}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let second_password = provision::secret_output(&w, &id, "password");
    assert_ne!(first_password, second_password);
    w.app
        .post(&format!("{REQUESTS}/{id}/delete"), Some(&w.member.token), json!({}))
        .await
        .expect(202);
    provision::wait_for(&w, &id, &["deleted"], Duration::from_secs(120)).await;
    // The mails follow within a few polls.
    let started = std::time::Instant::now();
    while sink.to(&w.member.email, "is now deleted").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no deletion mail: {:?}",
            sink.mails()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.start_kill();
    let out = child.wait_with_output().await.expect("worker output");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(logs.contains("notification sent"), "the worker's notifier ran");

    let member = &w.member.email;
    assert_eq!(sink.to(member, "postgres \"notify-db\" is now approved").len(), 1);
    let ready_mail = sink.to(member, "postgres \"notify-db\" is now ready");
    assert_eq!(
        ready_mail.len(),
        1,
        "{:?}",
        sink.mails().iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(ready_mail[0].text.contains(&format!("/api/v1/requests/{id}")));
    assert_eq!(sink.to(member, "credentials rotated").len(), 1);
    assert_eq!(sink.to(member, "is now deleted").len(), 1);
    assert_eq!(sink.to(&w.admin.email, "submitted").len(), 1);
    for password in [&first_password, &second_password] {
        for mail in sink.mails() {
            assert!(
                !mail.raw.contains(password.as_str()),
                "a password in the mail {}",
                mail.subject
            );
            assert!(!mail.text.contains(password.as_str()) && !mail.html.contains(password.as_str()));
        }
        assert!(!logs.contains(password.as_str()), "a password in the worker's logs");
    }
}

/// Not a test on its own: the worker process of the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by ready_rotated_and_deleted_mails_carry_no_secret"]
async fn child_worker_process() {
    provision::child_worker_main().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_crossing_80_and_100_percent_is_told_once_each_to_the_team_and_the_admins() {
    // GIVEN a team (two members) whose budget is one s3_bucket's estimate a month
    let w = world().await;
    let sink = MailSink::start().await;
    let n = notifier(&w.app.app.store, sink.port, config(3));
    let team = w
        .app
        .get("/api/v1/users/me/team", Some(&w.member.token))
        .await
        .expect(200)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let teammate = w.app.user().await;
    w.app.add_member(&w.admins[0], &team, &teammate).await.expect(200);
    let estimate = w
        .app
        .get("/api/v1/resource-types", Some(&w.member.token))
        .await
        .expect(200);
    assert!(estimate.text.contains("s3_bucket"));
    let probe = submit(&w, "probe").await;
    let probe = w
        .app
        .get(&format!("{REQUESTS}/{probe}"), Some(&w.member.token))
        .await
        .expect(200)
        .json();
    let monthly = probe["estimated_monthly_cost"]["amount"].as_str().unwrap().to_string();
    w.app
        .post(
            &format!("{REQUESTS}/{}/cancel", probe["id"].as_str().unwrap()),
            Some(&w.member.token),
            json!({}),
        )
        .await
        .expect(200);
    w.app
        .put(
            &format!("/api/v1/teams/{team}/budget"),
            Some(&w.admins[0].token),
            json!({ "monthly_limit": { "amount": monthly, "currency": "USD" } }),
        )
        .await
        .expect(200);

    // WHEN a bucket is submitted (the admins' mail carries its estimate and budget) and
    // approved, the budget lowered to 90 % of its estimate, and the bucket ready from
    // the start of November 2026 (times in the past: the notifier sends what is due)
    let id = submit(&w, "budgeted").await;
    w.app
        .post(&format!("{REQUESTS}/{id}/approve"), Some(&w.admins[0].token), json!({}))
        .await
        .expect(200);
    let (dollars, cents) = monthly.split_once('.').unwrap();
    let cents: i64 = dollars.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap();
    let lower = cents * 9 / 10;
    w.app
        .put(
            &format!("/api/v1/teams/{team}/budget"),
            Some(&w.admins[0].token),
            json!({ "monthly_limit": { "amount": format!("{}.{:02}", lower / 100, lower % 100), "currency": "USD" } }),
        )
        .await
        .expect(200);
    // Claimed now (the job is due from its approval), ready from November.
    common::ready_through_store(&w.app.app.store, &id, &now(), "2026-11-01T00:00:00.000000Z").await;
    drain(&n).await;
    let submitted = sink.to(&w.admins[1].email, "\"budgeted\" submitted");
    assert_eq!(submitted.len(), 1);
    assert!(
        submitted[0]
            .text
            .contains(&format!("Estimated cost: {monthly} USD a month")),
        "{}",
        submitted[0].text
    );
    assert!(submitted[0].text.contains("Budget: within"), "{}", submitted[0].text);
    let store = &w.app.app.store;
    let at = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();

    // THEN nothing at 456 hours (the lowered limit is reached at about 657 hours of
    // the 730-hour month rate) …
    assert!(shared::budget_alerts::sweep(store, at("2026-11-20T00:00:00Z"))
        .await
        .unwrap()
        .is_empty());
    // … 80 % at 552 hours, once, even when two sweeps race …
    let (a, b) = tokio::join!(
        shared::budget_alerts::sweep(store, at("2026-11-24T00:00:00Z")),
        shared::budget_alerts::sweep(store, at("2026-11-24T00:00:00Z"))
    );
    let mut crossed = a.unwrap();
    crossed.extend(b.unwrap());
    assert_eq!(crossed, [(team.parse().unwrap(), 80)]);
    // … and 100 % at 696 hours (80 % is not told again)
    assert_eq!(
        shared::budget_alerts::sweep(store, at("2026-11-30T00:00:00Z"))
            .await
            .unwrap(),
        [(team.parse().unwrap(), 100)]
    );
    assert!(shared::budget_alerts::sweep(store, at("2026-11-30T01:00:00Z"))
        .await
        .unwrap()
        .is_empty());
    drain(&n).await;
    for person in [&w.member, &teammate, &w.admins[0], &w.admins[1]] {
        for percent in ["80 %", "100 %"] {
            let told = sink.to(&person.email, &format!("reached {percent} of its budget"));
            assert_eq!(
                told.len(),
                1,
                "{} {percent}: {:?}",
                person.email,
                sink.mails().iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>()
            );
            assert!(told[0].text.contains("2026-11"), "{}", told[0].text);
        }
    }
    assert!(
        sink.to(&w.outsider.email, "budget").is_empty(),
        "not the outsider's team"
    );
}
