//! `devserver`: the whole API in one process on `127.0.0.1:${PORT:-3000}`, against the
//! DynamoDB named by `DYNAMODB_ENDPOINT` (DynamoDB Local under `make run`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    shared::logging::init();
    let port: u16 = match std::env::var("PORT").ok().filter(|p| !p.is_empty()) {
        None => 3000,
        Some(p) => match p.parse() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("devserver: PORT={p} is not a port number");
                return ExitCode::FAILURE;
            }
        },
    };
    let app = match shared::App::from_env().await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("devserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("devserver: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "devserver: serving http://127.0.0.1:{port} (table {})",
        app.config.table_name
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match devserver::serve(listener, app, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devserver: {e}");
            ExitCode::FAILURE
        }
    }
}
