//! Log lines never carry a password, a token or a hash, even at trace level. This
//! binary installs a subscriber that captures every log line, then runs the flows
//! that handle secrets.

mod common;

use common::{TestApp, PASSWORD};
use serde_json::json;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_contain_passwords_tokens_or_hashes() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        // The production filter, at its most verbose.
        .with_env_filter(shared::logging::filter("trace"))
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.login(&user.email, "the wrong secret phrase").await.expect(401);
    let new_password = "fresh secret words here";
    app.put(
        "/api/v1/users/me/password",
        Some(&user.token),
        json!({ "current_password": PASSWORD, "new_password": new_password }),
    )
    .await
    .expect(204);
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(401);
    let hash = app.raw_user(&user.id).await.unwrap()["password_hash"]
        .as_s()
        .unwrap()
        .clone();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("registered") && logs.contains("password changed"),
        "logs were captured: {logs}"
    );
    for secret in [
        PASSWORD,
        "the wrong secret phrase",
        new_password,
        user.token.as_str(),
        hash.as_str(),
    ] {
        let line = logs.lines().find(|l| l.contains(secret));
        assert!(
            line.is_none(),
            "a log line contains a secret: {}",
            line.unwrap_or_default().chars().take(600).collect::<String>()
        );
    }
}
