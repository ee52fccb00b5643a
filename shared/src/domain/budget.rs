//! Team budgets: a monthly limit on the team's **committed run-rate**, checked when a
//! request is submitted, when an admin approves it, and when a policy would approve
//! it, always with [`check`].
//!
//! The committed run-rate ([`committed`]) is the sum of the estimated monthly costs of
//! the team's requests that hold, or are about to hold, a resource: `approved`,
//! `provisioning`, `ready`, `failed` (a failed apply may have left resources behind,
//! and it can be retried) and `deleting` (it runs until the destroy is done).
//! Pending requests do not count: they are asks, not commitments, and counting them
//! would let one pending request block the approval of another. Rejected, cancelled
//! and deleted requests cost nothing more.

use super::cost::request_estimate;
use super::money::Money;
use crate::model::{RequestStatus, ResourceRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A team's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamBudget {
    /// The most the team's committed monthly run-rate may reach.
    pub monthly_limit: Money,
}

/// The thresholds of a budget whose reaching is notified, in percent of the limit.
pub const ALERT_PERCENTS: [u32; 2] = [80, 100];

/// The thresholds of [`ALERT_PERCENTS`] that `spend` has reached against `limit`
/// (nothing before anything is spent, even on a zero limit).
pub fn reached(spend: Money, limit: Money) -> Vec<u32> {
    if spend <= Money::ZERO {
        return Vec::new();
    }
    ALERT_PERCENTS
        .into_iter()
        .filter(|p| i128::from(spend.micros()) * 100 >= i128::from(limit.micros()) * i128::from(*p))
        .collect()
}

/// Whether a request in this status counts towards its team's committed run-rate.
pub fn counts_as_committed(status: RequestStatus) -> bool {
    use RequestStatus::*;
    matches!(status, Approved | Provisioning | Ready | Failed | Deleting)
}

/// The team's committed monthly run-rate, leaving out the request `except` (the one
/// being decided, so that it is never counted twice).
pub fn committed(requests: &[ResourceRequest], except: Option<Uuid>) -> Money {
    requests
        .iter()
        .filter(|r| Some(r.id) != except && counts_as_committed(r.status))
        .map(request_estimate)
        .sum()
}

/// What a request does to its team's budget: shown on the request, and the reason an
/// approval needs `override_budget` when `within` is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BudgetCheck {
    /// `after` is at most `limit`.
    pub within: bool,
    /// The team's monthly limit.
    pub limit: Money,
    /// The team's committed run-rate without this request.
    pub committed: Money,
    /// The committed run-rate once this request is approved.
    pub after: Money,
}

/// The check of a request estimated at `estimate` against a team with `budget`
/// (`None`: the team has no budget, nothing to check) and `committed` run-rate.
pub fn check(budget: Option<&TeamBudget>, committed: Money, estimate: Money) -> Option<BudgetCheck> {
    budget.map(|b| {
        let after = committed.saturating_add(estimate);
        BudgetCheck {
            within: after <= b.monthly_limit,
            limit: b.monthly_limit,
            committed,
            after,
        }
    })
}

impl BudgetCheck {
    /// Why an approval is refused without an override.
    pub fn refusal(&self) -> String {
        format!(
            "approving this request would take the team's committed monthly run-rate to {} (now {}), over its budget of {}; approve with {{\"override_budget\": true, \"comment\": \"…\"}} to go over it",
            self.after, self.committed, self.limit
        )
    }

    /// The history note of an approval that went over the budget.
    pub fn override_note(&self, comment: &str) -> String {
        format!(
            "budget override: committed run-rate {} after approval, over the budget of {}; {comment}",
            self.after, self.limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_thresholds_are_reached_at_80_and_100_percent_exactly() {
        let limit = Money::from_micros(500_000_000);
        assert!(reached(Money::from_micros(399_999_999), limit).is_empty());
        assert_eq!(reached(Money::from_micros(400_000_000), limit), [80]);
        assert_eq!(reached(Money::from_micros(499_999_999), limit), [80]);
        assert_eq!(reached(Money::from_micros(500_000_000), limit), [80, 100]);
        assert!(reached(Money::ZERO, Money::ZERO).is_empty(), "nothing spent");
        assert_eq!(reached(Money::from_micros(1), Money::ZERO), [80, 100]);
    }
    use RequestStatus::*;

    fn usd(raw: &str) -> Money {
        Money::parse_decimal(raw, 6).unwrap()
    }

    fn request(status: RequestStatus, cost: &str) -> ResourceRequest {
        ResourceRequest {
            id: Uuid::new_v4(),
            team_id: Uuid::nil(),
            requester_id: Uuid::nil(),
            resource_type: "postgres".into(),
            name: "db".into(),
            parameters: serde_json::json!({}),
            justification: "j".into(),
            status,
            created_at: "t".into(),
            updated_at: "t".into(),
            history: Vec::new(),
            provisioning: None,
            outputs: None,
            credentials: None,
            expires_at: None,
            estimated_monthly_cost: Some(usd(cost)),
            budget: None,
        }
    }

    #[test]
    fn committed_counts_what_holds_or_will_hold_a_resource() {
        let requests: Vec<ResourceRequest> = RequestStatus::ALL.iter().map(|s| request(*s, "1")).collect();
        // approved, provisioning, ready, failed, deleting.
        assert_eq!(committed(&requests, None), usd("5"));
        for status in RequestStatus::ALL {
            assert_eq!(
                counts_as_committed(status),
                matches!(status, Approved | Provisioning | Ready | Failed | Deleting),
                "{status:?}"
            );
        }
        let ready = &requests[5];
        assert_eq!(ready.status, Ready);
        assert_eq!(committed(&requests, Some(ready.id)), usd("4"));
    }

    #[test]
    fn the_limit_itself_is_within_a_cent_more_is_not() {
        let budget = TeamBudget {
            monthly_limit: usd("500"),
        };
        let at = check(Some(&budget), usd("400"), usd("100")).unwrap();
        assert!(at.within);
        assert_eq!(at.after, usd("500"));
        let over = check(Some(&budget), usd("400"), usd("100.01")).unwrap();
        assert!(!over.within);
        assert_eq!(
            (over.limit, over.committed, over.after),
            (usd("500"), usd("400"), usd("500.01"))
        );
        assert!(over.refusal().contains("500.01 USD"), "{}", over.refusal());
        assert_eq!(check(None, usd("400"), usd("1000")), None);
    }

    #[test]
    fn a_zero_budget_allows_only_free_requests() {
        let budget = TeamBudget {
            monthly_limit: Money::ZERO,
        };
        assert!(check(Some(&budget), Money::ZERO, Money::ZERO).unwrap().within);
        assert!(!check(Some(&budget), Money::ZERO, usd("0.01")).unwrap().within);
    }
}
