//! Approval policies: one partition (`POLICIES`), read whole and strongly consistent
//! at each submission, so a policy that was deleted never approves anything again.
//! The creation transaction of a request approved by policy also checks that the
//! policy still exists ([`super::Store::create_request_approved_by_policy`]).

use super::{from_item, keys, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored, Tx};
use crate::domain::{
    audit::{Action, Origin, Target},
    policy::ApprovalPolicy,
};

pub(super) fn policy_item(policy: &ApprovalPolicy) -> Result<Item, StoreError> {
    Stored::new(keys::POLICY, keys::policy(policy.id), policy).to_item()
}

impl Store {
    /// Stores a new policy.
    pub async fn put_policy(&self, policy: &ApprovalPolicy, origin: &Origin) -> Result<(), StoreError> {
        let event = origin
            .event(Action::PolicyCreated, Target::policy(policy.id))
            .team(policy.team_id)
            .fact("resource_type", &policy.resource_type)
            .fact("max_monthly_cost", policy.max_monthly_cost);
        self.commit(Tx::new(self).put_new(policy_item(policy)?)?.audit(event))
            .await
    }

    /// A page of the policies, in id order.
    pub async fn list_policies(
        &self,
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<ApprovalPolicy>, Option<Item>), StoreError> {
        let QueryPage { items, next } = self
            .query_page(
                KeyCondition {
                    index: None,
                    pk: keys::POLICIES_PK.into(),
                    sk_prefix: Some(keys::POLICY_PREFIX),
                    ..Default::default()
                },
                limit,
                start,
            )
            .await?;
        Ok((items.into_iter().map(from_item).collect::<Result<_, _>>()?, next))
    }

    /// Every policy (strongly consistent).
    pub async fn all_policies(&self) -> Result<Vec<ApprovalPolicy>, StoreError> {
        self.query_all(keys::POLICIES_PK.into())
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Deletes a policy; `false` when there was none.
    pub async fn delete_policy(&self, id: uuid::Uuid, origin: &Origin) -> Result<bool, StoreError> {
        let tx = Tx::new(self)
            .delete(&keys::policy(id), Some("attribute_exists(PK)"), Expr::new())?
            .audit(origin.event(Action::PolicyDeleted, Target::policy(id)));
        match self.commit(tx).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The condition, in a transaction, that a policy still exists.
pub(super) fn still_exists(policy: &ApprovalPolicy) -> (keys::Key, &'static str, Expr) {
    (keys::policy(policy.id), "attribute_exists(PK)", Expr::new())
}
