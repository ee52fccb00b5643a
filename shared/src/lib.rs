//! Everything the functions share: configuration, the one error type, HTTP helpers,
//! tokens and roles, the route table, and the DynamoDB store.
//!
//! A function crate only holds handlers; every rule about tokens, roles, errors and
//! keys lives here, each in exactly one module.

pub mod app;
pub mod auth;
pub mod budget_alerts;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod expiry;
pub mod http;
pub mod logging;
pub mod model;
pub mod notify;
pub mod router;
pub mod routes;
pub mod sealing;
pub mod store;
pub mod text;
pub mod throttle;
pub mod vault;

pub use app::App;
pub use error::ApiError;
