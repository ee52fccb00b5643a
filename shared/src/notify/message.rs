//! The mail of a notice: a subject naming the request and its new status, a plain
//! text body and an HTML body. Built from [`Facts`] only (no secret has a field
//! there); the link goes to the request in the API, never to its credentials.

use super::{Facts, Kind};

/// One rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The request as a subject names it: `postgres "orders-db"`.
fn request_label(facts: &Facts) -> String {
    match (&facts.resource_type, &facts.request_name) {
        (Some(t), Some(n)) => format!("{t} \"{n}\""),
        (None, Some(n)) => format!("\"{n}\""),
        _ => "your request".into(),
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The link to a request in the API (`base` is the public base URL, no trailing `/`).
pub fn request_link(base: &str, facts: &Facts) -> Option<String> {
    facts
        .request_id
        .map(|id| format!("{}/api/v1/requests/{id}", base.trim_end_matches('/')))
}

/// The subject and the lines of a notice (the same lines make both bodies).
pub fn summary(kind: Kind, facts: &Facts) -> (String, Vec<String>) {
    let label = request_label(facts);
    let status = facts.status.map_or("", |s| s.as_str());
    let mut lines = Vec::new();
    let subject = match kind {
        Kind::RequestSubmitted => {
            lines.push(format!("A new request, {label}, waits for review."));
            if let Some(cost) = &facts.estimated_monthly_cost {
                lines.push(format!(
                    "Estimated cost: {} USD a month (an estimate from list prices).",
                    cost.amount()
                ));
            }
            match &facts.budget {
                Some(b) if b.within => lines.push(format!(
                    "Budget: within the team's {} USD a month ({} committed, {} once approved).",
                    b.limit.amount(),
                    b.committed.amount(),
                    b.after.amount()
                )),
                Some(b) => lines.push(format!(
                    "Budget: OVER the team's {} USD a month ({} committed, {} once approved): approving needs override_budget.",
                    b.limit.amount(),
                    b.committed.amount(),
                    b.after.amount()
                )),
                None => {}
            }
            format!("[SSI] {label} submitted: pending review")
        }
        Kind::RequestApproved => {
            lines.push(format!("Your request {label} was approved; it is being provisioned."));
            format!("[SSI] {label} is now approved")
        }
        Kind::RequestRejected => {
            lines.push(format!("Your request {label} was rejected."));
            format!("[SSI] {label} is now rejected")
        }
        Kind::RequestReady => {
            lines.push(format!(
                "Your request {label} is provisioned and ready. Read its credentials through the API (GET .../credentials, signed in): they are never sent by mail."
            ));
            format!("[SSI] {label} is now ready")
        }
        Kind::RequestFailed => {
            let (what, short) = match facts.operation {
                Some(crate::model::JobOperation::Destroy) => ("The deletion of", "deletion"),
                Some(crate::model::JobOperation::Rotate) => ("The credentials rotation of", "credentials rotation"),
                _ => ("Provisioning of", ""),
            };
            lines.push(format!(
                "{what} your request {label} failed and will not be tried again until an admin retries it."
            ));
            if short.is_empty() {
                format!(
                    "[SSI] {label} is now {}",
                    if status.is_empty() { "failed" } else { status }
                )
            } else {
                // The request keeps its status (ready, deleting): say what failed.
                format!("[SSI] {label}: {short} failed (now {status})")
            }
        }
        Kind::RequestDeleted => {
            lines.push(format!("The resource of your request {label} was deleted."));
            format!("[SSI] {label} is now deleted")
        }
        Kind::RequestExpiring => {
            let at = facts.expires_at.as_deref().unwrap_or("soon");
            lines.push(format!(
                "Your request {label} expires at {at}; it will then be deleted. Extend it (POST .../extend) to keep it."
            ));
            format!("[SSI] {label} expires at {at} (now {status})")
        }
        Kind::CredentialsRotated => {
            lines.push(format!(
                "The credentials of your request {label} were rotated: the old ones no longer work. If you did not ask for this, tell your admins."
            ));
            format!("[SSI] {label}: credentials rotated (still {status})")
        }
        Kind::PasswordChanged => {
            lines.push(
                "The password of your account was changed, and every session signed in before was signed out. If this was not you, tell your admins at once."
                    .into(),
            );
            "[SSI] Your password was changed".into()
        }
        Kind::BudgetThreshold => {
            let team = facts.team_name.as_deref().unwrap_or("your team");
            let month = facts.month.as_deref().unwrap_or("this month");
            let percent = facts.budget_percent.unwrap_or(100);
            let (spend, limit) = (
                facts.spend.map(|m| m.amount()).unwrap_or_default(),
                facts.limit.map(|m| m.amount()).unwrap_or_default(),
            );
            lines.push(format!(
                "The estimated spend of team {team} in {month} is {spend} USD: {percent} % or more of its budget of {limit} USD a month. These are the platform's estimates from list prices; AWS Cost Explorer has the real spend."
            ));
            format!("[SSI] Team {team} reached {percent} % of its budget ({month})")
        }
        Kind::WebhookDisabled => {
            let url = facts.webhook_url.as_deref().unwrap_or("(unknown)");
            lines.push(format!(
                "The webhook {url} kept failing and was disabled. Delete it and register it again once it works."
            ));
            format!("[SSI] Webhook disabled: {url}")
        }
    };
    if let Some(reason) = &facts.reason {
        let label = match kind {
            Kind::RequestRejected => "Reason",
            Kind::RequestApproved => "Comment",
            _ => "Details",
        };
        lines.push(format!("{label}: {reason}"));
    }
    (subject, lines)
}

/// Renders the mail of a notice for a recipient; `base` is the API's public URL.
pub fn render(kind: Kind, facts: &Facts, base: &str) -> Message {
    let (subject, mut lines) = summary(kind, facts);
    let link = request_link(base, facts);
    let mut html_lines: Vec<String> = lines.iter().map(|l| format!("<p>{}</p>", escape_html(l))).collect();
    if let Some(link) = &link {
        lines.push(format!("The request: {link}"));
        let escaped = escape_html(link);
        html_lines.push(format!("<p>The request: <a href=\"{escaped}\">{escaped}</a></p>"));
    }
    lines.push(String::new());
    lines.push("You can turn notices other than security notices off: PUT /api/v1/users/me/notifications.".into());
    html_lines.push(
        "<p style=\"color:#666\">You can turn notices other than security notices off: PUT /api/v1/users/me/notifications.</p>"
            .into(),
    );
    Message {
        html: format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body>{}</body></html>",
            escape_html(&subject),
            html_lines.join("")
        ),
        text: lines.join("\n") + "\n",
        subject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RequestStatus;

    fn facts() -> Facts {
        Facts {
            request_id: Some(uuid::Uuid::nil()),
            request_name: Some("orders-db".into()),
            resource_type: Some("postgres".into()),
            status: Some(RequestStatus::Rejected),
            reason: Some("<script>too big</script>".into()),
            ..Facts::default()
        }
    }

    #[test]
    fn subject_names_the_request_and_its_new_status() {
        let m = render(Kind::RequestRejected, &facts(), "https://api.example.com/");
        assert_eq!(m.subject, "[SSI] postgres \"orders-db\" is now rejected");
        assert!(m.text.contains("Reason: <script>too big</script>"));
        assert!(m
            .text
            .contains("https://api.example.com/api/v1/requests/00000000-0000-0000-0000-000000000000"));
        // HTML is escaped.
        assert!(m.html.contains("&lt;script&gt;"), "{}", m.html);
        assert!(!m.html.contains("<script>"));
    }

    #[test]
    fn a_failed_rotation_or_deletion_says_so_in_the_subject() {
        let mut f = facts();
        f.status = Some(RequestStatus::Deleting);
        f.operation = Some(crate::model::JobOperation::Destroy);
        assert_eq!(
            render(Kind::RequestFailed, &f, "x").subject,
            "[SSI] postgres \"orders-db\": deletion failed (now deleting)"
        );
        f.status = Some(RequestStatus::Failed);
        f.operation = Some(crate::model::JobOperation::Apply);
        assert_eq!(
            render(Kind::RequestFailed, &f, "x").subject,
            "[SSI] postgres \"orders-db\" is now failed"
        );
    }

    #[test]
    fn every_kind_renders() {
        for kind in Kind::ALL {
            let m = render(kind, &facts(), "http://127.0.0.1:3000");
            assert!(m.subject.starts_with("[SSI] "), "{kind:?}");
            assert!(!m.text.is_empty() && m.html.starts_with("<!DOCTYPE html>"));
        }
    }
}
