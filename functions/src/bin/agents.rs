//! Lambda function `deskshift-agents`: matches source users to destination agents.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::agents(&job).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Agents, handler).await
}
