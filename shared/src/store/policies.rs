//! Approval policies: one partition (`POLICIES`), read whole and strongly consistent
//! at each submission, so a policy that was deleted never approves anything again.
//! The creation transaction of a request approved by policy also checks that the
//! policy still exists ([`super::Store::create_request_approved_by_policy`]).

use super::{from_item, keys, Expr, Item, KeyCondition, QueryPage, Store, StoreError, Stored};
use crate::domain::policy::ApprovalPolicy;

pub(super) fn policy_item(policy: &ApprovalPolicy) -> Result<Item, StoreError> {
    Stored::new(keys::POLICY, keys::policy(policy.id), policy).to_item()
}

impl Store {
    /// Stores a new policy.
    pub async fn put_policy(&self, policy: &ApprovalPolicy) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(policy_item(policy)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(super::classify)?;
        Ok(())
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
                    filter: None,
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
    pub async fn delete_policy(&self, id: uuid::Uuid) -> Result<bool, StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(super::key_item(&keys::policy(id))))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await
            .map_err(super::classify);
        match result {
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
