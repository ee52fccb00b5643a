//! The `docs` Lambda function: wiring only; handlers live in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::router::run_public_lambda(docs_function::router()).await
}
