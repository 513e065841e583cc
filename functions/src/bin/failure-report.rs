//! Lambda function `deskshift-failure-report`: writes what stopped an execution into the job's reports.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::failure_report(&job, &event).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::FailureReport, handler).await
}
