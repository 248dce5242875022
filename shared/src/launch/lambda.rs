//! Starts the export worker with Lambda's Invoke API (`InvocationType=Event`).

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::{ExportLauncher, LaunchError, WorkerEvent};
use crate::domain::{ExportId, PartnerId};

#[derive(Clone, Debug)]
pub struct LambdaLauncher {
    client: Client,
    function: String,
}

impl LambdaLauncher {
    pub fn new(client: Client, function: impl Into<String>) -> Self {
        Self {
            client,
            function: function.into(),
        }
    }
}

impl ExportLauncher for LambdaLauncher {
    async fn launch(&self, partner: &PartnerId, id: &ExportId) -> Result<(), LaunchError> {
        let failed = |reason: String| LaunchError {
            function: self.function.clone(),
            reason,
        };
        let payload = serde_json::to_vec(&WorkerEvent::new(partner, id))
            .map_err(|e| failed(e.to_string()))?;
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| failed(aws_sdk_lambda::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}
