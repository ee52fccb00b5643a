//! `load-bench`: drives the dev server (all routes in one process, the same handler
//! code as the functions) with concurrent keep-alive HTTP/1.1 connections and reports
//! throughput and latency per endpoint.
//!
//! It seeds its own table first (created from `template.yaml`, through the shared
//! store) in the DynamoDB the dev server uses, and signs tokens with the same key.
//!
//! Environment (scripts/bench.sh sets it):
//! - `BENCH_DEVSERVER` (required): the dev server's address, `127.0.0.1:<port>`;
//! - `DYNAMODB_ENDPOINT`, `TABLE_NAME`, `JWT_SECRET` (required): the dev server's;
//! - `BENCH_CONNECTIONS` (default 64), `BENCH_LOAD_SECS` (default 10) and
//!   `BENCH_LOAD_REQUESTS` (default 20000): per endpoint, whichever bound comes first;
//! - `BENCH_TEAMS` (default 30).

use bench::{
    env_number, env_required, seed,
    stats::{ms, thousands, Summary},
};
use http_body_util::{BodyExt, Empty};
use hyper::{body::Bytes, client::conn::http1, Request};
use hyper_util::rt::TokioIo;
use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

struct Load {
    connections: usize,
    max_requests: u64,
    max_time: Duration,
}

struct Outcome {
    latencies: Vec<Duration>,
    elapsed: Duration,
    failures: Vec<String>,
}

/// One connection: sends requests one after the other until a bound is reached.
async fn connection(
    addr: String,
    path: String,
    token: String,
    issued: Arc<AtomicU64>,
    max_requests: u64,
    deadline: Instant,
) -> Result<(Vec<Duration>, Vec<String>), String> {
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_requests {
        let req = Request::get(path.as_str())
            .header("host", addr.as_str())
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let started = Instant::now();
        let resp = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        latencies.push(started.elapsed());
        if status != hyper::StatusCode::OK && failures.len() < 3 {
            failures.push(format!("{status}: {}", String::from_utf8_lossy(&body)));
        }
    }
    Ok((latencies, failures))
}

async fn drive(addr: &str, path: &str, token: &str, load: &Load) -> Result<Outcome, String> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + load.max_time;
    let tasks: Vec<_> = (0..load.connections)
        .map(|_| {
            tokio::spawn(connection(
                addr.to_string(),
                path.to_string(),
                token.to_string(),
                issued.clone(),
                load.max_requests,
                deadline,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (l, f) = task.await.map_err(|e| e.to_string())??;
        latencies.extend(l);
        failures.extend(f);
    }
    Ok(Outcome {
        latencies,
        elapsed: started.elapsed(),
        failures,
    })
}

async fn run() -> Result<(), String> {
    let addr = env_required("BENCH_DEVSERVER")?;
    let endpoint = env_required("DYNAMODB_ENDPOINT")?;
    let table = env_required("TABLE_NAME")?;
    let secret = env_required("JWT_SECRET")?;
    let load = Load {
        connections: env_number("BENCH_CONNECTIONS", 64usize).max(1),
        max_requests: env_number("BENCH_LOAD_REQUESTS", 20_000u64),
        max_time: Duration::from_secs(env_number("BENCH_LOAD_SECS", 10)),
    };

    let app = seed::app(&endpoint, &table, &secret).await?;
    seed::create_table(&app).await?;
    let seeded = seed::seed(&app, env_number("BENCH_TEAMS", 30), 1).await?;

    println!("== Dev server under load ==");
    println!(
        "http://{addr} (the dev server, RUST_LOG=warn), table {table}: {} teams; \
         {} keep-alive connections, per endpoint at most {} requests or {} s, after a warm-up",
        seeded.teams.len(),
        load.connections,
        thousands(load.max_requests),
        load.max_time.as_secs()
    );
    println!(
        "  {:<28} {:>8} {:>8} {:>12} {:>11} {:>11} {:>11}",
        "endpoint", "requests", "time", "throughput", "p50", "p99", "max"
    );
    let endpoints = [
        ("GET /api/v1/auth/me", "/api/v1/auth/me", &seeded.plain.token),
        ("GET /api/v1/teams", "/api/v1/teams", &seeded.admin.token),
    ];
    for (name, path, token) in endpoints {
        let warm_up = Load {
            connections: load.connections,
            max_requests: 2_000,
            max_time: Duration::from_secs(2),
        };
        let warm = drive(&addr, path, token, &warm_up).await?;
        if let Some(f) = warm.failures.first() {
            return Err(format!("{name}: a non-200 answer during warm-up: {f}"));
        }
        let out = drive(&addr, path, token, &load).await?;
        if let Some(f) = out.failures.first() {
            return Err(format!("{name}: a non-200 answer: {f}"));
        }
        let summary = Summary::of(&out.latencies).ok_or_else(|| format!("{name}: no requests completed"))?;
        println!(
            "  {:<28} {:>8} {:>8} {:>12} {:>11} {:>11} {:>11}",
            name,
            thousands(summary.count as u64),
            format!("{:.2} s", out.elapsed.as_secs_f64()),
            format!("{:.0} req/s", summary.count as f64 / out.elapsed.as_secs_f64()),
            ms(summary.p50),
            ms(summary.p99),
            ms(summary.max),
        );
    }
    println!("  every answer was 200; latency is per request, as the client sees it");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
