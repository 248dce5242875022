//! The domain: identifiers, roles, periods and the activity record. No I/O, no SDK types.

pub mod activity;
pub mod chain;
pub mod delivery;
pub mod destination;
pub mod feed;
pub mod ids;
pub mod integrity;
pub mod names;
pub mod ocsf;
pub mod role;
pub mod time;

pub use activity::{Activity, BatchError, Details, FieldError, NewActivity, Status, WriteRules};
pub use ids::{ActivityId, CustomerId, PartnerId};
pub use role::{Identity, Permission, Role};
pub use time::{Bound, DateRange};
pub mod query;
pub use query::{ActivityQuery, Filters, PageKey};
pub mod export;
pub use export::{
    ExportFormat, ExportId, ExportJob, ExportLocale, ExportSpec, ExportStatus, ResumePoint,
};
