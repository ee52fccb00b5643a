//! Approval policies: routine requests approved at submission by the system.
//!
//! A policy `{resource_type, max_monthly_cost, team_id?}` matches a request of that
//! type whose estimated monthly cost is at most `max_monthly_cost` (the limit itself
//! included), for every team or only for `team_id`. A request is approved by policy
//! when at least one policy matches **and** it keeps its team within budget
//! ([`super::budget::check`], the same check as an admin's approval); everything
//! else waits for an admin. When several match, [`matching`] picks one so that the
//! history names it: a team's own policy before a global one, then the tightest limit,
//! then the oldest policy.

use super::budget::BudgetCheck;
use super::money::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An approval policy, as stored and as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalPolicy {
    pub id: Uuid,
    /// A catalog id.
    #[schema(example = "postgres")]
    pub resource_type: String,
    /// Requests estimated at this much a month or less match.
    pub max_monthly_cost: Money,
    /// Only this team's requests match; `null`: every team's.
    pub team_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: String,
}

impl ApprovalPolicy {
    pub fn matches(&self, resource_type: &str, team_id: Uuid, estimate: Money) -> bool {
        self.resource_type == resource_type
            && self.team_id.is_none_or(|t| t == team_id)
            && estimate <= self.max_monthly_cost
    }
}

/// The policy that approves a request of `resource_type` for `team_id`, estimated at
/// `estimate`, given the team's budget check (`None`: no budget); `None` when no
/// policy matches or the request would take the team over its budget.
pub fn matching<'a>(
    policies: &'a [ApprovalPolicy],
    resource_type: &str,
    team_id: Uuid,
    estimate: Money,
    budget: Option<&BudgetCheck>,
) -> Option<&'a ApprovalPolicy> {
    if budget.is_some_and(|b| !b.within) {
        return None;
    }
    policies
        .iter()
        .filter(|p| p.matches(resource_type, team_id, estimate))
        .min_by(|a, b| {
            (a.team_id.is_none(), a.max_monthly_cost, &a.created_at, a.id).cmp(&(
                b.team_id.is_none(),
                b.max_monthly_cost,
                &b.created_at,
                b.id,
            ))
        })
}

/// The history comment of an approval by `policy`.
pub fn approval_note(policy: &ApprovalPolicy) -> String {
    let scope = match policy.team_id {
        Some(team) => format!("team {team}"),
        None => "every team".into(),
    };
    format!(
        "approved by policy {}: {} up to {} a month ({scope})",
        policy.id, policy.resource_type, policy.max_monthly_cost
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(raw: &str) -> Money {
        Money::parse_decimal(raw, 6).unwrap()
    }

    fn policy(resource_type: &str, max: &str, team: Option<Uuid>, created_at: &str) -> ApprovalPolicy {
        ApprovalPolicy {
            id: Uuid::new_v4(),
            resource_type: resource_type.into(),
            max_monthly_cost: usd(max),
            team_id: team,
            created_by: Uuid::nil(),
            created_at: created_at.into(),
        }
    }

    #[test]
    fn a_policy_matches_its_type_team_and_limit_inclusive() {
        let team = Uuid::new_v4();
        let p = policy("postgres", "20", None, "1");
        assert!(p.matches("postgres", team, usd("20")));
        assert!(p.matches("postgres", team, usd("19.99")));
        assert!(!p.matches("postgres", team, usd("20.000001")));
        assert!(!p.matches("mysql", team, usd("1")));
        let own = policy("postgres", "20", Some(team), "1");
        assert!(own.matches("postgres", team, usd("1")));
        assert!(!own.matches("postgres", Uuid::new_v4(), usd("1")));
    }

    #[test]
    fn over_budget_is_never_approved_by_policy() {
        let team = Uuid::new_v4();
        let policies = [policy("postgres", "100", None, "1")];
        let over = BudgetCheck {
            within: false,
            limit: usd("10"),
            committed: usd("5"),
            after: usd("19"),
        };
        assert!(matching(&policies, "postgres", team, usd("14"), Some(&over)).is_none());
        let within = BudgetCheck { within: true, ..over };
        assert!(matching(&policies, "postgres", team, usd("14"), Some(&within)).is_some());
        assert!(matching(&policies, "postgres", team, usd("14"), None).is_some());
        assert!(matching(&[], "postgres", team, usd("14"), None).is_none());
    }

    #[test]
    fn the_teams_own_then_tightest_then_oldest_policy_is_named() {
        let team = Uuid::new_v4();
        let global_tight = policy("postgres", "15", None, "1");
        let own_loose = policy("postgres", "100", Some(team), "2");
        let own_tight_new = policy("postgres", "20", Some(team), "4");
        let own_tight_old = policy("postgres", "20", Some(team), "3");
        let policies = [global_tight.clone(), own_loose, own_tight_new, own_tight_old.clone()];
        assert_eq!(
            matching(&policies, "postgres", team, usd("14"), None),
            Some(&own_tight_old)
        );
        // Another team only has the global one.
        assert_eq!(
            matching(&policies, "postgres", Uuid::new_v4(), usd("14"), None),
            Some(&global_tight)
        );
        assert!(approval_note(&own_tight_old).contains(&own_tight_old.id.to_string()));
    }
}
