//! Lambda function `deskshift-load-partition`: loads one staged partition of one kind.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::load_partition(&job, &event).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::LoadPartition, handler).await
}
