//! The `audit` Lambda function: wiring only; handlers live in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::router::run_lambda(audit_function::router()).await
}
