//! The rules of the product, free of HTTP and of DynamoDB: the request lifecycle (the
//! state machine and the provisioning job an approval creates) and who acts on it;
//! money, cost estimates and accrual, team budgets and approval policies.
//! Handlers, the runner and `ssi-admin` decide with these functions; the store only
//! writes what they planned, guarded by conditions on what it read.

pub mod audit;
pub mod budget;
pub mod cost;
pub mod lifecycle;
pub mod lifetime;
pub mod money;
pub mod policy;

pub use lifecycle::{plan_retry, plan_transition, Actor, LifecycleError, PlannedTransition, Requeue};
