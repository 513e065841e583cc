//! Lambda function `deskshift-schema`: creates the custom fields the map needs.

use std::sync::Arc;
use std::time::SystemTime;

use deskshift_functions::{Clients, Event, Function, LambdaError, Output, Result, handlers, serve};

async fn handler(clients: Arc<Clients>, event: Event, _deadline: SystemTime) -> Result<Output> {
    let job = clients.job(&event.job).await?;
    handlers::schema(&job).await
}

#[tokio::main]
async fn main() -> Result<(), LambdaError> {
    serve(Function::Schema, handler).await
}
