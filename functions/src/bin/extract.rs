//! Lambda function `deskshift-extract`: stages the source page by page; answers `more` at the time budget.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::extract(&job, deadline).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Extract, handler).await
}
