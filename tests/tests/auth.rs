//! Authentication: register, login (JSON and OAuth2 form), me, logout, password change,
//! throttling, and every kind of bad token.

mod common;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{build_app, test_config, TestApp, PASSWORD};
use futures::future::join_all;
use serde_json::json;
use shared::{auth::jwt::TokenService, store::MAX_FAILURES};
use std::time::Duration;

// ---------- register ----------

#[tokio::test]
async fn register_returns_the_new_user_without_privileges() {
    let app = TestApp::spawn().await;
    let body = app.register("  Ada@Example.com ", PASSWORD).await.expect(201).json();
    assert_eq!(body["email"], "Ada@Example.com", "trimmed, case kept");
    assert_eq!(body["is_admin"], false);
    assert_eq!(body["team_id"], serde_json::Value::Null);
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_at", "email", "id", "is_admin", "team_id", "updated_at"]);
    assert!(time::OffsetDateTime::parse(
        body["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
}

#[tokio::test]
async fn email_is_unique_case_insensitively() {
    let app = TestApp::spawn().await;
    app.register("grace@example.com", PASSWORD).await.expect(201);
    let dup = app.register(" GRACE@example.COM", PASSWORD).await.expect(409);
    assert_eq!(dup.json()["status"], 409);
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let attempts = (0..8).map(|i| {
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        app.register(email, PASSWORD)
    });
    let statuses: Vec<u16> = join_all(attempts).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
}

#[tokio::test]
async fn invalid_emails_are_422_with_a_field_error() {
    let app = TestApp::spawn().await;
    for email in ["", "not-an-email", "a@b", "two words@example.com", "x@@example.com"] {
        let body = app.register(email, PASSWORD).await.expect(422).json();
        assert_eq!(body["errors"][0]["field"], "email", "{email}: {body}");
    }
}

#[tokio::test]
async fn weak_passwords_are_422() {
    let app = TestApp::spawn().await;
    let too_long = "x".repeat(129);
    for password in [
        "short",
        "elevenchars",
        "password1234",
        "qwertyuiop12",
        too_long.as_str(),
    ] {
        let body = app.register(&app.email(), password).await.expect(422).json();
        assert_eq!(body["errors"][0]["field"], "password", "{password}: {body}");
    }
}

#[tokio::test]
async fn both_invalid_fields_are_reported_together() {
    let app = TestApp::spawn().await;
    let body = app.register("nope", "short").await.expect(422).json();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn unicode_passwords_without_composition_rules_are_accepted() {
    let app = TestApp::spawn().await;
    let email = app.email();
    app.register(&email, "grüne bäume über 緑の森").await.expect(201);
    app.login(&email, "grüne bäume über 緑の森").await.expect(200);
    // Exactly 12 and exactly 128 characters are inside the limits.
    let long: String = "otter kettle ".repeat(10).chars().take(128).collect();
    app.register(&app.email(), &long).await.expect(201);
}

#[tokio::test]
async fn clients_cannot_make_themselves_admin_or_pick_a_team() {
    let app = TestApp::spawn().await;
    let email = app.email();
    for extra in [
        json!({"is_admin": true}),
        json!({"team_id": uuid::Uuid::new_v4()}),
        json!({"id": "x"}),
    ] {
        let mut body = json!({ "email": email, "password": PASSWORD });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        app.post("/api/v1/auth/register", None, body).await.expect(422);
    }
    // Nothing was created by the rejected attempts.
    app.register(&email, PASSWORD).await.expect(201);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"email": 1, "password": PASSWORD}),
        json!({"email": "a@b.c"}),
        json!([]),
        json!("x"),
    ] {
        app.post("/api/v1/auth/register", None, body).await.expect(422);
    }
}

#[tokio::test]
async fn password_hashes_are_argon2id_with_the_required_cost_and_never_returned() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let item = app.raw_user(&user.id).await.expect("stored");
    let hash = item["password_hash"].as_s().unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    // Responses are checked for leaks by the harness; look at `me` explicitly too.
    let me = app.get("/api/v1/auth/me", Some(&user.token)).await.expect(200);
    assert!(!me.text.contains("argon2") && !me.text.contains("password"));
}

// ---------- login ----------

#[tokio::test]
async fn login_returns_a_bearer_token() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let body = app.login(&user.email.to_uppercase(), PASSWORD).await.expect(200).json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn login_accepts_the_oauth2_password_form() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let form = app.http.post(app.url("/api/v1/auth/login")).form(&[
        ("grant_type", "password"),
        ("username", user.email.as_str()),
        ("password", PASSWORD),
        ("scope", ""),
    ]);
    let body = app.finish(form).await.expect(200).json();
    let token = body["access_token"].as_str().unwrap();
    app.get("/api/v1/auth/me", Some(token)).await.expect(200);
    let wrong_grant = app.http.post(app.url("/api/v1/auth/login")).form(&[
        ("grant_type", "client_credentials"),
        ("username", user.email.as_str()),
        ("password", PASSWORD),
    ]);
    app.finish(wrong_grant).await.expect(422);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let wrong_password = app.login(&user.email, "not the password at all").await.expect(401);
    let unknown_email = app
        .login("nobody@example.com", "not the password at all")
        .await
        .expect(401);
    assert_eq!(wrong_password.text, unknown_email.text);
    assert_eq!(wrong_password.header("www-authenticate"), Some("Bearer"));
    assert_eq!(unknown_email.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn repeated_failures_lock_login_until_the_window_ends() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    for _ in 0..MAX_FAILURES {
        app.login(&user.email, "wrong password, again").await.expect(401);
    }
    // Locked: even the right password is refused, with a Retry-After.
    let locked = app.login(&user.email, PASSWORD).await.expect(429);
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    // The lock ends by itself.
    app.clock.advance(time::Duration::seconds(retry as i64));
    app.login(&user.email, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn failures_are_counted_atomically_under_concurrency() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let attempts = (0..MAX_FAILURES).map(|_| app.login(&user.email, "concurrently wrong"));
    for reply in join_all(attempts).await {
        assert_eq!(reply.status, 401);
    }
    // Lost updates would leave the count below the limit.
    app.login(&user.email, PASSWORD).await.expect(429);
}

#[tokio::test]
async fn unknown_emails_are_throttled_like_known_ones() {
    let app = TestApp::spawn().await;
    for _ in 0..MAX_FAILURES {
        app.login("ghost@example.com", "whatever it is").await.expect(401);
    }
    app.login("ghost@example.com", "whatever it is").await.expect(429);
}

/// A client whose requests come from 127.0.0.`n` (the dev server reports the peer
/// address as API Gateway's `sourceIp`, which the throttle keys on).
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .expect("client")
}

async fn login_from(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> common::Reply {
    app.finish(
        client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

#[tokio::test]
async fn an_attacker_is_throttled_but_cannot_lock_the_owner_out_from_elsewhere() {
    let app = TestApp::spawn().await;
    let owner = app.user().await;
    let (attacker, home) = (client_from(66), client_from(7));
    for _ in 0..MAX_FAILURES {
        login_from(&app, &attacker, &owner.email, "a wrong guess, again")
            .await
            .expect(401);
    }
    // The attacker's source is throttled, even with the right password ...
    let locked = login_from(&app, &attacker, &owner.email, PASSWORD).await.expect(429);
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    // ... while the owner, from another source, gets in at once.
    login_from(&app, &home, &owner.email, PASSWORD).await.expect(200);
    // So does a password change from there (same throttle).
    let token = login_from(&app, &home, &owner.email, PASSWORD).await.expect(200).json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let req = home.get(app.url("/api/v1/auth/me")).bearer_auth(&token);
    app.finish(req).await.expect(200);
}

#[tokio::test]
async fn a_distributed_guesser_is_bounded_and_the_owner_still_gets_in() {
    use shared::throttle::{ACCOUNT_SOFT_LIMIT, BACKOFF_MAX_SECS};
    let app = TestApp::spawn().await;
    let owner = app.user().await;
    // 30 sources, each up to its own limit: 300 guesses without the account limit.
    let sources: Vec<reqwest::Client> = (10..40).map(client_from).collect();
    let mut checked = 0u64;
    let mut backed_off = 0u64;
    for round in 0..MAX_FAILURES {
        let guesses = sources
            .iter()
            .map(|client| login_from(&app, client, &owner.email, "guessing in parallel"));
        for reply in join_all(guesses).await {
            match reply.status.as_u16() {
                401 => checked += 1,
                429 => {
                    backed_off += 1;
                    let retry: i64 = reply.header("retry-after").unwrap().parse().unwrap();
                    assert!((1..=BACKOFF_MAX_SECS).contains(&retry), "round {round}: {retry}");
                }
                other => panic!("unexpected {other}: {}", reply.text),
            }
        }
    }
    // Bounded by the account's soft limit plus each source's first (clean) guess plus
    // one back-off slot (the clock does not move here).
    let bound = ACCOUNT_SOFT_LIMIT + sources.len() as u64 + 1;
    eprintln!("distributed: {checked} of 300 guesses checked, {backed_off} answered 429 (bound {bound})");
    assert!(checked <= bound, "{checked} guesses were checked (bound {bound})");
    assert!(backed_off > 0);
    // The owner, from a source that has not failed, is not held up.
    login_from(&app, &client_from(200), &owner.email, PASSWORD)
        .await
        .expect(200);
    // Waiting out the back-off lets a dirty source try again; it never becomes a wall.
    app.clock.advance(time::Duration::seconds(BACKOFF_MAX_SECS));
    let reply = login_from(&app, &sources[0], &owner.email, PASSWORD).await;
    assert!(matches!(reply.status.as_u16(), 200 | 429), "{reply:?}");
}

#[tokio::test]
async fn past_the_fresh_source_budget_clean_sources_back_off_but_are_never_walled() {
    use shared::throttle::{BACKOFF_MAX_SECS, FRESH_SOURCE_LIMIT};
    let app = TestApp::spawn().await;
    let owner = app.user().await;
    // More distinct sources than the budget, one guess each.
    let sources: Vec<u8> = (10..(10 + FRESH_SOURCE_LIMIT as u8 + 10)).collect();
    let mut statuses = Vec::new();
    for chunk in sources.chunks(20) {
        let clients: Vec<reqwest::Client> = chunk.iter().map(|n| client_from(*n)).collect();
        let guesses = clients
            .iter()
            .map(|client| login_from(&app, client, &owner.email, "one guess per address"));
        statuses.extend(join_all(guesses).await.iter().map(|r| r.status.as_u16()));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count() as u64;
    assert!(checked <= FRESH_SOURCE_LIMIT + 1, "{checked} checked");
    assert!(statuses.contains(&429), "{statuses:?}");
    // The owner from yet another source now waits at most one back-off delay.
    let home = client_from(250);
    let reply = login_from(&app, &home, &owner.email, PASSWORD).await;
    if reply.status == 429 {
        let retry: i64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=BACKOFF_MAX_SECS).contains(&retry), "{retry}");
        app.clock.advance(time::Duration::seconds(retry));
        login_from(&app, &home, &owner.email, PASSWORD).await.expect(200);
    } else {
        reply.expect(200);
    }
}

#[tokio::test]
async fn registering_taken_emails_is_throttled_per_source() {
    use shared::throttle::REGISTRATION_MAX_CONFLICTS;
    let app = TestApp::spawn().await;
    let taken = app.user().await;
    let prober = client_from(77);
    let register = |client: &reqwest::Client, email: String| {
        app.finish(
            client
                .post(app.url("/api/v1/auth/register"))
                .json(&json!({ "email": email, "password": PASSWORD })),
        )
    };
    for _ in 0..REGISTRATION_MAX_CONFLICTS {
        register(&prober, taken.email.clone()).await.expect(409);
    }
    let throttled = register(&prober, taken.email.clone()).await.expect(429);
    assert!(throttled.header("retry-after").is_some());
    // New accounts from elsewhere are unaffected; successes never count.
    let other = client_from(78);
    for _ in 0..(REGISTRATION_MAX_CONFLICTS + 2) {
        register(&other, app.email()).await.expect(201);
    }
}

#[tokio::test]
async fn one_accounts_lock_does_not_affect_another() {
    let app = TestApp::spawn().await;
    let (victim, other) = (app.user().await, app.user().await);
    for _ in 0..MAX_FAILURES {
        app.login(&victim.email, "wrong password, again").await.expect(401);
    }
    app.login(&other.email, PASSWORD).await.expect(200);
}

// ---------- me, logout, password change ----------

#[tokio::test]
async fn me_returns_the_current_user() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let me = app.get("/api/v1/auth/me", Some(&user.token)).await.expect(200).json();
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["email"], user.email.as_str());
}

#[tokio::test]
async fn logout_revokes_every_earlier_token() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let second = app.token(&user.email, PASSWORD).await;
    app.post("/api/v1/auth/logout", Some(&user.token), json!({}))
        .await
        .expect(204);
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(401);
    app.get("/api/v1/auth/me", Some(&second)).await.expect(401);
    // A new login works again.
    let fresh = app.token(&user.email, PASSWORD).await;
    app.get("/api/v1/auth/me", Some(&fresh)).await.expect(200);
}

#[tokio::test]
async fn password_change_revokes_older_tokens_and_takes_the_new_password() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let new_password = "a completely different phrase";
    app.put(
        "/api/v1/users/me/password",
        Some(&user.token),
        json!({ "current_password": PASSWORD, "new_password": new_password }),
    )
    .await
    .expect(204);
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(401);
    app.login(&user.email, PASSWORD).await.expect(401);
    app.login(&user.email, new_password).await.expect(200);
}

#[tokio::test]
async fn password_change_needs_the_current_password_and_a_strong_new_one() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let body = app
        .put(
            "/api/v1/users/me/password",
            Some(&user.token),
            json!({ "current_password": "not my password!", "new_password": "another good phrase here" }),
        )
        .await
        .expect(422)
        .json();
    assert_eq!(body["errors"][0]["field"], "current_password");
    let body = app
        .put(
            "/api/v1/users/me/password",
            Some(&user.token),
            json!({ "current_password": PASSWORD, "new_password": "password1234" }),
        )
        .await
        .expect(422)
        .json();
    assert_eq!(body["errors"][0]["field"], "new_password");
    // Nothing changed: the token still works, the old password too.
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(200);
    app.login(&user.email, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    for _ in 0..MAX_FAILURES {
        app.put(
            "/api/v1/users/me/password",
            Some(&user.token),
            json!({ "current_password": "a wrong guess!!", "new_password": "another good phrase here" }),
        )
        .await
        .expect(422);
    }
    app.put(
        "/api/v1/users/me/password",
        Some(&user.token),
        json!({ "current_password": PASSWORD, "new_password": "another good phrase here" }),
    )
    .await
    .expect(429);
}

// ---------- tokens ----------

#[tokio::test]
async fn missing_and_malformed_authorization_is_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/auth/me");
    let headers = [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer not.a.jwt",
        "Bearer a.b.c",
        "Bearer 🦀",
    ];
    let reply = app.get("/api/v1/auth/me", None).await.expect(401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    for header in headers {
        let req = app.http.get(&url).header("authorization", header);
        let reply = app.finish(req).await.expect(401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{header}");
    }
}

#[tokio::test]
async fn expired_tokens_are_401() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.clock.advance(time::Duration::minutes(61));
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(401);
}

#[tokio::test]
async fn tokens_not_yet_valid_are_401() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let id = uuid::Uuid::parse_str(&user.id).unwrap();
    let future = app
        .app
        .tokens
        .issue(id, 0, app.clock.now() + time::Duration::minutes(10))
        .unwrap();
    app.get("/api/v1/auth/me", Some(&future.access_token)).await.expect(401);
}

#[tokio::test]
async fn forged_tokens_are_401() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let id = uuid::Uuid::parse_str(&user.id).unwrap();
    let now = app.clock.now();

    // Signed with another key.
    let other_key = TokenService::new(&[9u8; 32], "ssi-api", "ssi-api", Duration::from_secs(3600));
    let forged = other_key.issue(id, 0, now).unwrap().access_token;
    app.get("/api/v1/auth/me", Some(&forged)).await.expect(401);

    // Our key, but another audience (a token of another deployment).
    let elsewhere = build_app(test_config(&app.table, "another-api"), app.clock.clone()).await;
    let wrong_aud = elsewhere.tokens.issue(id, 0, now).unwrap().access_token;
    app.get("/api/v1/auth/me", Some(&wrong_aud)).await.expect(401);

    // alg: none, with our claims.
    let valid = app.app.tokens.issue(id, 0, now).unwrap().access_token;
    let claims = valid.split('.').nth(1).unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    app.get("/api/v1/auth/me", Some(&format!("{header}.{claims}.")))
        .await
        .expect(401);

    // Our signature, edited claims (made admin / another user).
    let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
    let mut payload: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!(uuid::Uuid::new_v4());
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    app.get("/api/v1/auth/me", Some(&parts.join("."))).await.expect(401);

    // The genuine token still works.
    app.get("/api/v1/auth/me", Some(&valid)).await.expect(200);
}

#[tokio::test]
async fn tokens_of_deleted_users_are_401() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    app.delete(&format!("/api/v1/users/{}", user.id), Some(&admin.token))
        .await
        .expect(204);
    app.get("/api/v1/auth/me", Some(&user.token)).await.expect(401);
}

#[tokio::test]
async fn demotion_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let first = app.admin().await;
    let second = app.admin().await;
    app.get("/api/v1/teams", Some(&second.token)).await.expect(200);
    app.patch(
        &format!("/api/v1/users/{}", second.id),
        Some(&first.token),
        json!({"is_admin": false}),
    )
    .await
    .expect(200);
    app.get("/api/v1/teams", Some(&second.token)).await.expect(403);
    // Still a valid user.
    app.get("/api/v1/auth/me", Some(&second.token)).await.expect(200);
}

// ---------- input hardening ----------

#[tokio::test]
async fn a_repeated_key_in_a_body_is_400() {
    let app = TestApp::spawn().await;
    let email = app.email();
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}","email":"other@example.com"}}"#);
    let req = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(body);
    let reply = app.finish(req).await.expect(400);
    assert_eq!(reply.json()["errors"][0]["field"], "email");
    // The form login refuses a repeated field too.
    let form = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=a%40b.co&password=one&password=two");
    app.finish(form).await.expect(400);
}

#[tokio::test]
async fn a_wrong_type_names_its_field_not_its_value() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": app.email(), "password": 424242 }),
        )
        .await
        .expect(422);
    assert_eq!(reply.json()["errors"][0]["field"], "password");
}

#[tokio::test]
async fn emails_are_nfc_normalised_so_composed_and_decomposed_are_one_account() {
    let app = TestApp::spawn().await;
    // "jürgen" with a combining diaeresis, then with the precomposed ü.
    let decomposed = format!("ju\u{308}rgen-{}@example.com", &uuid::Uuid::new_v4().to_string()[..8]);
    let composed = decomposed.replace("u\u{308}", "\u{fc}");
    let body = app.register(&decomposed, PASSWORD).await.expect(201).json();
    assert_eq!(body["email"], composed.as_str(), "stored in NFC");
    app.register(&composed.to_uppercase(), PASSWORD).await.expect(409);
    app.login(&composed, PASSWORD).await.expect(200);
    app.login(&decomposed, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn bidi_and_invisible_characters_in_emails_are_422() {
    let app = TestApp::spawn().await;
    for email in [
        "ad\u{200b}a@example.com",
        "ada@exa\u{202e}moc.elpm",
        "\u{2066}ada@example.com\u{2069}",
        "ada\u{feff}@example.com",
        "a\u{00ad}da@example.com",
    ] {
        let body = app.register(email, PASSWORD).await.expect(422).json();
        assert_eq!(body["errors"][0]["field"], "email", "{email:?}: {body}");
    }
}
