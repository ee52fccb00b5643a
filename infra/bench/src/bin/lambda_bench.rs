//! `lambda-bench`: the real release binaries of the functions, each run as a child
//! process under an emulated Lambda Runtime API, with a timing proxy between it and
//! DynamoDB Local. Prints, per route: init time, first and warm latency, our code's
//! share (DynamoDB excluded), DynamoDB requests and round trips, and peak RSS — each
//! beside its target.
//!
//! Environment (scripts/bench.sh sets it):
//! - `DYNAMODB_ENDPOINT` (required): DynamoDB Local, `http://127.0.0.1:<port>`;
//! - `BENCH_BIN_DIR`: where the function binaries are (default `target/release`);
//! - `BENCH_INVOCATIONS`: measured warm invocations per route (default 1000);
//! - `BENCH_WARMUP`: unmeasured invocations between the first and the measured ones
//!   (default 100: they let DynamoDB Local's JVM settle on the route);
//! - `BENCH_ONLY`: only the routes whose key contains this text (cold starts too
//!   are limited to their functions);
//! - `BENCH_COLD_STARTS`: process starts per function for the init figure (default 10);
//! - `BENCH_SCENARIO_MAX_SECS`: time cap per route (default 180; the count reached is
//!   reported when it bites);
//! - `BENCH_TEAMS` / `BENCH_MEMBERS`: seeded teams (default 30) and members of the
//!   big team (default 20);
//! - `BENCH_LOG_DIR`: where the functions' stdout/stderr go (default the temp dir);
//! - `BENCH_FUNCTION_ENV`: extra `NAME=value` pairs (space-separated) for the function
//!   processes, for experiments (e.g. `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2`);
//! - `BENCH_LOGINS` (default 250): the peak RSS of every route's process is also read
//!   after this many invocations (first, warm-up and measured ones together), for the
//!   target on memory after logins.

use bench::{
    check_line,
    ddb_proxy::{DdbProxy, DdbStats},
    env_number, env_required,
    event::{api_gateway_event, route_of, HttpRequest},
    runtime_api::{Invocation, RuntimeApi},
    seed::{self, Seeded},
    stats::{mib, ms, Summary},
    targets,
};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

const INIT_TIMEOUT: Duration = Duration::from_secs(30);
const INVOKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The functions and their memory sizes in `template.yaml` (`MemorySize`, default 128
/// from `Globals`), handed to the runtime as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
const FUNCTIONS: &[(&str, u32)] = &[("auth", 512), ("teams", 128), ("users", 512), ("docs", 128)];

struct Settings {
    ddb: SocketAddr,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    invocations: usize,
    warm_up: usize,
    only: Option<String>,
    cold_starts: usize,
    scenario_cap: Duration,
    rss_after: usize,
    table: String,
    secret: String,
    extra_env: Vec<(String, String)>,
}

/// A function process under the emulated Runtime API.
struct Running {
    child: Child,
    pid: u32,
    runtime: RuntimeApi,
    init: Duration,
    init_ddb: DdbStats,
    log: PathBuf,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// A field of `/proc/<pid>/status` (its first number).
    fn status_field(&self, name: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Peak resident set size so far (`VmHWM`), in bytes.
    fn peak_rss(&self) -> Option<u64> {
        self.status_field("VmHWM:").map(|kib| kib * 1024)
    }

    /// Threads of the process now.
    fn threads(&self) -> Option<u64> {
        self.status_field("Threads:")
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("--- last lines of {} ---\n{tail}", path.display())
}

/// Starts `function` and waits for its first `/next` call.
async fn launch(s: &Settings, function: &str, memory: u32, label: &str) -> Result<Running, String> {
    let proxy = Arc::new(
        DdbProxy::start(s.ddb)
            .await
            .map_err(|e| format!("DynamoDB proxy: {e}"))?,
    );
    let runtime = RuntimeApi::start(function, proxy.clone())
        .await
        .map_err(|e| format!("Runtime API: {e}"))?;
    let log = s.log_dir.join(format!("{function}-{label}.log"));
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let binary = s.bin_dir.join(function);
    let mut cmd = Command::new(&binary);
    // What Lambda's provided.al2023 runtime gives a function (lambda_runtime's
    // Config::from_env reads the AWS_LAMBDA_* ones), plus our settings.
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TZ", ":UTC")
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("ssi-bench-{function}"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/ssi-bench-{function}"))
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("bench/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
        )
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("TABLE_NAME", &s.table)
        .env("DYNAMODB_ENDPOINT", proxy.endpoint())
        .env("JWT_SECRET", &s.secret)
        .env("RUST_LOG", "warn")
        .envs(s.extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    let spawned = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or_default();
    runtime.watch_process(pid);
    let mut running = Running {
        child,
        pid,
        runtime,
        init: Duration::ZERO,
        init_ddb: DdbStats::default(),
        log,
    };
    match running.runtime.wait_init(INIT_TIMEOUT).await {
        Ok((ready, ddb)) => {
            running.init = ready.saturating_duration_since(spawned);
            running.init_ddb = ddb;
            Ok(running)
        }
        Err(why) => {
            let tail = log_tail(&running.log);
            running.stop().await;
            Err(format!("{function}: {why}\n{tail}"))
        }
    }
}

/// One route to measure: the event of invocation `i` comes from `event`.
struct Scenario {
    route: String,
    function: &'static str,
    expect: u16,
    event: Box<dyn Fn(usize) -> Vec<u8>>,
}

impl Scenario {
    fn new(
        method: &'static str,
        path: String,
        bearer: Option<String>,
        body: Option<Box<dyn Fn(usize) -> serde_json::Value>>,
        expect: u16,
    ) -> Self {
        let bare = path.split('?').next().unwrap_or_default().to_string();
        let (function, route) = route_of(method, &bare).unwrap_or_else(|| panic!("no route for {method} {bare}"));
        let event = Box::new(move |i| {
            let json = body.as_ref().map(|b| b(i));
            api_gateway_event(&HttpRequest {
                method,
                path_and_query: &path,
                bearer: bearer.as_deref(),
                json: json.as_ref(),
            })
            .expect("the route resolved above")
        });
        Self {
            route,
            function,
            expect,
            event,
        }
    }
}

fn scenarios(seeded: &Seeded) -> Vec<Scenario> {
    let login_email = seeded.plain.user.email.clone();
    vec![
        Scenario::new(
            "POST",
            "/api/v1/auth/register".into(),
            None,
            Some(Box::new(
                |_| serde_json::json!({ "email": seed::unique_email("bench-register"), "password": seed::PASSWORD }),
            )),
            201,
        ),
        Scenario::new(
            "POST",
            "/api/v1/auth/login".into(),
            None,
            Some(Box::new(
                move |_| serde_json::json!({ "email": login_email, "password": seed::PASSWORD }),
            )),
            200,
        ),
        Scenario::new(
            "GET",
            "/api/v1/auth/me".into(),
            Some(seeded.plain.token.clone()),
            None,
            200,
        ),
        Scenario::new(
            "GET",
            "/api/v1/teams".into(),
            Some(seeded.admin.token.clone()),
            None,
            200,
        ),
        Scenario::new(
            "GET",
            format!("/api/v1/teams/{}", seeded.big_team),
            Some(seeded.admin.token.clone()),
            None,
            200,
        ),
        Scenario::new(
            "GET",
            "/api/v1/users/me/team/members".into(),
            Some(seeded.member.token.clone()),
            None,
            200,
        ),
        Scenario::new("GET", "/health".into(), None, None, 200),
    ]
}

struct ScenarioResult {
    route: String,
    function: &'static str,
    init: Duration,
    first: Invocation,
    warm: Vec<Invocation>,
    capped: bool,
    peak_rss: Option<u64>,
    /// Peak RSS after `rss_after` invocations (or all of them, when fewer).
    peak_rss_early: Option<u64>,
    invocations: usize,
    rss_end: Option<u64>,
    threads: Option<u64>,
    response_bytes: usize,
}

impl ScenarioResult {
    fn latencies(&self) -> Vec<Duration> {
        self.warm.iter().map(|i| i.latency).collect()
    }

    fn our_code(&self) -> Vec<Duration> {
        self.warm.iter().map(|i| i.latency.saturating_sub(i.ddb.busy)).collect()
    }

    fn cpu(&self) -> Vec<Duration> {
        self.warm.iter().filter_map(|i| i.cpu).collect()
    }

    /// How many invocations (first and warm) made each number of round trips.
    fn round_trip_counts(&self) -> Vec<(u32, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for i in std::iter::once(&self.first).chain(&self.warm) {
            *counts.entry(i.ddb.round_trips).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }

    fn ddb_busy(&self) -> Vec<Duration> {
        self.warm.iter().map(|i| i.ddb.busy).collect()
    }

    /// (min, max) over the first and the warm invocations.
    fn min_max(&self, f: impl Fn(&DdbStats) -> u32) -> (u32, u32) {
        let all = std::iter::once(&self.first).chain(&self.warm).map(|i| f(&i.ddb));
        all.fold((u32::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }
}

fn checked(inv: Invocation, expect: u16, route: &str) -> Result<Invocation, String> {
    if inv.status == expect {
        Ok(inv)
    } else {
        let payload = String::from_utf8_lossy(&inv.payload);
        Err(format!(
            "{route}: expected {expect}, got {}: {}",
            inv.status,
            payload.chars().take(600).collect::<String>()
        ))
    }
}

async fn run_scenario(s: &Settings, sc: &Scenario) -> Result<ScenarioResult, String> {
    let memory = FUNCTIONS
        .iter()
        .find(|(f, _)| *f == sc.function)
        .map_or(128, |(_, m)| *m);
    let running = launch(s, sc.function, memory, "scenario").await?;
    let outcome = async {
        let first = running.runtime.invoke((sc.event)(0), INVOKE_TIMEOUT).await?;
        let first = checked(first, sc.expect, &sc.route)?;
        let response_bytes = first.payload.len();
        // Invocations so far (the first included), and the peak RSS at `rss_after`.
        let mut done = 1;
        let mut peak_rss_early = None;
        let count = |done: &mut usize, early: &mut Option<u64>| {
            *done += 1;
            if *done == s.rss_after {
                *early = running.peak_rss();
            }
        };
        if s.rss_after <= 1 {
            peak_rss_early = running.peak_rss();
        }
        for i in 1..=s.warm_up {
            let inv = running.runtime.invoke((sc.event)(i), INVOKE_TIMEOUT).await?;
            checked(inv, sc.expect, &sc.route)?;
            count(&mut done, &mut peak_rss_early);
        }
        let mut warm = Vec::with_capacity(s.invocations);
        let started = Instant::now();
        let mut capped = false;
        for i in s.warm_up + 1..=s.warm_up + s.invocations {
            if started.elapsed() >= s.scenario_cap {
                capped = true;
                break;
            }
            let inv = running.runtime.invoke((sc.event)(i), INVOKE_TIMEOUT).await?;
            warm.push(checked(inv, sc.expect, &sc.route)?);
            count(&mut done, &mut peak_rss_early);
        }
        Ok::<_, String>(ScenarioResult {
            route: sc.route.clone(),
            function: sc.function,
            init: running.init,
            first,
            warm,
            capped,
            peak_rss: running.peak_rss(),
            peak_rss_early: peak_rss_early.or_else(|| running.peak_rss()),
            invocations: done,
            rss_end: running.status_field("VmRSS:").map(|kib| kib * 1024),
            threads: running.threads(),
            response_bytes,
        })
    }
    .await;
    let outcome = outcome.map_err(|e| format!("{e}\n{}", log_tail(&running.log)));
    running.stop().await;
    outcome
}

struct ColdStarts {
    function: &'static str,
    memory: u32,
    inits: Vec<Duration>,
    ddb: Vec<Duration>,
    ddb_round_trips: (u32, u32),
    peak_rss: Vec<u64>,
}

async fn cold_starts(s: &Settings, function: &'static str, memory: u32) -> Result<ColdStarts, String> {
    let mut out = ColdStarts {
        function,
        memory,
        inits: Vec::new(),
        ddb: Vec::new(),
        ddb_round_trips: (u32::MAX, 0),
        peak_rss: Vec::new(),
    };
    for i in 0..s.cold_starts {
        let running = launch(s, function, memory, &format!("cold{i}")).await?;
        out.inits.push(running.init);
        out.ddb.push(running.init_ddb.busy);
        let rt = running.init_ddb.round_trips;
        out.ddb_round_trips = (out.ddb_round_trips.0.min(rt), out.ddb_round_trips.1.max(rt));
        if let Some(rss) = running.peak_rss() {
            out.peak_rss.push(rss);
        }
        running.stop().await;
    }
    Ok(out)
}

async fn settings() -> Result<Settings, String> {
    let endpoint = env_required("DYNAMODB_ENDPOINT")?;
    let hostport = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("DYNAMODB_ENDPOINT={endpoint}: expected http://host:port"))?
        .trim_end_matches('/');
    let ddb = tokio::net::lookup_host(hostport)
        .await
        .map_err(|e| format!("DYNAMODB_ENDPOINT={endpoint}: {e}"))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| format!("DYNAMODB_ENDPOINT={endpoint}: not a loopback address"))?;
    let bin_dir = PathBuf::from(std::env::var("BENCH_BIN_DIR").unwrap_or_else(|_| "target/release".into()));
    let log_dir = std::env::var("BENCH_LOG_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    for (f, _) in FUNCTIONS {
        if !bin_dir.join(f).is_file() {
            return Err(format!(
                "{} is missing: cargo build --release --bin auth --bin teams --bin users --bin docs",
                bin_dir.join(f).display()
            ));
        }
    }
    Ok(Settings {
        ddb,
        bin_dir,
        log_dir,
        invocations: env_number("BENCH_INVOCATIONS", 1000),
        warm_up: env_number("BENCH_WARMUP", 100),
        only: std::env::var("BENCH_ONLY").ok().filter(|v| !v.is_empty()),
        cold_starts: env_number("BENCH_COLD_STARTS", 10).max(1),
        scenario_cap: Duration::from_secs(env_number("BENCH_SCENARIO_MAX_SECS", 180)),
        rss_after: env_number("BENCH_LOGINS", 250),
        table: format!("bench-lambda-{}", uuid::Uuid::new_v4().simple()),
        secret: seed::random_secret(),
        extra_env: std::env::var("BENCH_FUNCTION_ENV")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn pass_init(c: &ColdStarts) -> (bool, Summary) {
    let s = Summary::of(&c.inits).expect("at least one cold start");
    (s.p50 <= targets::INIT, s)
}

async fn run() -> Result<(), String> {
    let s = settings().await?;
    println!("== Lambda functions under an emulated Runtime API ==");
    println!(
        "binaries: {} (host {}), DynamoDB Local at {} behind a timing proxy per process",
        s.bin_dir.display(),
        std::env::consts::ARCH,
        s.ddb
    );
    let app = seed::app(&format!("http://{}", s.ddb), &s.table, &s.secret).await?;
    seed::create_table(&app).await?;
    let teams: usize = env_number("BENCH_TEAMS", 30);
    let members: usize = env_number("BENCH_MEMBERS", 20);
    let seeded = seed::seed(&app, teams, members).await?;
    println!(
        "table {} seeded: 1 admin, 1 user, {} teams, {} members in the big team",
        s.table,
        seeded.teams.len(),
        members.max(1)
    );

    let scenarios: Vec<Scenario> = scenarios(&seeded)
        .into_iter()
        .filter(|sc| s.only.as_deref().is_none_or(|o| sc.route.contains(o)))
        .collect();

    // Cold starts: process start to the first /next call.
    eprintln!("lambda-bench: {} cold starts per function ...", s.cold_starts);
    let mut colds = Vec::new();
    for (function, memory) in FUNCTIONS {
        if scenarios.iter().any(|sc| sc.function == *function) {
            colds.push(cold_starts(&s, function, *memory).await?);
        }
    }
    println!();
    println!(
        "Init = process start -> first /next call; {} cold starts per function. It includes \
         run_lambda's DynamoDB warm-up GetItem (docs makes none):",
        s.cold_starts
    );
    println!(
        "  {:<8} {:>6} {:>11} {:>11} {:>11} {:>17} {:>20}",
        "function", "MB", "init p50", "init min", "init max", "of it DynamoDB", "RSS after (min-max)"
    );
    for c in &colds {
        let (_, init) = pass_init(c);
        let ddb = Summary::of(&c.ddb).expect("samples");
        println!(
            "  {:<8} {:>6} {:>11} {:>11} {:>11} {:>17} {:>20}",
            c.function,
            c.memory,
            ms(init.p50),
            ms(init.min),
            ms(init.max),
            format!("{} ({} RT)", ms(ddb.p50), c.ddb_round_trips.1),
            match (c.peak_rss.iter().min(), c.peak_rss.iter().max()) {
                (Some(lo), Some(hi)) if lo == hi => mib(*lo),
                (Some(lo), Some(hi)) => format!("{}-{}", mib(*lo).trim_end_matches(" MiB"), mib(*hi)),
                _ => "?".into(),
            },
        );
    }

    // Routes.
    let mut results = Vec::new();
    for sc in &scenarios {
        eprintln!(
            "lambda-bench: {} ({}) x {}+{} ...",
            sc.route, sc.function, s.warm_up, s.invocations
        );
        results.push(run_scenario(&s, sc).await?);
    }
    println!();
    println!(
        "Routes: a fresh process per route; its first invocation after init, {} unmeasured, \
         then {} measured warm invocations; every answer had the expected 2xx status.",
        s.warm_up, s.invocations
    );
    let header = format!(
        "  {:<36} {:<5} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>4} {:>4} {:>9}",
        "route",
        "fn",
        "n",
        "first",
        "first ours",
        "p50",
        "p99",
        "ours p50",
        "ours p99",
        "cpu p50",
        "cpu p99",
        "ddb p50",
        "req",
        "RT",
        "peak RSS"
    );
    println!("{header}");
    for r in &results {
        let lat = Summary::of(&r.latencies()).ok_or("no warm invocations")?;
        let ours = Summary::of(&r.our_code()).ok_or("no warm invocations")?;
        let cpu = Summary::of(&r.cpu());
        let ddb = Summary::of(&r.ddb_busy()).ok_or("no warm invocations")?;
        let (req_lo, req_hi) = r.min_max(|d| d.requests);
        let (rt_lo, rt_hi) = r.min_max(|d| d.round_trips);
        println!(
            "  {:<36} {:<5} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>4} {:>4} {:>9}",
            r.route,
            r.function,
            format!("{}{}", r.warm.len(), if r.capped { "*" } else { "" }),
            ms(r.first.latency),
            ms(r.first.latency.saturating_sub(r.first.ddb.busy)),
            ms(lat.p50),
            ms(lat.p99),
            ms(ours.p50),
            ms(ours.p99),
            cpu.map_or("?".into(), |c| ms(c.p50)),
            cpu.map_or("?".into(), |c| ms(c.p99)),
            ms(ddb.p50),
            range(req_lo, req_hi),
            range(rt_lo, rt_hi),
            r.peak_rss.map_or("?".into(), mib),
        );
    }
    if results.iter().any(|r| r.capped) {
        println!(
            "  * stopped by the time cap (BENCH_SCENARIO_MAX_SECS={} s)",
            s.scenario_cap.as_secs()
        );
    }
    println!(
        "  first: the first invocation after init (first ours: without its DynamoDB time). p50/p99: warm latency, \
         event handed out -> response received."
    );
    println!("  ours: latency minus DynamoDB wall time. cpu: on-CPU time of all the function's threads.");
    println!("  ddb: DynamoDB wall time. req: DynamoDB requests. RT: sequential round trips (min-max).");
    for r in &results {
        let counts: Vec<String> = r
            .round_trip_counts()
            .iter()
            .map(|(rt, n)| format!("{rt} RT x{n}"))
            .collect();
        println!(
            "  {}: init {}, response {} B, peak RSS after {} invocations {}, RSS at the end {} ({} threads), {}",
            r.route,
            ms(r.init),
            r.response_bytes,
            s.rss_after.min(r.invocations),
            r.peak_rss_early.map_or("?".into(), mib),
            r.rss_end.map_or("?".into(), mib),
            r.threads.map_or("?".into(), |t| t.to_string()),
            counts.join(", "),
        );
    }

    // Checks.
    println!();
    println!("Checks (PASS/MISS):");
    for c in &colds {
        let (pass, init) = pass_init(c);
        println!(
            "  {}",
            check_line(
                pass,
                &format!("init {} (p50 of {})", c.function, init.count),
                &format!("{} (max {})", ms(init.p50), ms(init.max)),
                &format!("<= {}", ms(targets::INIT)),
            )
        );
    }
    for r in &results {
        let ours = Summary::of(&r.our_code()).ok_or("no warm invocations")?;
        let cpu = Summary::of(&r.cpu()).map_or(String::new(), |c| format!(" (cpu {})", ms(c.p99)));
        let what = format!("our code p99 of {} {}", ours.count, r.route);
        let argon2 = targets::ARGON2_ROUTES.contains(&r.route.as_str());
        let line = check_line(
            argon2 || ours.p99 <= targets::OUR_CODE_P99,
            &what,
            &format!("{}{cpu}", ms(ours.p99)),
            &if argon2 {
                "none (argon2id by design)".to_string()
            } else {
                format!("<= {}", ms(targets::OUR_CODE_P99))
            },
        );
        println!(
            "  {}",
            if argon2 {
                line.replacen("[PASS]", "[INFO]", 1)
            } else {
                line
            }
        );
    }
    for r in &results {
        let mut per_invocation: Vec<u32> = std::iter::once(&r.first)
            .chain(&r.warm)
            .map(|i| i.ddb.round_trips)
            .collect();
        per_invocation.sort_unstable();
        let typical = per_invocation[per_invocation.len() / 2];
        let max = per_invocation[per_invocation.len() - 1];
        let documented = targets::documented_round_trips(&r.route);
        println!(
            "  {}",
            check_line(
                documented.is_some_and(|d| typical <= d),
                &format!("DynamoDB RT {}", r.route),
                &format!("p50 {typical} (max {max})"),
                &documented.map_or("undocumented".into(), |d| format!("<= {d} (docs/data-model.md)")),
            )
        );
    }
    for (function, _) in FUNCTIONS {
        let scenario_peaks = results
            .iter()
            .filter(|r| r.function == *function)
            .filter_map(|r| r.peak_rss);
        let cold_peaks = colds
            .iter()
            .filter(|c| c.function == *function)
            .flat_map(|c| c.peak_rss.iter().copied());
        let Some(peak) = scenario_peaks.chain(cold_peaks).max() else {
            continue;
        };
        println!(
            "  {}",
            check_line(
                peak <= targets::PEAK_RSS_BYTES,
                &format!("peak RSS {function}"),
                &mib(peak),
                &format!("<= {}", mib(targets::PEAK_RSS_BYTES)),
            )
        );
    }
    for r in results
        .iter()
        .filter(|r| targets::ARGON2_ROUTES.contains(&r.route.as_str()))
    {
        let Some(peak) = r.peak_rss_early else { continue };
        let login = r.route == targets::LOGIN_ROUTE;
        let line = check_line(
            peak <= targets::LOGIN_PEAK_RSS_BYTES,
            &format!("peak RSS {} after {}", r.route, s.rss_after.min(r.invocations)),
            &mib(peak),
            &if login {
                format!("<= {}", mib(targets::LOGIN_PEAK_RSS_BYTES))
            } else {
                format!("none (login's is <= {})", mib(targets::LOGIN_PEAK_RSS_BYTES))
            },
        );
        println!(
            "  {}",
            if login {
                line
            } else {
                line.replacen("[PASS]", "[INFO]", 1).replacen("[MISS]", "[INFO]", 1)
            }
        );
    }
    Ok(())
}

fn range(lo: u32, hi: u32) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambda-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
