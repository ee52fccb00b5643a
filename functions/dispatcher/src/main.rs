//! The `dispatcher` Lambda function: wiring only (see the library).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME must be set")?;
    let project = std::env::var("RUNNER_PROJECT").map_err(|_| "RUNNER_PROJECT must be set")?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let sdk = shared::app::sdk_config(&region, std::env::var("DYNAMODB_ENDPOINT").ok().as_deref()).await;
    let store = shared::store::Store::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let starter = dispatcher_function::CodeBuild {
        client: aws_sdk_codebuild::Client::new(&sdk),
        project,
    };
    let (store, starter) = (&store, &starter);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        dispatcher_function::handle(&event.payload, store, starter)
            .await
            .map_err(Error::from)
    }))
    .await
}
