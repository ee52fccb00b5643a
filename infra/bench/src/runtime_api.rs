//! An emulation of the AWS Lambda Runtime API (the HTTP interface between a Lambda
//! runtime — here `lambda_runtime` inside our function binaries — and the Lambda
//! service), enough to drive a real function binary one invocation at a time:
//!
//! - `GET  /2018-06-01/runtime/invocation/next` long-polls for the next event and
//!   returns it with the `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id` headers;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` delivers the result;
//! - `POST /2018-06-01/runtime/invocation/{id}/error` reports a failed invocation;
//! - `POST /2018-06-01/runtime/init/error` reports a failed initialisation.
//!
//! Timing: an invocation's latency runs from the moment its event is handed out on
//! `/next` to the moment its `/response` (or `/error`) request arrives — what Lambda
//! bills as duration. The DynamoDB proxy's meter is read at the same two moments, so
//! each invocation gets exactly the DynamoDB work done on its behalf. The first
//! `/next` call marks the end of the function's initialisation.

use crate::ddb_proxy::{DdbProxy, DdbStats};
use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

const PREFIX: &str = "/2018-06-01/runtime";

/// The function's timeout, as `template.yaml` sets it (`Globals.Function.Timeout`),
/// for `Lambda-Runtime-Deadline-Ms`.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A completed invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `statusCode` of the API Gateway v2 response the function returned.
    pub status: u16,
    /// The whole `/response` payload (the API Gateway v2 response JSON).
    pub payload: Bytes,
    /// From handing out the event to receiving the response.
    pub latency: Duration,
    /// DynamoDB work done during the invocation.
    pub ddb: DdbStats,
    /// On-CPU time of all the function's threads during the invocation (from
    /// `/proc/<pid>/task/*/schedstat`, nanosecond resolution); `None` when unknown.
    pub cpu: Option<Duration>,
}

/// How the function's initialisation ended.
#[derive(Debug, Clone)]
pub enum InitState {
    Pending,
    /// The first `/next` call arrived at this moment; DynamoDB work done before it.
    Ready(Instant, DdbStats),
    /// `/runtime/init/error` was called with this body.
    Failed(String),
}

struct Job {
    event: Bytes,
    reply: oneshot::Sender<Result<Invocation, String>>,
}

struct InFlight {
    started: Instant,
    cpu_before: Option<Duration>,
    reply: oneshot::Sender<Result<Invocation, String>>,
}

struct State {
    function_arn: String,
    proxy: Arc<DdbProxy>,
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    init: watch::Sender<InitState>,
    /// The function process, for its CPU time.
    pid: std::sync::atomic::AtomicU32,
}

/// One emulated Runtime API, for one function process.
pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    jobs: mpsc::Sender<Job>,
    init: watch::Receiver<InitState>,
    accept: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RuntimeApi {
    /// Listens on an OS-chosen loopback port. `proxy` is the DynamoDB proxy the
    /// function talks to, read at the start and end of each invocation.
    pub async fn start(function_name: &str, proxy: Arc<DdbProxy>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let (init_tx, init_rx) = watch::channel(InitState::Pending);
        let state = Arc::new(State {
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"),
            proxy,
            jobs: tokio::sync::Mutex::new(jobs_rx),
            in_flight: Mutex::new(HashMap::new()),
            init: init_tx,
            pid: Default::default(),
        });
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            let state = accept_state;
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            jobs: jobs_tx,
            init: init_rx,
            accept,
        })
    }

    /// The function's process id, whose CPU time each invocation then reports.
    pub fn watch_process(&self, pid: u32) {
        self.state.pid.store(pid, std::sync::atomic::Ordering::Relaxed);
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits (at most `timeout`) for the function to finish its initialisation: its
    /// first `/next` call, or an init error.
    pub async fn wait_init(&self, timeout: Duration) -> Result<(Instant, DdbStats), String> {
        let mut init = self.init.clone();
        let outcome = tokio::time::timeout(timeout, async {
            loop {
                match &*init.borrow_and_update() {
                    InitState::Pending => {}
                    InitState::Ready(at, ddb) => return Ok((*at, *ddb)),
                    InitState::Failed(why) => return Err(format!("init error: {why}")),
                }
                if init.changed().await.is_err() {
                    return Err("the Runtime API stopped".to_string());
                }
            }
        })
        .await;
        outcome.unwrap_or_else(|_| Err(format!("no /next call within {timeout:?}")))
    }

    /// Hands `event` to the function and waits (at most `timeout`) for its answer.
    pub async fn invoke(&self, event: Vec<u8>, timeout: Duration) -> Result<Invocation, String> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            event: Bytes::from(event),
            reply,
        };
        let waited = tokio::time::timeout(timeout, async {
            self.jobs
                .send(job)
                .await
                .map_err(|_| "the Runtime API stopped".to_string())?;
            answer.await.map_err(|_| "the invocation was dropped".to_string())?
        })
        .await;
        waited.unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp
}

fn trace_id() -> String {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let a: u128 = rand::random();
    let b: u64 = rand::random();
    format!(
        "Root=1-{epoch:08x}-{:024x};Parent={b:016x};Sampled=0",
        a & ((1u128 << 96) - 1)
    )
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let arrived = Instant::now();
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return reply(StatusCode::NOT_FOUND, "unknown path");
    };
    match (req.method().clone(), rest) {
        (Method::GET, "/invocation/next") => next(state, arrived).await,
        (Method::POST, "/init/error") => {
            let body = read_body(req).await;
            state
                .init
                .send_replace(InitState::Failed(String::from_utf8_lossy(&body).into_owned()));
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, rest) => {
            let Some((id, kind)) = rest
                .strip_prefix("/invocation/")
                .and_then(|r| r.rsplit_once('/'))
                .filter(|(_, kind)| *kind == "response" || *kind == "error")
            else {
                return reply(StatusCode::NOT_FOUND, "unknown path");
            };
            let (id, is_error) = (id.to_string(), kind == "error");
            // The meter is read when the answer arrives, before its body is read.
            let ddb = state.proxy.take(arrived);
            let cpu_after = cpu_time(state.pid.load(std::sync::atomic::Ordering::Relaxed));
            let body = read_body(req).await;
            let Some(in_flight) = state.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) else {
                return reply(StatusCode::BAD_REQUEST, "unknown request id");
            };
            let outcome = if is_error {
                Err(format!(
                    "the function reported an error: {}",
                    String::from_utf8_lossy(&body)
                ))
            } else {
                Ok(Invocation {
                    status: status_code(&body),
                    payload: body,
                    latency: arrived.saturating_duration_since(in_flight.started),
                    ddb,
                    cpu: in_flight
                        .cpu_before
                        .zip(cpu_after)
                        .map(|(before, after)| after.saturating_sub(before)),
                })
            };
            let _ = in_flight.reply.send(outcome);
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, "unknown path"),
    }
}

/// Long-polls for the next job and hands its event out.
async fn next(state: &State, arrived: Instant) -> Response<Full<Bytes>> {
    if matches!(*state.init.borrow(), InitState::Pending) {
        let ddb = state.proxy.take(arrived);
        state.init.send_replace(InitState::Ready(arrived, ddb));
    }
    let job = state.jobs.lock().await.recv().await;
    let Some(job) = job else {
        return reply(StatusCode::GONE, "shutting down");
    };
    let id = uuid::Uuid::new_v4().to_string();
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(FUNCTION_TIMEOUT)
        .as_millis();
    let mut resp = reply(StatusCode::OK, job.event);
    let headers = resp.headers_mut();
    let header = |v: String| v.parse().expect("ASCII header value");
    headers.insert("content-type", header("application/json".into()));
    headers.insert("lambda-runtime-aws-request-id", header(id.clone()));
    headers.insert("lambda-runtime-deadline-ms", header(deadline.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header(state.function_arn.clone()),
    );
    headers.insert("lambda-runtime-trace-id", header(trace_id()));
    // Whatever DynamoDB work happened between invocations does not count.
    let cpu_before = cpu_time(state.pid.load(std::sync::atomic::Ordering::Relaxed));
    let started = Instant::now();
    state.proxy.take(started);
    state.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(
        id,
        InFlight {
            started,
            cpu_before,
            reply: job.reply,
        },
    );
    resp
}

async fn read_body(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

/// On-CPU time so far of every thread of process `pid` (0: none): the first field of
/// each `/proc/<pid>/task/<tid>/schedstat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    if pid == 0 {
        return None;
    }
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// `statusCode` of an API Gateway v2 response payload (0 when there is none).
pub fn status_code(payload: &[u8]) -> u16 {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(serde_json::Value::as_u64))
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_of_a_gateway_response() {
        assert_eq!(status_code(br#"{"statusCode":201,"body":"{}"}"#), 201);
        assert_eq!(status_code(b"not json"), 0);
        assert_eq!(status_code(br#"{"body":"x"}"#), 0);
    }

    #[test]
    fn reads_cpu_time_of_a_process() {
        // Kernels without schedstat (CONFIG_SCHED_INFO off) have nothing to read.
        if let Some(own) = cpu_time(std::process::id()) {
            assert!(own > Duration::ZERO);
        }
        assert_eq!(cpu_time(0), None);
    }

    #[test]
    fn trace_ids_have_the_xray_shape() {
        let t = trace_id();
        assert!(t.starts_with("Root=1-"), "{t}");
        let root = t.split(';').next().unwrap();
        let parts: Vec<&str> = root.trim_start_matches("Root=").split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
    }
}
