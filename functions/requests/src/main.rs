//! The `requests` Lambda function: wiring only; handlers live in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::router::run_lambda(requests_function::router()).await
}
