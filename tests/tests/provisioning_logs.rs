//! No log line of a whole provisioning run carries a generated secret, even at trace
//! level: this binary captures every line of the API and of an in-process runner
//! while a postgres request is provisioned, its credentials are read (plain and
//! sealed) and rotated. Each credentials read leaves a line saying who read which
//! version.

mod common;

use common::provision::*;
use runner::worker::JobResult;
use serde_json::json;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::watch;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioning_run_logs_no_generated_secret_and_records_every_credentials_read() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(shared::logging::filter("trace"))
        .with_writer(move || writer.clone())
        .init();

    // GIVEN a postgres request provisioned by a runner in this process
    let w = world().await;
    let id = ready_request(&w, "postgres", "logged-db").await;
    let first = read_credentials(&w, &id, Some(&w.member.token))
        .await
        .expect(200)
        .json();
    let v1 = first["credentials"]["password"].as_str().unwrap().to_string();
    let uri = first["credentials"]["uri"].as_str().unwrap().to_string();

    // AND read sealed, and rotated
    let identity = age::x25519::Identity::generate();
    w.app
        .put(
            "/api/v1/users/me/public-key",
            Some(&w.member.token),
            json!({ "age_recipient": identity.to_public().to_string() }),
        )
        .await
        .expect(200);
    read_credentials(&w, &id, Some(&w.member.token)).await.expect(200);
    w.app
        .delete("/api/v1/users/me/public-key", Some(&w.member.token))
        .await
        .expect(204);
    w.app
        .post(
            &format!("/api/v1/requests/{id}/credentials/rotate"),
            Some(&w.member.token),
            json!({}),
        )
        .await
        .expect(202);
    let (_stop, rx) = watch::channel(false);
    let rotated = runner(&w, &[], &[]).run_job(id.parse().unwrap(), rx).await.unwrap();
    assert_eq!(rotated, JobResult::Ready);
    let second = read_credentials(&w, &id, Some(&w.member.token))
        .await
        .expect(200)
        .json();
    let v2 = second["credentials"]["password"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // THEN the runner and the API logged their work
    let logs = String::from_utf8(captured.0.lock().unwrap_or_else(|e| e.into_inner()).clone()).unwrap();
    assert!(
        logs.contains("terraform step finished") && logs.contains("job claimed"),
        "no runner logs"
    );

    // AND no line holds either password or the connection URI
    for secret in [v1.as_str(), v2.as_str(), uri.as_str()] {
        let line = logs.lines().find(|l| l.contains(secret));
        assert!(
            line.is_none(),
            "a log line contains a secret: {}",
            line.unwrap_or_default().chars().take(600).collect::<String>()
        );
    }

    // AND each of the three reads left a line: who, which request, which version
    let reads: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["event"] == "credentials.read")
        .collect();
    assert_eq!(reads.len(), 3, "{reads:?}");
    for read in &reads {
        assert_eq!(read["fields"]["user_id"], w.member.id.as_str(), "{read}");
        assert_eq!(read["fields"]["request_id"], id.as_str(), "{read}");
    }
    let versions: Vec<u64> = reads.iter().map(|r| r["fields"]["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 1, 2]);
    let sealed: Vec<bool> = reads.iter().map(|r| r["fields"]["sealed"].as_bool().unwrap()).collect();
    assert_eq!(sealed, [false, true, false]);
}
