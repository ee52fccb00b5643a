//! A timing reverse proxy between a function and DynamoDB Local (HTTP/1.1, loopback).
//!
//! The function's `DYNAMODB_ENDPOINT` points here; every request is forwarded on a
//! connection of its own to DynamoDB Local (one upstream connection per client
//! connection, as the SDK's pool opens them) and timed by a [`BusyMeter`]: how many
//! requests, and how long at least one of them was in flight (wall time, so
//! concurrent requests are not counted twice).
//!
//! A request is timed from the moment its head reaches the proxy to the moment the
//! whole upstream answer is back in the proxy; the proxy's own forwarding work on
//! either side (a few tens of µs on loopback) is therefore *not* in the DynamoDB time
//! and ends up in "our code", which makes that figure an upper bound.

use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Bytes, Incoming},
    client::conn::http1 as client_http1,
    header,
    server::conn::http1 as server_http1,
    service::service_fn,
    Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, task::JoinHandle};

/// What DynamoDB cost during one measured interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DdbStats {
    /// Requests started in the interval.
    pub requests: u32,
    /// Sequential round trips: the longest run of requests that follow one another
    /// without overlapping in time. Requests in flight together (sent concurrently)
    /// count once; a chain of dependent requests counts each. This is what
    /// docs/data-model.md counts as RT (an upper bound of it: two independent requests
    /// that happen not to overlap count twice).
    pub round_trips: u32,
    /// Wall time with at least one request in flight.
    pub busy: Duration,
}

/// Records the time span of every request to compute [`DdbStats`] per interval.
#[derive(Debug, Default)]
pub struct BusyMeter {
    next_id: u64,
    requests: u32,
    open: HashMap<u64, Instant>,
    done: Vec<(Instant, Instant)>,
}

impl BusyMeter {
    /// A request starts at `at`; returns its ticket for [`BusyMeter::end`].
    pub fn start(&mut self, at: Instant) -> u64 {
        self.next_id += 1;
        self.requests += 1;
        self.open.insert(self.next_id, at);
        self.next_id
    }

    /// The request with `ticket` ends at `at`.
    pub fn end(&mut self, ticket: u64, at: Instant) {
        if let Some(started) = self.open.remove(&ticket) {
            self.done.push((started, at.max(started)));
        }
    }

    /// The figures since the last call (requests still in flight count up to `at`),
    /// and a fresh interval from `at`.
    pub fn take(&mut self, at: Instant) -> DdbStats {
        let mut spans: Vec<(Instant, Instant)> = std::mem::take(&mut self.done);
        spans.extend(self.open.values().map(|s| (*s, at.max(*s))));
        let stats = DdbStats {
            requests: std::mem::take(&mut self.requests),
            round_trips: sequential(&mut spans),
            busy: union(&mut spans),
        };
        // Requests still in flight continue into the new interval from `at`.
        for started in self.open.values_mut() {
            *started = at.max(*started);
        }
        stats
    }
}

/// Total time covered by at least one span.
fn union(spans: &mut [(Instant, Instant)]) -> Duration {
    spans.sort_unstable_by_key(|s| s.0);
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for &(start, end) in spans.iter() {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

/// The largest number of spans that follow one another without overlapping
/// (earliest-end-first interval scheduling).
fn sequential(spans: &mut [(Instant, Instant)]) -> u32 {
    spans.sort_unstable_by_key(|s| s.1);
    let mut count = 0;
    let mut last_end: Option<Instant> = None;
    for &(start, end) in spans.iter() {
        if last_end.is_none_or(|e| start >= e) {
            count += 1;
            last_end = Some(end);
        }
    }
    count
}

/// The proxy: listens on an OS-chosen loopback port until dropped.
pub struct DdbProxy {
    addr: SocketAddr,
    meter: Arc<Mutex<BusyMeter>>,
    accept: JoinHandle<()>,
}

impl Drop for DdbProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

type ProxyBody = Full<Bytes>;
type Sender = client_http1::SendRequest<ProxyBody>;

/// Headers that belong to one connection and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

impl DdbProxy {
    /// Starts a proxy in front of `upstream` (DynamoDB Local's address).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let meter = Arc::new(Mutex::new(BusyMeter::default()));
        let accept_meter = meter.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let meter = accept_meter.clone();
                tokio::spawn(async move {
                    // This client connection's own upstream connection, opened lazily and
                    // reopened when DynamoDB Local closes it.
                    let conn: Arc<tokio::sync::Mutex<Option<Sender>>> = Arc::default();
                    let service = service_fn(move |req| {
                        let (meter, conn) = (meter.clone(), conn.clone());
                        async move { Ok::<_, Infallible>(forward(req, upstream, &conn, &meter).await) }
                    });
                    let _ = server_http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, meter, accept })
    }

    /// The endpoint URL to give the function as `DYNAMODB_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The figures since the last call; starts a new interval.
    pub fn take(&self, at: Instant) -> DdbStats {
        self.meter.lock().unwrap_or_else(|e| e.into_inner()).take(at)
    }
}

async fn connect(upstream: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connect to DynamoDB Local at {upstream}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = client_http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with DynamoDB Local: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request upstream on this connection's upstream connection (reconnecting
/// once if DynamoDB Local closed it while idle).
async fn send_upstream(
    upstream: SocketAddr,
    conn: &tokio::sync::Mutex<Option<Sender>>,
    build: impl Fn() -> Request<ProxyBody>,
) -> Result<(hyper::http::response::Parts, Bytes), String> {
    let mut guard = conn.lock().await;
    for attempt in 0..2 {
        let reusable = guard.as_ref().is_some_and(|s| !s.is_closed());
        if !reusable {
            *guard = Some(connect(upstream).await?);
        }
        let sender = guard.as_mut().expect("connected above");
        let sent = match sender.ready().await {
            Ok(()) => sender.send_request(build()).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let body = body
                    .collect()
                    .await
                    .map_err(|e| format!("reading DynamoDB Local's answer: {e}"))?
                    .to_bytes();
                return Ok((parts, body));
            }
            // Closed between requests: the request was not processed; retry once on a
            // fresh connection.
            Err(e) if attempt == 0 && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) => {
                *guard = None;
            }
            Err(e) => return Err(format!("request to DynamoDB Local failed: {e}")),
        }
    }
    Err("request to DynamoDB Local failed twice".into())
}

async fn forward(
    req: Request<Incoming>,
    upstream: SocketAddr,
    conn: &tokio::sync::Mutex<Option<Sender>>,
    meter: &Mutex<BusyMeter>,
) -> Response<ProxyBody> {
    let ticket = meter.lock().unwrap_or_else(|e| e.into_inner()).start(Instant::now());
    let result = async {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the function's request: {e}"))?
            .to_bytes();
        let build = || {
            let mut builder = Request::builder().method(parts.method.clone()).uri(parts.uri.clone());
            for (name, value) in &parts.headers {
                if !HOP_BY_HOP.contains(&name.as_str()) {
                    builder = builder.header(name, value);
                }
            }
            builder.body(Full::new(body.clone())).expect("valid request parts")
        };
        send_upstream(upstream, conn, build).await
    }
    .await;
    meter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .end(ticket, Instant::now());
    match result {
        Ok((parts, body)) => {
            let mut builder = Response::builder().status(parts.status);
            for (name, value) in &parts.headers {
                if !HOP_BY_HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
                    builder = builder.header(name, value);
                }
            }
            builder
                .body(Full::new(body))
                .unwrap_or_else(|_| bad_gateway("unusable answer"))
        }
        Err(why) => bad_gateway(&why),
    }
}

fn bad_gateway(why: &str) -> Response<ProxyBody> {
    eprintln!("bench: DynamoDB proxy: {why}");
    let mut resp = Response::new(Full::new(Bytes::from(why.to_string())));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> impl Fn(u64) -> Instant {
        let t0 = Instant::now();
        move |ms| t0 + Duration::from_millis(ms)
    }

    #[test]
    fn sequential_requests_add_up() {
        let at = clock();
        let mut m = BusyMeter::default();
        let a = m.start(at(0));
        m.end(a, at(2));
        let b = m.start(at(5));
        m.end(b, at(8));
        let s = m.take(at(10));
        assert_eq!((s.requests, s.round_trips), (2, 2));
        assert_eq!(s.busy, Duration::from_millis(5));
    }

    #[test]
    fn concurrent_requests_count_once() {
        // Login: (a) marker 0..4 then user 4..6, concurrently (b) reserve 1..3;
        // then the release 9..11. Three round trips, wall time 8 ms.
        let at = clock();
        let mut m = BusyMeter::default();
        let marker = m.start(at(0));
        let reserve = m.start(at(1));
        m.end(reserve, at(3));
        m.end(marker, at(4));
        let user = m.start(at(4));
        m.end(user, at(6));
        let release = m.start(at(9));
        m.end(release, at(11));
        let s = m.take(at(12));
        assert_eq!((s.requests, s.round_trips), (4, 3));
        assert_eq!(s.busy, Duration::from_millis(8));
    }

    #[test]
    fn take_resets_and_splits_an_open_request() {
        let at = clock();
        let mut m = BusyMeter::default();
        let a = m.start(at(0));
        let first = m.take(at(3));
        assert_eq!((first.requests, first.round_trips), (1, 1));
        assert_eq!(first.busy, Duration::from_millis(3));
        m.end(a, at(5));
        let second = m.take(at(6));
        assert_eq!((second.requests, second.round_trips), (0, 1));
        assert_eq!(second.busy, Duration::from_millis(2));
        assert_eq!(m.take(at(7)), DdbStats::default());
    }

    #[test]
    fn nested_and_touching_spans() {
        let at = clock();
        let mut spans = vec![(at(0), at(10)), (at(2), at(3)), (at(10), at(12))];
        assert_eq!(union(&mut spans), Duration::from_millis(12));
        assert_eq!(sequential(&mut spans), 2);
        assert_eq!(union(&mut []), Duration::ZERO);
        assert_eq!(sequential(&mut []), 0);
    }
}
