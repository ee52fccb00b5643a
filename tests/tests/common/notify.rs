//! The notifications harness: a real local SMTP sink (aiosmtpd 1.4.6 from the
//! project's virtualenv, saving each message into a maildir), a tiny HTTP receiver for
//! webhooks on 127.0.0.1, and a notifier over the test's table.

use notifier_function::{Notifier, NotifierConfig, Smtp};
use shared::{notify::retry::RetryPolicy, store::Store};
use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn python() -> PathBuf {
    super::provision::repo_root().join(".venv/bin/python")
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    super::provision::dead_port()
}

/// One mail as the sink saved it, decoded by Python's `email` package.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The whole file, undecoded.
    pub raw: String,
}

/// `python -m aiosmtpd -n -l 127.0.0.1:PORT -c aiosmtpd.handlers.Mailbox DIR`; the
/// process is killed by its id when stopped or dropped.
pub struct MailSink {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<std::process::Child>,
}

impl MailSink {
    /// A sink on a free port, into a fresh directory.
    pub async fn start() -> Self {
        let root = std::env::temp_dir().join(format!("ssi-mail-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).expect("mail root");
        // Mailbox wants to create the maildir itself.
        Self::start_at(free_port(), root.join("maildir")).await
    }

    pub async fn start_at(port: u16, dir: PathBuf) -> Self {
        let mut sink = Self { port, dir, child: None };
        sink.up().await;
        sink
    }

    /// (Re)starts the server on the same port and directory.
    pub async fn up(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let child = std::process::Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &listen, "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd (installed into .venv by scripts/provision-tools.sh)");
        self.child = Some(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect(&listen).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start on {listen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (the mail it saved stays).
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every mail saved so far.
    pub fn mails(&self) -> Vec<Mail> {
        if !self.dir.exists() {
            return Vec::new();
        }
        let program = r#"
import email, email.policy, json, os, sys
root = sys.argv[1]
for sub in ("new", "cur"):
    d = os.path.join(root, sub)
    if not os.path.isdir(d):
        continue
    for name in sorted(os.listdir(d)):
        raw = open(os.path.join(d, name), "rb").read()
        m = email.message_from_bytes(raw, policy=email.policy.default)
        text = m.get_body(("plain",))
        html = m.get_body(("html",))
        print(json.dumps({
            "to": str(m["To"]), "subject": str(m["Subject"]),
            "text": text.get_content() if text else "", "html": html.get_content() if html else "",
            "raw": raw.decode("utf-8", "replace"),
        }))
"#;
        let out = std::process::Command::new(python())
            .args(["-c", program])
            .arg(&self.dir)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "reading the maildir: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("mail JSON"))
            .collect()
    }

    /// The mails to `to` (case-insensitive) whose subject contains `subject`.
    pub fn to(&self, to: &str, subject: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.to_lowercase().contains(&to.to_lowercase()) && m.subject.contains(subject))
            .collect()
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        self.down();
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// Settings for a test's notifier: quick retries, a short lease, loopback webhooks.
pub fn config(max_attempts: u32) -> NotifierConfig {
    NotifierConfig {
        base_url: "http://127.0.0.1:3000".into(),
        retry: RetryPolicy {
            base: Duration::from_millis(200),
            max_attempts,
        },
        lease: Duration::from_secs(10),
        send_timeout: Duration::from_secs(3),
        webhook_allow_loopback: true,
        webhook_disable_after: 2,
        poll: Duration::from_millis(100),
    }
}

pub fn notifier(store: &Store, smtp_port: u16, cfg: NotifierConfig) -> Notifier<Smtp> {
    let smtp = Smtp::new("127.0.0.1", smtp_port, "ssi@localhost", cfg.send_timeout).expect("smtp");
    Notifier::new(store.clone(), smtp, cfg)
}

/// Runs passes until two in a row find nothing to do.
pub async fn drain(n: &Notifier<Smtp>) {
    let mut idle = 0;
    for _ in 0..50 {
        let pass = n
            .run_once(time::OffsetDateTime::now_utc())
            .await
            .expect("notifier pass");
        if pass.is_idle() {
            idle += 1;
            if idle == 2 {
                return;
            }
        } else {
            idle = 0;
        }
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 receiver on 127.0.0.1: records each request and answers with
/// `status` and `extra` headers.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(status: u16, extra: &[(&str, &str)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let record = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                let extra = extra.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let Ok(n) = conn.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let Ok(n) = conn.read(&mut chunk).await else { return };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.lines();
                    let path = lines
                        .next()
                        .and_then(|l| l.split_whitespace().nth(1))
                        .unwrap_or_default()
                        .to_string();
                    let headers = lines
                        .filter_map(|l| {
                            l.split_once(':')
                                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        })
                        .collect();
                    let body = buf[head_end..(head_end + length).min(buf.len())].to_vec();
                    record.lock().unwrap().push(Received { path, headers, body });
                    let reason = if status < 300 { "OK" } else { "Nope" };
                    let answer =
                        format!("HTTP/1.1 {status} {reason}\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self { url, got, task }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
