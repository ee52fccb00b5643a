//! Webhook URLs and payloads.
//!
//! A URL must be `https://` with a host name or a public IP address. Only the local
//! configuration (`WEBHOOK_ALLOW_LOOPBACK=true`, set by `make run` and the tests) also
//! takes `http://` to a loopback address (`127.0.0.0/8`, `[::1]`, `localhost`). URLs
//! with user info, to private, link-local, loopback (outside that configuration) or
//! unspecified IP literals are refused; the notifier checks the addresses a host name
//! resolves to in the same way before it connects, and pins the connection to them
//! (see `docs/notifications.md`, SSRF).

use super::{Facts, Kind};
use serde::Serialize;
use std::net::IpAddr;

/// The longest URL a webhook may have.
pub const MAX_URL_LEN: usize = 2048;

/// Whether an address may be the target of a delivery.
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                // 100.64.0.0/10 (carrier-grade NAT) and 0.0.0.0/8
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
                || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), allow_loopback);
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Checks a webhook URL; the error says why it is refused.
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<url::Url, &'static str> {
    if raw.len() > MAX_URL_LEN {
        return Err("must be at most 2048 characters");
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| "must be an absolute URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info");
    }
    let host = url.host().ok_or("must have a host")?;
    let loopback_host = match &host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && loopback_host => {}
        "http" if allow_loopback => return Err("must be https (http only to a loopback address locally)"),
        _ => return Err("must be https"),
    }
    match host {
        url::Host::Domain(_) if loopback_host && !allow_loopback => Err("must not point at this host"),
        url::Host::Domain(_) => Ok(url),
        url::Host::Ipv4(ip) if address_allowed(IpAddr::V4(ip), allow_loopback) => Ok(url),
        url::Host::Ipv6(ip) if address_allowed(IpAddr::V6(ip), allow_loopback) => Ok(url),
        _ => Err("must not point at a private, loopback or link-local address"),
    }
}

/// The JSON body of a delivery (the signature covers exactly these bytes).
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// The notice's id: the same for every receiver, so a receiver can drop repeats.
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub created_at: &'a str,
    pub data: &'a Facts,
    /// The mail's subject, for people.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The body of a delivery: the event, or for a Slack-compatible hook `{"text": …}`.
pub fn payload(
    id: uuid::Uuid,
    kind: Kind,
    created_at: &str,
    facts: &Facts,
    base: &str,
    slack: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    let (summary, lines) = super::message::summary(kind, facts);
    let link = super::message::request_link(base, facts);
    if slack {
        let mut text = format!("*{summary}*\n{}", lines.join("\n"));
        if let Some(link) = &link {
            text.push_str(&format!("\n<{link}|The request>"));
        }
        return serde_json::to_vec(&serde_json::json!({ "text": text }));
    }
    serde_json::to_vec(&Event {
        id,
        kind,
        created_at,
        data: facts,
        summary,
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_required_and_loopback_only_locally() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/x", false).unwrap_err(),
            "must be https"
        );
        assert!(check_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("http://[::1]:9/x", true).is_ok());
        assert!(check_url("http://localhost:9/x", true).is_ok());
        assert!(check_url("http://hooks.example.com/x", true).is_err());
        assert!(check_url("ftp://127.0.0.1/x", true).is_err());
        assert!(check_url("https://user:pw@hooks.example.com/", false).is_err());
        assert!(check_url("not a url", false).is_err());
    }

    #[test]
    fn private_and_metadata_addresses_are_refused() {
        for url in [
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1/",
            "https://localhost/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        assert!(check_url("https://93.184.216.34/", false).is_ok());
    }

    #[test]
    fn payloads_are_events_or_slack_text() {
        let facts = Facts {
            request_name: Some("db".into()),
            ..Facts::default()
        };
        let id = uuid::Uuid::nil();
        let body: serde_json::Value =
            serde_json::from_slice(&payload(id, Kind::RequestReady, "t", &facts, "http://x", false).unwrap()).unwrap();
        assert_eq!(body["type"], "request_ready");
        assert_eq!(body["data"]["request_name"], "db");
        let slack: serde_json::Value =
            serde_json::from_slice(&payload(id, Kind::RequestReady, "t", &facts, "http://x", true).unwrap()).unwrap();
        assert!(slack["text"].as_str().unwrap().contains("is now ready"));
        assert_eq!(slack.as_object().unwrap().len(), 1);
    }
}
