//! The platform's own cost figures: a request's estimated monthly cost from the
//! catalog's list prices, and what a resource has accrued in a month and is forecast
//! to cost by its end. They are estimates, not an AWS bill (real spend: AWS Cost
//! Explorer by the `ssi:*` tags; see `docs/costs.md`).
//!
//! - **Estimate** ([`estimate`]): hourly prices × [`HOURS_PER_MONTH`] (730, the month
//!   AWS's own calculator uses) plus storage per GB-month plus a flat monthly amount,
//!   the Multi-AZ factor on instance and storage. Computed once, at submission, from
//!   the validated parameters, and kept on the request: later price changes do not
//!   rewrite the figures of existing requests.
//! - **Accrual** ([`live_intervals`], [`accrued`]): a request accrues from each step of
//!   its history that makes it `ready` until the step that makes it `deleted`, at its
//!   estimate ÷ 730 per hour, partial hours pro rata to the second. A request that
//!   never became ready (rejected, cancelled, failed before ready) accrues nothing.
//! - **Forecast** ([`forecast`]): what the month will have cost by its last second if
//!   nothing changes: month-to-date plus, for a resource still live, the hourly rate ×
//!   the hours left in the month (up to its `expires_at`, when it has one). A past
//!   month's forecast is its total.

use super::budget::TeamBudget;
use super::money::{parse_quantity, Money};
use crate::catalog::ResourceType;
use crate::model::{RequestStatus, ResourceRequest, Team};
use serde::Serialize;
use serde_json::Value;
use time::{Date, Month as CalendarMonth, OffsetDateTime, Time};
use utoipa::ToSchema;
use uuid::Uuid;

/// The hours of a month in every estimate (365 × 24 / 12).
pub const HOURS_PER_MONTH: i64 = 730;
const SECONDS_PER_ESTIMATE_MONTH: i64 = HOURS_PER_MONTH * 3600;

fn number_micros(params: &Value, name: &str) -> i64 {
    match params.get(name) {
        Some(Value::Number(n)) => parse_quantity(&n.to_string()).unwrap_or(0),
        _ => 0,
    }
}

/// The estimated monthly cost of a request for `rt` with these (validated, defaults
/// filled in) parameters. A type without prices costs nothing.
pub fn estimate(rt: &ResourceType, params: &Value) -> Money {
    let Some(pricing) = &rt.pricing else {
        return Money::ZERO;
    };
    let multi_az = pricing
        .multi_az
        .as_ref()
        .filter(|m| params.get(&m.parameter).and_then(Value::as_bool) == Some(true))
        .map(|m| m.factor.0.micros());
    let factor = |amount: Money| match multi_az {
        Some(f) => amount.times_micro_quantity(f),
        None => amount,
    };
    let mut hourly = Money::ZERO;
    if let Some(class) = &pricing.hourly {
        let price = params
            .get(&class.parameter)
            .and_then(Value::as_str)
            .and_then(|v| class.prices.get(v))
            .map_or(Money::ZERO, |p| p.0);
        let nodes = pricing.nodes.as_ref().map_or(1_000_000, |n| {
            number_micros(params, &n.parameter).saturating_add(i64::from(n.plus) * 1_000_000)
        });
        hourly += price.times_micro_quantity(nodes);
    }
    for unit in &pricing.unit_hourly {
        hourly += unit
            .price
            .0
            .times_micro_quantity(number_micros(params, &unit.parameter));
    }
    let mut monthly = factor(hourly).mul_div(HOURS_PER_MONTH, 1);
    if let Some(storage) = &pricing.storage_gb_month {
        monthly += factor(
            storage
                .price
                .0
                .times_micro_quantity(number_micros(params, &storage.parameter)),
        );
    }
    if let Some(flat) = pricing.flat_monthly {
        monthly += flat.0;
    }
    monthly
}

/// The estimate of a stored request: the one made at submission, or (for requests
/// from before estimates existed) one made now from the catalog.
pub fn request_estimate(request: &ResourceRequest) -> Money {
    request.estimated_monthly_cost.unwrap_or_else(|| {
        crate::catalog::find(&request.resource_type).map_or(Money::ZERO, |rt| estimate(rt, &request.parameters))
    })
}

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: CalendarMonth,
}

impl Month {
    /// `YYYY-MM` exactly (years 2000–9999).
    pub fn parse(raw: &str) -> Option<Month> {
        let bytes = raw.as_bytes();
        if bytes.len() != 7 || bytes[4] != b'-' || !raw[..4].bytes().chain(raw[5..].bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let year: i32 = raw[..4].parse().ok()?;
        let month: u8 = raw[5..].parse().ok()?;
        if !(2000..=9999).contains(&year) {
            return None;
        }
        Some(Month {
            year,
            month: CalendarMonth::try_from(month).ok()?,
        })
    }

    /// The month `t` is in (UTC).
    pub fn containing(t: OffsetDateTime) -> Month {
        let t = t.to_offset(time::UtcOffset::UTC);
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    /// The first instant of the month.
    pub fn start(self) -> OffsetDateTime {
        Date::from_calendar_date(self.year, self.month, 1)
            .map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The first instant of the next month (the end, exclusive).
    pub fn end(self) -> OffsetDateTime {
        let (year, month) = match self.month {
            CalendarMonth::December => (self.year + 1, CalendarMonth::January),
            m => (self.year, m.next()),
        };
        Month { year, month }.start()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

/// When a resource was live: from a `ready` step to a `deleted` step (`None`: still live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub from: OffsetDateTime,
    pub until: Option<OffsetDateTime>,
}

/// The intervals in which a request held a live resource, from its history: each
/// step to `ready` opens one (unless one is open), each step to `deleted` closes it.
/// Steps whose time cannot be read are skipped.
pub fn live_intervals(request: &ResourceRequest) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    let mut open: Option<OffsetDateTime> = None;
    for step in &request.history {
        let Some(at) = crate::clock::parse_timestamp(&step.at) else {
            continue;
        };
        match step.to {
            RequestStatus::Ready if open.is_none() => open = Some(at),
            RequestStatus::Deleted => {
                if let Some(from) = open.take() {
                    out.push(Interval { from, until: Some(at) });
                }
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        out.push(Interval { from, until: None });
    }
    out
}

fn seconds(from: OffsetDateTime, until: OffsetDateTime) -> i64 {
    (until - from).whole_seconds().max(0)
}

/// The cost of `monthly` over `secs` seconds: pro rata of the 730-hour month.
pub fn cost_for_seconds(monthly: Money, secs: i64) -> Money {
    monthly.mul_div(secs, SECONDS_PER_ESTIMATE_MONTH)
}

/// Seconds of `intervals` within `[from, until)`, an open interval ending at `open_end`.
fn live_seconds(intervals: &[Interval], from: OffsetDateTime, until: OffsetDateTime, open_end: OffsetDateTime) -> i64 {
    intervals
        .iter()
        .map(|i| {
            let end = i.until.unwrap_or(open_end).min(until);
            seconds(i.from.max(from), end)
        })
        .sum()
}

/// What `intervals` accrued in `month` up to `now`, at `monthly` per 730 hours.
pub fn accrued(monthly: Money, intervals: &[Interval], month: Month, now: OffsetDateTime) -> Money {
    let until = month.end().min(now);
    cost_for_seconds(monthly, live_seconds(intervals, month.start(), until, now))
}

/// What `intervals` will have cost in `month` by its end: accrued up to `now`, plus
/// the rest of the month (or up to `expires_at`) for an interval still open.
pub fn forecast(
    monthly: Money,
    intervals: &[Interval],
    month: Month,
    now: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Money {
    let so_far = accrued(monthly, intervals, month, now);
    let open = intervals.iter().any(|i| i.until.is_none());
    if !open || now >= month.end() {
        return so_far;
    }
    let from = now.max(month.start());
    let until = expires_at.map_or(month.end(), |e| e.min(month.end()));
    so_far.saturating_add(cost_for_seconds(monthly, seconds(from, until)))
}

/// One resource's figures in a month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceCost {
    pub request_id: Uuid,
    pub resource_type: String,
    pub name: String,
    pub status: RequestStatus,
    pub estimated_monthly_cost: Money,
    /// Hours live in the month so far (partial hours as fractions, two decimals).
    #[schema(example = "36.50")]
    pub hours: String,
    /// Accrued in the month up to now (the whole month, for a past month).
    pub month_to_date: Money,
    /// Month-to-date plus the rest of the month for a resource still live.
    pub forecast: Money,
}

/// A team's totals in a month.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct CostTotals {
    pub month_to_date: Money,
    pub forecast: Money,
}

/// The figures of every request of a team that was live in `month`, with their totals.
pub fn team_costs(requests: &[ResourceRequest], month: Month, now: OffsetDateTime) -> (Vec<ResourceCost>, CostTotals) {
    let mut resources = Vec::new();
    let mut totals = CostTotals::default();
    for request in requests {
        let intervals = live_intervals(request);
        let monthly = request_estimate(request);
        let expires = request.expires_at.as_deref().and_then(crate::clock::parse_timestamp);
        let so_far = live_seconds(&intervals, month.start(), month.end().min(now), now);
        let month_to_date = accrued(monthly, &intervals, month, now);
        let forecast = forecast(monthly, &intervals, month, now, expires);
        if so_far == 0 && forecast == Money::ZERO {
            continue;
        }
        totals.month_to_date += month_to_date;
        totals.forecast += forecast;
        resources.push(ResourceCost {
            request_id: request.id,
            resource_type: request.resource_type.clone(),
            name: request.name.clone(),
            status: request.status,
            estimated_monthly_cost: monthly,
            hours: format!("{}.{:02}", so_far / 3600, (so_far % 3600) * 100 / 3600),
            month_to_date,
            forecast,
        });
    }
    (resources, totals)
}

/// What every cost answer says its figures are.
pub const BASIS: &str = "estimate: the platform's own figures from catalog list prices, not an AWS bill (real spend: AWS Cost Explorer by the ssi:* tags)";

/// A team's costs in a month (`GET /teams/{id}/costs`, `GET /users/me/team/costs`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamCostReport {
    pub team_id: Uuid,
    pub team_name: String,
    #[schema(example = "2027-03")]
    pub month: String,
    /// What the figures are: estimates (see `docs/costs.md`).
    pub basis: &'static str,
    /// The team's budget; `null`: none.
    pub budget: Option<TeamBudget>,
    /// The team's committed monthly run-rate now (what the budget is checked against).
    pub committed_monthly: Money,
    /// Every request that was, is or will be live in the month.
    pub resources: Vec<ResourceCost>,
    pub totals: CostTotals,
}

/// Every team's costs in a month (`GET /admin/costs`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CostsOverview {
    #[schema(example = "2027-03")]
    pub month: String,
    pub basis: &'static str,
    pub teams: Vec<TeamCostReport>,
    /// The sums over every team.
    pub totals: CostTotals,
}

/// The report of `team` (with all its `requests`) for `month`, as seen at `now`.
pub fn team_report(team: &Team, requests: &[ResourceRequest], month: Month, now: OffsetDateTime) -> TeamCostReport {
    let (resources, totals) = team_costs(requests, month, now);
    TeamCostReport {
        team_id: team.id,
        team_name: team.name.clone(),
        month: month.to_string(),
        basis: BASIS,
        budget: team.budget,
        committed_monthly: super::budget::committed(requests, None),
        resources,
        totals,
    }
}

/// The overview of every team's report, with the grand totals.
pub fn overview(month: Month, teams: Vec<TeamCostReport>) -> CostsOverview {
    let mut totals = CostTotals::default();
    for t in &teams {
        totals.month_to_date += t.totals.month_to_date;
        totals.forecast += t.totals.forecast;
    }
    CostsOverview {
        month: month.to_string(),
        basis: BASIS,
        teams,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Actor;
    use crate::model::Transition;
    use serde_json::json;
    use time::macros::datetime;

    fn usd(raw: &str) -> Money {
        Money::parse_decimal(raw, 6).unwrap()
    }

    fn rt(id: &str) -> &'static ResourceType {
        crate::catalog::find(id).unwrap()
    }

    fn params(id: &str, given: Value) -> Value {
        crate::catalog::validate(rt(id), &given).unwrap()
    }

    #[test]
    fn estimates_follow_the_catalog_prices() {
        // db.t4g.micro: 0.016 × 730 = 11.68; 20 GB × 0.115 = 2.30.
        assert_eq!(estimate(rt("postgres"), &params("postgres", json!({}))), usd("13.98"));
        // Multi-AZ doubles instance and storage: (0.065 × 730 + 100 × 0.115) × 2.
        let p = params(
            "postgres",
            json!({"instance_class": "db.t4g.medium", "storage_gb": 100, "multi_az": true}),
        );
        assert_eq!(estimate(rt("postgres"), &p), usd("117.90"));
        assert_eq!(estimate(rt("mysql"), &params("mysql", json!({}))), usd("13.98"));
        // Redis: a node per replica plus the primary: 0.032 × 3 × 730.
        let p = params("redis", json!({"node_type": "cache.t4g.small", "replicas": 2}));
        assert_eq!(estimate(rt("redis"), &p), usd("70.08"));
        // Flat estimates.
        assert_eq!(estimate(rt("s3_bucket"), &params("s3_bucket", json!({}))), usd("1.50"));
        assert_eq!(estimate(rt("sqs_queue"), &params("sqs_queue", json!({}))), usd("4.00"));
        // Namespace quota: 0.5 vCPU × 0.04048 + 1 GiB × 0.004445, × 730.
        let p = params("k8s_namespace", json!({"cpu_quota": 0.5, "memory_quota_gib": 1}));
        assert_eq!(estimate(rt("k8s_namespace"), &p), usd("18.02005"));
    }

    #[test]
    fn every_catalog_type_has_a_positive_estimate_for_its_defaults() {
        for t in crate::catalog::catalog() {
            let p = crate::catalog::validate(t, &json!({})).unwrap();
            assert!(estimate(t, &p) > Money::ZERO, "{}", t.id);
        }
    }

    #[test]
    fn months_parse_strictly_and_know_their_bounds() {
        let m = Month::parse("2027-02").unwrap();
        assert_eq!(m.start(), datetime!(2027-02-01 00:00 UTC));
        assert_eq!(m.end(), datetime!(2027-03-01 00:00 UTC));
        assert_eq!(Month::parse("2026-12").unwrap().end(), datetime!(2027-01-01 00:00 UTC));
        assert_eq!(m.to_string(), "2027-02");
        for bad in [
            "",
            "2027-2",
            "2027-13",
            "2027-00",
            "27-02",
            "2027/02",
            "2027-02-01",
            "1999-12",
            "２０２７-02",
            "+027-02",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
        assert_eq!(Month::containing(datetime!(2027-02-28 23:59:59 UTC)), m);
    }

    fn step(to: RequestStatus, at: &str) -> Transition {
        Transition {
            from: None,
            to,
            by: Actor::System,
            at: at.into(),
            comment: None,
        }
    }

    fn request(steps: &[(RequestStatus, &str)]) -> ResourceRequest {
        use RequestStatus::*;
        ResourceRequest {
            id: Uuid::new_v4(),
            team_id: Uuid::new_v4(),
            requester_id: Uuid::new_v4(),
            resource_type: "postgres".into(),
            name: "db".into(),
            parameters: json!({}),
            justification: "j".into(),
            status: steps.last().map_or(Pending, |s| s.0),
            created_at: steps[0].1.into(),
            updated_at: steps[0].1.into(),
            history: steps.iter().map(|(to, at)| step(*to, at)).collect(),
            provisioning: None,
            outputs: None,
            credentials: None,
            expires_at: None,
            // 730 USD a month: one dollar an hour.
            estimated_monthly_cost: Some(usd("730")),
            budget: None,
        }
    }

    use RequestStatus::*;

    #[test]
    fn accrual_runs_from_ready_to_deleted_only() {
        let r = request(&[
            (Pending, "2027-03-01T00:00:00Z"),
            (Approved, "2027-03-01T01:00:00Z"),
            (Provisioning, "2027-03-01T02:00:00Z"),
            (Ready, "2027-03-02T00:00:00Z"),
            (Deleting, "2027-03-03T00:00:00Z"),
            (Deleted, "2027-03-03T12:30:00Z"),
        ]);
        let i = live_intervals(&r);
        assert_eq!(i.len(), 1);
        let march = Month::parse("2027-03").unwrap();
        let later = datetime!(2027-06-01 00:00 UTC);
        // 36.5 hours at one dollar an hour, deleting included.
        assert_eq!(accrued(usd("730"), &i, march, later), usd("36.5"));
        assert_eq!(forecast(usd("730"), &i, march, later, None), usd("36.5"));
        // Mid-month, after the deletion: the forecast is what it accrued.
        let mid = datetime!(2027-03-10 00:00 UTC);
        assert_eq!(forecast(usd("730"), &i, march, mid, None), usd("36.5"));
        let (items, totals) = team_costs(&[r], march, mid);
        assert_eq!(items[0].hours, "36.50");
        assert_eq!(totals.month_to_date, usd("36.5"));
    }

    #[test]
    fn a_request_that_never_became_ready_accrues_nothing() {
        let failed = request(&[
            (Pending, "2027-03-01T00:00:00Z"),
            (Approved, "2027-03-01T01:00:00Z"),
            (Provisioning, "2027-03-01T02:00:00Z"),
            (Failed, "2027-03-01T03:00:00Z"),
            (Deleting, "2027-03-02T00:00:00Z"),
            (Deleted, "2027-03-02T01:00:00Z"),
        ]);
        assert!(live_intervals(&failed).is_empty());
        let rejected = request(&[(Pending, "2027-03-01T00:00:00Z"), (Rejected, "2027-03-01T01:00:00Z")]);
        let (items, totals) = team_costs(
            &[failed, rejected],
            Month::parse("2027-03").unwrap(),
            datetime!(2027-04-01 00:00 UTC),
        );
        assert!(items.is_empty());
        assert_eq!(totals.forecast, Money::ZERO);
    }

    #[test]
    fn a_retry_after_a_failure_accrues_from_the_ready_step() {
        let r = request(&[
            (Pending, "2027-03-01T00:00:00Z"),
            (Provisioning, "2027-03-01T02:00:00Z"),
            (Failed, "2027-03-01T03:00:00Z"),
            (Provisioning, "2027-03-05T00:00:00Z"),
            (Ready, "2027-03-05T01:00:00Z"),
        ]);
        let now = datetime!(2027-03-05 03:00 UTC);
        assert_eq!(
            accrued(usd("730"), &live_intervals(&r), Month::parse("2027-03").unwrap(), now),
            usd("2")
        );
    }

    #[test]
    fn month_boundaries_split_the_accrual() {
        // Ready an hour and a half before the end of January, on its last day.
        let r = request(&[(Pending, "2027-01-31T22:00:00Z"), (Ready, "2027-01-31T22:30:00Z")]);
        let i = live_intervals(&r);
        let now = datetime!(2027-02-10 00:00 UTC);
        let january = Month::parse("2027-01").unwrap();
        let february = Month::parse("2027-02").unwrap();
        assert_eq!(accrued(usd("730"), &i, january, now), usd("1.5"));
        assert_eq!(forecast(usd("730"), &i, january, now, None), usd("1.5"));
        // February: 9 days so far; the forecast is the whole 28-day month.
        assert_eq!(accrued(usd("730"), &i, february, now), usd("216"));
        assert_eq!(forecast(usd("730"), &i, february, now, None), usd("672"));
        // Up to its expiry, when it has one.
        let expires = Some(datetime!(2027-02-11 00:00 UTC));
        assert_eq!(forecast(usd("730"), &i, february, now, expires), usd("240"));
        // Nothing in December, before it existed; a future month is all forecast.
        assert_eq!(
            forecast(usd("730"), &i, Month::parse("2026-12").unwrap(), now, None),
            Money::ZERO
        );
        let march = Month::parse("2027-03").unwrap();
        assert_eq!(accrued(usd("730"), &i, march, now), Money::ZERO);
        assert_eq!(forecast(usd("730"), &i, march, now, None), usd("744"));
        // The last second of a month belongs to it, the next one does not.
        let at_end = datetime!(2027-02-01 00:00 UTC);
        assert_eq!(accrued(usd("730"), &i, february, at_end), Money::ZERO);
    }

    #[test]
    fn partial_hours_count_to_the_second() {
        let r = request(&[(Ready, "2027-03-01T00:00:00Z")]);
        let now = datetime!(2027-03-01 00:00:36 UTC);
        // 36 seconds of a dollar-an-hour resource: one cent.
        assert_eq!(
            accrued(usd("730"), &live_intervals(&r), Month::parse("2027-03").unwrap(), now),
            usd("0.01")
        );
    }

    #[test]
    fn totals_add_up_the_resources() {
        let a = request(&[(Ready, "2027-03-01T00:00:00Z")]);
        let b = request(&[(Ready, "2027-03-02T00:00:00Z"), (Deleted, "2027-03-02T10:00:00Z")]);
        let c = request(&[(Ready, "2027-02-01T00:00:00Z"), (Deleted, "2027-02-02T00:00:00Z")]);
        let now = datetime!(2027-03-03 00:00 UTC);
        let (items, totals) = team_costs(&[a, b, c], Month::parse("2027-03").unwrap(), now);
        assert_eq!(items.len(), 2, "the one deleted in February is not in March");
        assert_eq!(totals.month_to_date, usd("58"));
        assert_eq!(totals.forecast, usd("754"));
    }
}
