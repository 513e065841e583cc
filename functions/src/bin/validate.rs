//! Lambda function `deskshift-validate`: reads migrated records back from the destination, field by field.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::validate(&job).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Validate, handler).await
}
