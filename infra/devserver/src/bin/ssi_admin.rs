//! `ssi-admin`: operator commands against the local or a deployed table.
//!
//! ```text
//! ssi-admin create-table [--template template.yaml]
//! ssi-admin create-admin --email EMAIL        (password from ADMIN_PASSWORD or stdin)
//! ```
//! Reads `TABLE_NAME`, `AWS_REGION` and, locally, `DYNAMODB_ENDPOINT`; without an
//! endpoint it uses the normal AWS credential chain (the deployed table).

use shared::{
    auth::{email::Email, password},
    clock::format_timestamp,
    domain::{
        audit::{CallContext, Origin},
        Actor,
    },
    model::User,
    store::Store,
    ApiError,
};
use std::{io::BufRead, path::PathBuf, process::ExitCode};

const USAGE: &str = "usage:\n  ssi-admin create-table [--template PATH]\n  ssi-admin create-admin --email EMAIL   (password from ADMIN_PASSWORD or the first line of stdin)\n  ssi-admin audit verify                 (recomputes the audit chain; exit 1 when broken)";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ssi-admin: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<String, String> {
    let command = args.first().ok_or(USAGE)?;
    let table = env("TABLE_NAME").ok_or("TABLE_NAME must be set")?;
    let region = env("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
    let sdk = shared::app::sdk_config(&region, env("DYNAMODB_ENDPOINT").as_deref()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    match command.as_str() {
        "create-table" => {
            let template = flag(args, "--template").map_or_else(devserver::template::default_path, PathBuf::from);
            let created = devserver::table::create_from_template(&client, &table, &template)
                .await
                .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
            Ok(if created {
                format!("created table {table}")
            } else {
                format!("table {table} already exists")
            })
        }
        "create-admin" => {
            let email = flag(args, "--email").ok_or(USAGE)?;
            create_admin(&Store::new(client, table), &email).await
        }
        "audit" if args.get(1).map(String::as_str) == Some("verify") => {
            let check = Store::new(client, table)
                .verify_audit()
                .await
                .map_err(|e| e.to_string())?;
            match (&check.first_broken, &check.head) {
                (Some(broken), _) => Err(format!(
                    "audit chain broken at event {}: {} ({} events read)",
                    broken.seq, broken.reason, check.events
                )),
                (None, Some(head)) => Ok(format!(
                    "audit chain intact: {} events, last {} at {}, hash {}",
                    check.events, head.seq, head.at, head.hash
                )),
                (None, None) => Ok("audit log empty".into()),
            }
        }
        _ => Err(USAGE.into()),
    }
}

fn read_password() -> Result<String, String> {
    if let Some(p) = env("ADMIN_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn describe(e: ApiError) -> String {
    match e {
        ApiError::Validation(errors) => errors
            .iter()
            .map(|f| format!("{} {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// What the audit log records for a change made here: the platform's operator at
/// the console, as the system.
fn console(now: &str) -> Origin {
    Origin {
        actor: Actor::System,
        context: Some(CallContext {
            user_agent: Some("ssi-admin".into()),
            ..Default::default()
        }),
        at: now.to_string(),
    }
}

/// Promotes the existing user with that email (password unchanged), or creates an
/// admin with the password from `ADMIN_PASSWORD` or stdin (same rules as register).
async fn create_admin(store: &Store, email: &str) -> Result<String, String> {
    let parsed = Email::parse(email).map_err(describe)?;
    let now = format_timestamp(time::OffsetDateTime::now_utc());
    let origin = console(&now);
    if let Some(existing) = store
        .find_user_by_email(&parsed.normalised())
        .await
        .map_err(|e| e.to_string())?
    {
        store
            .set_admin(existing.id, true, &now, &origin)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(format!(
            "promoted existing user {} ({}) to admin; password unchanged",
            existing.email, existing.id
        ));
    }
    let password = read_password()?;
    let email = auth_function::validate_credentials(email, &password).map_err(describe)?;
    let hash = password::hash(password).await.map_err(describe)?;
    let user = User::new(email.as_str(), hash, true, &now);
    store
        .create_user(&user, &email.normalised(), &origin)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("created admin {} ({})", user.email, user.id))
}
