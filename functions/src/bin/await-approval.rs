//! Lambda function `deskshift-await-approval`: the approval task: keeps the task token until a person approves the map.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::await_approval(&clients, &job, &event).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::AwaitApproval, handler).await
}
