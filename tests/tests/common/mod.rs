//! Test harness: each test gets its own table in DynamoDB Local (created from
//! `template.yaml`), its own app with a manual clock, and the dev server's router
//! serving it on an OS-chosen loopback port — so tests run in parallel.
#![allow(dead_code)]

pub mod notify;
pub mod provision;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::{
    auth::password,
    clock::{format_timestamp, Clock},
    config::Config,
    model::User,
    App,
};
use std::sync::{
    atomic::{AtomicU32, Ordering},
    Arc,
};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub app: Arc<App>,
    pub clock: Clock,
    pub table: String,
    counter: AtomicU32,
}

/// A signed-in user of a test.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

/// A response, with its body read and checked for leaks.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        self
    }
}

/// Words that must never appear in any response body.
const LEAKS: &[&str] = &[
    "password_hash",
    "$argon2",
    "token_version",
    "\"PK\"",
    "\"SK\"",
    "GSI1",
    "entity_type",
    "USER#",
    "TEAM#",
];

pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT")
        .expect("DYNAMODB_ENDPOINT is not set: run the tests with `make test`, which starts DynamoDB Local")
}

/// A config for a fresh table, as the functions would read it from the environment.
pub fn test_config(table: &str, audience: &str) -> Config {
    test_config_at(table, audience, &endpoint())
}

/// Like [`test_config`], against the DynamoDB at `endpoint`.
pub fn test_config_at(table: &str, audience: &str, endpoint: &str) -> Config {
    let endpoint = endpoint.to_string();
    let table = table.to_string();
    let audience = audience.to_string();
    Config::from_lookup(move |k| match k {
        "TABLE_NAME" => Some(table.clone()),
        "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
        "JWT_SECRET" => Some("test-only-key-0123456789abcdef-0123456789abcdef".into()),
        "JWT_AUDIENCE" => Some(audience.clone()),
        // The local configuration: webhooks to the tests' own receivers on loopback.
        "WEBHOOK_ALLOW_LOOPBACK" => Some("true".into()),
        // The credentials key in moto, when `make test` started it.
        // With the API's own decrypt-only user (KMS_ACCESS_KEY_ID, …), as in `make run`.
        "KMS_KEY_ID" | "KMS_ENDPOINT" | "KMS_ACCESS_KEY_ID" | "KMS_SECRET_ACCESS_KEY" => std::env::var(k).ok(),
        _ => None,
    })
    .expect("test config")
}

/// Builds an app over `config` (same key derivation as on Lambda).
pub async fn build_app(config: Config, clock: Clock) -> Arc<App> {
    let sdk = shared::app::sdk_config(&config.region, config.dynamodb_endpoint.as_deref()).await;
    let key = shared::app::load_key(&config, &sdk).await.expect("key");
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    Arc::new(App::new(config, client, &key, clock).with_vault_from_config().await)
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_at(&endpoint()).await
    }

    /// A test app against the DynamoDB at `endpoint` (the fault tests run their own).
    pub async fn spawn_at(endpoint: &str) -> Self {
        Self::spawn_with_clock(endpoint, time::OffsetDateTime::now_utc(), |_| {}).await
    }

    /// A test app whose manual clock starts at `start` (months and their boundaries).
    pub async fn spawn_at_time(start: time::OffsetDateTime) -> Self {
        Self::spawn_with_clock(&endpoint(), start, |_| {}).await
    }

    /// A test app whose configuration `tweak` changes first.
    pub async fn spawn_with(endpoint: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with_clock(endpoint, time::OffsetDateTime::now_utc(), tweak).await
    }

    async fn spawn_with_clock(endpoint: &str, start: time::OffsetDateTime, tweak: impl FnOnce(&mut Config)) -> Self {
        let table = format!("test-{}", uuid::Uuid::new_v4());
        let mut config = test_config_at(&table, "ssi-api", endpoint);
        tweak(&mut config);
        let clock = Clock::manual(start);
        let app = build_app(config, clock.clone()).await;
        devserver::table::create_from_template(app.store.client(), &table, &devserver::template::default_path())
            .await
            .expect("create the test table in DynamoDB Local");
        let addr = devserver::spawn(app.clone()).await.expect("serve");
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            app,
            clock,
            table,
            counter: AtomicU32::new(0),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.finish(req).await
    }

    pub async fn finish(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        for leak in LEAKS {
            assert!(!text.contains(leak), "response leaks {leak}: {text}");
        }
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/problem+json"),
                "errors are problem+json: {text}"
            );
        }
        Reply { status, headers, text }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PUT, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::DELETE, path, token, None).await
    }

    /// A fresh, unique email for this test.
    pub fn email(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        format!("user{n}-{}@example.com", &uuid::Uuid::new_v4().to_string()[..8])
    }

    pub async fn register(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/register",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn token(&self, email: &str, password: &str) -> String {
        let reply = self.login(email, password).await.expect(200);
        reply.json()["access_token"].as_str().expect("token").to_string()
    }

    /// Registers and signs in a plain user.
    pub async fn user(&self) -> TestUser {
        let email = self.email();
        let id = self.register(&email, PASSWORD).await.expect(201).json()["id"]
            .as_str()
            .expect("id")
            .to_string();
        let token = self.token(&email, PASSWORD).await;
        TestUser {
            id,
            email,
            password: PASSWORD.into(),
            token,
        }
    }

    /// Creates an admin the way `ssi-admin create-admin` does, and signs them in.
    pub async fn admin(&self) -> TestUser {
        let email = self.email();
        let now = format_timestamp(self.clock.now());
        let user = User::new(&email, password::hash(PASSWORD.into()).await.expect("hash"), true, &now);
        self.app
            .store
            .create_user(&user, &email, &shared::domain::audit::Origin::system(now.clone()))
            .await
            .expect("create admin");
        let token = self.token(&email, PASSWORD).await;
        TestUser {
            id: user.id.to_string(),
            email,
            password: PASSWORD.into(),
            token,
        }
    }

    /// Creates a team as `admin`; returns its id.
    pub async fn team(&self, admin: &TestUser, name: &str) -> String {
        self.post("/api/v1/teams", Some(&admin.token), json!({ "name": name }))
            .await
            .expect(201)
            .json()["id"]
            .as_str()
            .expect("team id")
            .to_string()
    }

    pub async fn add_member(&self, admin: &TestUser, team: &str, user: &TestUser) -> Reply {
        self.post(
            &format!("/api/v1/teams/{team}/members"),
            Some(&admin.token),
            json!({ "user_id": user.id }),
        )
        .await
    }

    /// The raw stored item of a user (to check what is kept, not what is shown).
    pub async fn raw_user(
        &self,
        id: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.app
            .store
            .client()
            .get_item()
            .table_name(&self.table)
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{id}")))
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{id}")))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }
}

/// Follows `next_cursor` through every page of a list; returns all items.
pub async fn collect_pages(app: &TestApp, path: &str, token: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let page = app.get(&url, Some(token)).await.expect(200).json();
        pages += 1;
        let got = page["items"].as_array().expect("items").clone();
        assert!(got.len() <= limit, "page larger than limit");
        items.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (items, pages),
        }
        assert!(pages < 1000, "pagination does not end");
    }
}

/// Moves an approved request through the runner's steps without Terraform, at the
/// given times: the claim (`provisioning`), then a successful apply (`ready`, with
/// placeholder sealed credentials). Spend accrues from `ready_at`.
pub async fn ready_through_store(store: &shared::store::Store, id: &str, claimed_at: &str, ready_at: &str) {
    let rid: uuid::Uuid = id.parse().expect("request id");
    let shared::store::Claim::Claimed(claimed) = store
        .claim_job(rid, "runner-test", claimed_at, "2099-01-01T00:00:00.000000Z")
        .await
        .expect("claim")
    else {
        panic!("the job of {id} could not be claimed");
    };
    let credentials = shared::vault::SealedCredentials {
        request_id: rid,
        team_id: claimed.request.team_id,
        version: 1,
        issued_at: ready_at.into(),
        key_id: "test".into(),
        encrypted_data_key: vec![1],
        nonce: vec![2],
        ciphertext: vec![3],
    };
    let outcome = shared::store::RunOutcome::Succeeded {
        outputs: serde_json::Map::new(),
        credentials: Box::new(credentials),
    };
    assert!(store
        .finish_job(&claimed, "runner-test", &outcome, ready_at)
        .await
        .expect("finish"));
}
