//! Bench data, written straight through the shared store into a fresh table created
//! from `template.yaml`: an admin, a plain user, N teams, one of which has M members.
//! Tokens are issued by the app's own `TokenService` (same key derivation as the
//! functions, which read the same `JWT_SECRET`).

use shared::{
    auth::{email::Email, password},
    clock::{format_timestamp, Clock},
    config::Config,
    domain::audit::Origin,
    model::{Team, User},
    App,
};
use std::sync::Arc;
use uuid::Uuid;

/// The password of every seeded user (it passes the registration policy).
pub const PASSWORD: &str = "correct horse battery staple";

/// A random key of 256 bits as 64 hex characters, for `JWT_SECRET`.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An app over `table` in the DynamoDB at `endpoint`, keyed by `secret`, as the
/// functions build it from their environment.
pub async fn app(endpoint: &str, table: &str, secret: &str) -> Result<Arc<App>, String> {
    let (endpoint, table, secret) = (endpoint.to_string(), table.to_string(), secret.to_string());
    let config = Config::from_lookup(move |k| match k {
        "TABLE_NAME" => Some(table.clone()),
        "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
        "JWT_SECRET" => Some(secret.clone()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let sdk = shared::app::sdk_config(&config.region, config.dynamodb_endpoint.as_deref()).await;
    let key = shared::app::load_key(&config, &sdk).await.map_err(|e| e.to_string())?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    Ok(Arc::new(App::new(config, client, &key, Clock::System)))
}

/// Creates the app's table from `template.yaml`.
pub async fn create_table(app: &App) -> Result<(), String> {
    devserver::table::create_from_template(
        app.store.client(),
        app.store.table(),
        &devserver::template::default_path(),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("creating table {}: {e}", app.store.table()))
}

/// A seeded user and a valid access token of theirs.
#[derive(Clone)]
pub struct SeededUser {
    pub user: User,
    pub token: String,
}

pub struct Seeded {
    pub admin: SeededUser,
    /// A user in no team (login, `GET /auth/me`).
    pub plain: SeededUser,
    /// A member of `big_team`.
    pub member: SeededUser,
    pub big_team: Uuid,
    pub teams: Vec<Uuid>,
}

/// A unique email address.
pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@bench.example.com", Uuid::new_v4().simple())
}

async fn user(app: &App, hash: &str, is_admin: bool, prefix: &str) -> Result<SeededUser, String> {
    let email = Email::parse(&unique_email(prefix)).map_err(|e| e.to_string())?;
    let now = format_timestamp(app.clock.now());
    let user = User::new(email.as_str(), hash.to_string(), is_admin, &now);
    app.store
        .create_user(&user, &email.normalised(), &Origin::system(now.clone()))
        .await
        .map_err(|e| format!("creating a user: {e}"))?;
    token_for(app, user)
}

fn token_for(app: &App, user: User) -> Result<SeededUser, String> {
    let token = app
        .tokens
        .issue(user.id, user.token_version, app.clock.now())
        .map_err(|e| format!("issuing a token: {e}"))?
        .access_token;
    Ok(SeededUser { user, token })
}

/// Seeds `teams` teams (at least one); the first gets `members` members.
pub async fn seed(app: &App, teams: usize, members: usize) -> Result<Seeded, String> {
    // One hash for everyone: seeding is not what is measured.
    let hash = password::hash(PASSWORD.into())
        .await
        .map_err(|e| format!("hashing: {e}"))?;
    let admin = user(app, &hash, true, "bench-admin").await?;
    let plain = user(app, &hash, false, "bench-user").await?;
    let mut ids = Vec::with_capacity(teams.max(1));
    for i in 0..teams.max(1) {
        let now = format_timestamp(app.clock.now());
        let team = Team {
            id: Uuid::new_v4(),
            name: format!("Bench team {i:03} {}", Uuid::new_v4().simple()),
            description: format!("Team {i} of the benchmark data set, with a description of typical length."),
            created_by: admin.user.id,
            created_at: now.clone(),
            updated_at: now,
            member_count: 0,
            version: 0,
            deleting: false,
            requests_created: 0,
            budget: None,
        };
        app.store
            .create_team(&team, &Origin::system(team.created_at.clone()))
            .await
            .map_err(|e| format!("creating a team: {e}"))?;
        ids.push(team.id);
    }
    let big_team = ids[0];
    let mut first_member = None;
    for _ in 0..members.max(1) {
        let seeded = user(app, &hash, false, "bench-member").await?;
        let now = format_timestamp(app.clock.now());
        let joined = app
            .store
            .add_member(big_team, seeded.user.id, &now, &Origin::system(now.clone()))
            .await
            .map_err(|e| format!("adding a member: {e}"))?;
        if first_member.is_none() {
            first_member = Some(token_for(app, joined)?);
        }
    }
    Ok(Seeded {
        admin,
        plain,
        member: first_member.expect("at least one member"),
        big_team,
        teams: ids,
    })
}
