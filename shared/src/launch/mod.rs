//! Starting the export worker: the port the export API uses, the event the worker takes, and the
//! Lambda adapter.

use std::future::Future;

use crate::domain::{ExportId, PartnerId};

pub mod lambda;

/// The worker's event: which job to run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerEvent {
    pub partner_id: String,
    pub export_id: String,
}

impl WorkerEvent {
    pub fn new(partner: &PartnerId, id: &ExportId) -> Self {
        Self {
            partner_id: partner.to_string(),
            export_id: id.to_string(),
        }
    }
}

/// The worker could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not start the export worker {function}: {reason}")]
pub struct LaunchError {
    pub function: String,
    pub reason: String,
}

/// Starts the export worker for a job (asynchronously).
pub trait ExportLauncher: Send + Sync {
    fn launch(
        &self,
        partner: &PartnerId,
        id: &ExportId,
    ) -> impl Future<Output = Result<(), LaunchError>> + Send;
}
