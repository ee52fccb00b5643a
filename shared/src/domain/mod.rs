//! The rules of the product, free of HTTP and of DynamoDB: the request lifecycle (the
//! state machine and the provisioning job an approval creates) and who acts on it.
//! Handlers, the runner and `ssi-admin` decide with these functions; the store only
//! writes what they planned, guarded by conditions on what it read.

pub mod audit;
pub mod lifecycle;
pub mod lifetime;

pub use lifecycle::{plan_retry, plan_transition, Actor, LifecycleError, PlannedTransition, Requeue};
