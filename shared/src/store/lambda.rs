//! Starts the export worker with Lambda's Invoke API (`InvocationType=Event`).

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::{ExportLauncher, StoreError};
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

/// The worker's event.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerEvent {
    pub partner_id: String,
    pub export_id: String,
}

impl ExportLauncher for LambdaLauncher {
    async fn launch(&self, partner: &PartnerId, id: &ExportId) -> Result<(), StoreError> {
        let payload = serde_json::to_vec(&WorkerEvent {
            partner_id: partner.to_string(),
            export_id: id.to_string(),
        })
        .map_err(|e| StoreError::Other(e.to_string()))?;
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("invoke {}: {e}", self.function)))?;
        Ok(())
    }
}
