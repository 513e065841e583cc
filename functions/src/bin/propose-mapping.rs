//! Lambda function `deskshift-propose-mapping`: proposes the field map (a person's edited map is kept).

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::propose_mapping(&job).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::ProposeMapping, handler).await
}
