//! Lambda function `deskshift-attachments`: moves the attachments of the migrated records.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::attachments(&job, event.partition.as_deref()).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Attachments, handler).await
}
