//! One webhook delivery: a JSON event (or a Slack-compatible `{"text"}`) POSTed with
//! its HMAC-SHA256 signature. Redirects are never followed. The URL is checked again
//! (https, or loopback in the local configuration), and so is every address its host
//! resolves to; the connection is pinned to the checked address, so a DNS answer that
//! changes between check and connect cannot point it elsewhere.

use crate::{NotifierConfig, SendError};
use shared::{
    notify::{signature, webhook as rules},
    store::outbox::{Delivery, Webhook},
};

pub async fn post(
    hook: &Webhook,
    delivery: &Delivery,
    cfg: &NotifierConfig,
    now: time::OffsetDateTime,
) -> Result<(), SendError> {
    let url = rules::check_url(&hook.url, cfg.webhook_allow_loopback)
        .map_err(|why| SendError::new(format!("the URL {why}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| SendError::new("the URL has no host"))?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((bare_host.as_str(), port))
        .await
        .map_err(|_| SendError::new("the host name did not resolve"))?
        .collect();
    let Some(address) = addresses.first().copied() else {
        return Err(SendError::new("the host name did not resolve"));
    };
    if addresses
        .iter()
        .any(|a| !rules::address_allowed(a.ip(), cfg.webhook_allow_loopback))
    {
        return Err(SendError::new("the host resolves to a private or loopback address"));
    }
    let body = rules::payload(
        delivery.notice_id,
        delivery.kind,
        &delivery.notice_created_at,
        &delivery.facts,
        &cfg.base_url,
        hook.slack,
    )
    .map_err(|_| SendError::new("the payload could not be built"))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.send_timeout)
        .resolve(&bare_host, address)
        .user_agent("ssi-notifier")
        .build()
        .map_err(|_| SendError::new("the HTTP client could not be built"))?;
    let delivery_id = format!("{}:{}", delivery.notice_id, delivery.recipient_id);
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-ssi-event", delivery.kind.as_str())
        .header("x-ssi-delivery", delivery_id)
        .header(
            signature::HEADER,
            signature::sign(&hook.secret, now.unix_timestamp(), &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let e = e.without_url();
            SendError::new(if e.is_timeout() {
                "the webhook did not answer in time"
            } else if e.is_connect() {
                "could not connect to the webhook"
            } else {
                "the webhook request failed"
            })
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        Err(SendError::new(format!(
            "the webhook answered {} (redirects are not followed)",
            status.as_u16()
        )))
    } else {
        Err(SendError::new(format!("the webhook answered {}", status.as_u16())))
    }
}
