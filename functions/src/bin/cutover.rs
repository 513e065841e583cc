//! Lambda function `deskshift-cutover`: the final delta, a confirming one, and the job marked complete.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::cutover(&job).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Cutover, handler).await
}
