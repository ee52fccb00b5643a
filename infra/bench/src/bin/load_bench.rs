//! `load-bench`: drives the dev server (all routes in one process, the same handler
//! code as the functions) with concurrent keep-alive HTTP/1.1 connections and reports
//! throughput and latency per endpoint, and the dev server's memory after logins.
//!
//! It seeds its own table first (created from `template.yaml`, through the shared
//! store) in the DynamoDB the dev server uses, and signs tokens with the same key.
//!
//! Environment (scripts/bench.sh sets it):
//! - `BENCH_DEVSERVER` (required): the dev server's address, `127.0.0.1:<port>`;
//! - `DYNAMODB_ENDPOINT`, `TABLE_NAME`, `JWT_SECRET` (required): the dev server's;
//! - `BENCH_DEVSERVER_PID`: the dev server's process id; with it, the logins are run
//!   first, on the fresh process, and its peak RSS (`VmHWM`) and CPU time are read
//!   after them;
//! - `BENCH_LOGINS` (default 250): logins per login run; one run on 1 connection, one
//!   on `BENCH_LOGIN_CONNECTIONS` (default 8);
//! - `BENCH_CONNECTIONS` (default 64), `BENCH_LOAD_SECS` (default 10) and
//!   `BENCH_LOAD_REQUESTS` (default 20000): per endpoint, whichever bound comes first,
//!   split evenly over `BENCH_LOAD_ROUNDS` rounds (default 3) whose throughputs give
//!   the spread;
//! - `BENCH_TEAMS` (default 30).

use bench::{
    check_line, env_number, env_required,
    runtime_api::cpu_time,
    seed,
    stats::{mib, ms, thousands, Summary},
    targets,
};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, client::conn::http1, Method, Request};
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

/// One kind of request, sent over and over.
struct Call {
    method: Method,
    path: String,
    bearer: Option<String>,
    json: Option<Bytes>,
}

struct Outcome {
    latencies: Vec<Duration>,
    elapsed: Duration,
    failures: Vec<String>,
}

/// One connection: sends requests one after the other until a bound is reached.
async fn connection(
    addr: String,
    call: Arc<Call>,
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
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_str())
            .header("host", addr.as_str())
            .header("accept", "application/json");
        if let Some(token) = &call.bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if call.json.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(call.json.clone().unwrap_or_default()))
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

async fn drive(addr: &str, call: &Arc<Call>, load: &Load) -> Result<Outcome, String> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + load.max_time;
    let tasks: Vec<_> = (0..load.connections)
        .map(|_| {
            tokio::spawn(connection(
                addr.to_string(),
                call.clone(),
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

/// A field of `/proc/<pid>/status` in bytes (`VmHWM:`, `VmRSS:`).
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

fn memory(pid: u32) -> String {
    format!(
        "peak {:>9}  now {:>9}",
        status_bytes(pid, "VmHWM:").map_or("?".into(), mib),
        status_bytes(pid, "VmRSS:").map_or("?".into(), mib)
    )
}

/// Logins on the fresh dev server: its peak RSS and CPU per login after
/// `BENCH_LOGINS` logins on one connection, then as many again on
/// `BENCH_LOGIN_CONNECTIONS`; the first is checked against the target.
async fn login_memory(addr: &str, pid: u32, email: &str) -> Result<(), String> {
    let logins: u64 = env_number("BENCH_LOGINS", 250);
    let parallel: usize = env_number("BENCH_LOGIN_CONNECTIONS", 8usize).max(1);
    let body = serde_json::json!({ "email": email, "password": seed::PASSWORD });
    let call = Arc::new(Call {
        method: Method::POST,
        path: "/api/v1/auth/login".into(),
        bearer: None,
        json: Some(Bytes::from(body.to_string())),
    });
    println!(
        "Memory after logins: POST /api/v1/auth/login on the fresh dev server (pid {pid}); peak = VmHWM, \
         now = VmRSS; cpu = the dev server's on-CPU time (all threads) per login"
    );
    println!("  {:<30} {}", "after start", memory(pid));
    let mut sequential_peak = None;
    for connections in [1, parallel] {
        let cpu_before = cpu_time(pid);
        let out = drive(
            addr,
            &call,
            &Load {
                connections,
                max_requests: logins,
                max_time: Duration::from_secs(600),
            },
        )
        .await?;
        let cpu_after = cpu_time(pid);
        if let Some(f) = out.failures.first() {
            return Err(format!("login: a non-200 answer: {f}"));
        }
        let lat = Summary::of(&out.latencies).ok_or("login: no requests completed")?;
        let cpu = cpu_before
            .zip(cpu_after)
            .map(|(b, a)| a.saturating_sub(b) / u32::try_from(lat.count).unwrap_or(u32::MAX).max(1));
        println!(
            "  {:<30} {}  cpu/login {:>9}  latency p50 {} p99 {} (n={})",
            format!("+{} logins, {} conn.", lat.count, connections),
            memory(pid),
            cpu.map_or("?".into(), ms),
            ms(lat.p50),
            ms(lat.p99),
            lat.count,
        );
        if connections == 1 {
            sequential_peak = status_bytes(pid, "VmHWM:");
        }
    }
    if let Some(peak) = sequential_peak {
        println!(
            "  {}",
            check_line(
                peak <= targets::LOGIN_PEAK_RSS_BYTES,
                &format!("peak RSS dev server, {logins} logins (1 conn.)"),
                &mib(peak),
                &format!("<= {}", mib(targets::LOGIN_PEAK_RSS_BYTES)),
            )
        );
    }
    if let Some(peak) = status_bytes(pid, "VmHWM:") {
        println!(
            "  {}",
            check_line(
                true,
                &format!("peak RSS dev server, then {parallel} conn."),
                &mib(peak),
                "none: at most one 19 MiB argon2 buffer per core",
            )
            .replacen("[PASS]", "[INFO]", 1)
        );
    }
    println!();
    Ok(())
}

async fn run() -> Result<(), String> {
    let addr = env_required("BENCH_DEVSERVER")?;
    let endpoint = env_required("DYNAMODB_ENDPOINT")?;
    let table = env_required("TABLE_NAME")?;
    let secret = env_required("JWT_SECRET")?;
    let rounds: u32 = env_number("BENCH_LOAD_ROUNDS", 3u32).max(1);
    let load = Load {
        connections: env_number("BENCH_CONNECTIONS", 64usize).max(1),
        max_requests: env_number("BENCH_LOAD_REQUESTS", 20_000u64),
        max_time: Duration::from_secs(env_number("BENCH_LOAD_SECS", 10)),
    };
    let round = Load {
        connections: load.connections,
        max_requests: load.max_requests.div_ceil(u64::from(rounds)),
        max_time: load.max_time / rounds,
    };

    let app = seed::app(&endpoint, &table, &secret).await?;
    seed::create_table(&app).await?;
    let seeded = seed::seed(&app, env_number("BENCH_TEAMS", 30), 1).await?;

    println!("== Dev server under load ==");
    match std::env::var("BENCH_DEVSERVER_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    {
        Some(pid) => login_memory(&addr, pid, &seeded.plain.user.email).await?,
        None => println!("(BENCH_DEVSERVER_PID unset: no memory figures after logins)\n"),
    }
    println!(
        "http://{addr} (the dev server, RUST_LOG=warn), table {table}: {} teams; \
         {} keep-alive connections, per endpoint at most {} requests or {} s in {rounds} rounds, after a warm-up",
        seeded.teams.len(),
        load.connections,
        thousands(load.max_requests),
        load.max_time.as_secs()
    );
    println!(
        "  {:<24} {:>8} {:>8} {:>26} {:>11} {:>11} {:>11}",
        "endpoint", "requests", "time", "req/s median (min-max)", "p50", "p99", "max"
    );
    let endpoints = [
        ("GET /api/v1/auth/me", "/api/v1/auth/me", &seeded.plain.token),
        ("GET /api/v1/teams", "/api/v1/teams", &seeded.admin.token),
    ];
    for (name, path, token) in endpoints {
        let call = Arc::new(Call {
            method: Method::GET,
            path: path.into(),
            bearer: Some(token.clone()),
            json: None,
        });
        let warm_up = Load {
            connections: load.connections,
            max_requests: 2_000,
            max_time: Duration::from_secs(2),
        };
        let warm = drive(&addr, &call, &warm_up).await?;
        if let Some(f) = warm.failures.first() {
            return Err(format!("{name}: a non-200 answer during warm-up: {f}"));
        }
        let mut latencies = Vec::new();
        let mut elapsed = Duration::ZERO;
        let mut throughputs = Vec::new();
        for _ in 0..rounds {
            let out = drive(&addr, &call, &round).await?;
            if let Some(f) = out.failures.first() {
                return Err(format!("{name}: a non-200 answer: {f}"));
            }
            throughputs.push(out.latencies.len() as f64 / out.elapsed.as_secs_f64());
            elapsed += out.elapsed;
            latencies.extend(out.latencies);
        }
        let summary = Summary::of(&latencies).ok_or_else(|| format!("{name}: no requests completed"))?;
        let lo = throughputs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = throughputs.iter().copied().fold(0.0, f64::max);
        let mid = bench::stats::median(&mut throughputs);
        println!(
            "  {:<24} {:>8} {:>8} {:>26} {:>11} {:>11} {:>11}",
            name,
            thousands(summary.count as u64),
            format!("{:.2} s", elapsed.as_secs_f64()),
            format!("{mid:.0} ({lo:.0}-{hi:.0})"),
            ms(summary.p50),
            ms(summary.p99),
            ms(summary.max),
        );
    }
    println!(
        "  every answer was 200; latency is per request, as the client sees it (p50/p99/max over all rounds); \
         req/s: median, min and max of the {rounds} rounds"
    );
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
