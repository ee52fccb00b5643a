//! The `notifier` Lambda function: wiring only (see the library).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let table = get("TABLE_NAME").ok_or("TABLE_NAME must be set")?;
    // Empty until the stack's NotificationSender is set: every send then fails (SES
    // refuses, and the role may only send from that address), so deliveries end
    // `failed` and are listed for admins instead of the function failing at init.
    let from = get("NOTIFY_FROM").unwrap_or_default();
    if from.is_empty() {
        tracing::warn!("NOTIFY_FROM is empty: no mail can be sent until NotificationSender is set");
    }
    let region = get("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
    let cfg = notifier_function::NotifierConfig::from_lookup(get)?;
    let sdk = shared::app::sdk_config(&region, std::env::var("DYNAMODB_ENDPOINT").ok().as_deref()).await;
    let store = shared::store::Store::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let ses = notifier_function::Ses {
        client: aws_sdk_sesv2::Client::new(&sdk),
        from,
    };
    let notifier = notifier_function::Notifier::new(store, ses, cfg);
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        notifier_function::handle(notifier, &event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
