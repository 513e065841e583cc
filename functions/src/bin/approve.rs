//! Lambda function `deskshift-approve`: a person's approval of the field map; resumes the waiting migration.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::approve(&clients, &job, &event).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Approve, handler).await
}
