//! Lambda function `deskshift-partitions`: lists the staged partitions a fanned-out phase runs over.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::partitions(&clients, &job, &event).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Partitions, handler).await
}
