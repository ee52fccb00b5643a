//! Budget notices: when a team's estimated spend this month (the month-to-date accrual
//! of `domain::cost`) reaches 80 % and then 100 % of its monthly budget, its members
//! and the admins get one notice for each threshold, once a month. Spend accrues by
//! the hour, not in a transaction, so a sweep looks: locally the runner's worker loop
//! (at most once a minute), in AWS the dispatcher's one-minute schedule. Each notice
//! is written with a marker (`BUDGETALERT#team#month#percent`) in one transaction, so
//! sweeps that race write it once.

use crate::{
    clock::format_timestamp,
    domain::{budget, cost},
    notify,
    store::{Store, StoreError},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a marker is kept: past the end of any month it belongs to.
const MARKER_DAYS: i64 = 40;

/// Writes the notices of every team whose spend has reached a threshold it was not
/// told of this month; returns (team, percent) of each one written.
pub async fn sweep(store: &Store, now: OffsetDateTime) -> Result<Vec<(Uuid, u32)>, StoreError> {
    let month = cost::Month::containing(now);
    let month_text = month.to_string();
    let stamp = format_timestamp(now);
    let ttl = (now + time::Duration::days(MARKER_DAYS)).unix_timestamp();
    let mut sent = Vec::new();
    let mut start = None;
    loop {
        let (teams, next) = store.list_teams(100, start).await?;
        for team in &teams {
            let Some(limit) = team.budget.map(|b| b.monthly_limit) else {
                continue;
            };
            let requests = store.team_requests(team).await?;
            let spend = cost::team_costs(&requests, month, now).1.month_to_date;
            for percent in budget::reached(spend, limit) {
                let notice = notify::budget_threshold(team, &month_text, percent, spend, limit, &stamp);
                if store
                    .notify_budget_threshold(&notice, team.id, &month_text, percent, ttl)
                    .await?
                {
                    tracing::info!(team_id = %team.id, percent, month = %month_text, "budget threshold notice");
                    sent.push((team.id, percent));
                }
            }
        }
        match next {
            Some(next) => start = Some(next),
            None => return Ok(sent),
        }
    }
}
