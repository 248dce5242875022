//! The route table: every route of the HTTP API, the function that answers it and the
//! permission it needs. `openapi.yaml`, `template.yaml`, the local router (`Cargo.toml`) and
//! the build's bootstrap check (`scripts/check_bootstraps.py`) are held to it by
//! `tests/tests/template.rs`; handlers take a route's permission from here.

use crate::domain::Permission;

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// As API Gateway writes it: `{name}` for a path parameter.
    pub path: &'static str,
    /// The function crate that answers it.
    pub function: &'static str,
    pub permission: Permission,
}

/// The functions that answer the API.
const RECORDER: &str = "record-activity";
const READER: &str = "query-activity";
const SIGNER: &str = "integrity";
const EXPORTER: &str = "export-activity";
const MANAGER: &str = "manage-destinations";

/// A route that records.
const fn post_record(path: &'static str, function: &'static str) -> Route {
    Route {
        method: "POST",
        path,
        function,
        permission: Permission::Record,
    }
}

/// A route that reads the log (an export is a read).
const fn read(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route {
        method,
        path,
        function,
        permission: Permission::Read,
    }
}

/// A route that manages streaming destinations.
const fn manage(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        function: MANAGER,
        permission: Permission::Manage,
    }
}

pub const RECORD: Route = post_record("/activities", RECORDER);
pub const TENANT_LOG: Route = read("GET", "/activities", READER);
pub const CUSTOMER_LOG: Route = read("GET", "/customers/{customerId}/activities", READER);
pub const DETAIL: Route = read(
    "GET",
    "/customers/{customerId}/activities/{activityId}",
    READER,
);
pub const FEED: Route = read("GET", "/feed", READER);
pub const CHECKPOINT: Route = read("GET", "/customers/{customerId}/checkpoint", SIGNER);
pub const PUBLIC_KEY: Route = read("GET", "/integrity/public-key", SIGNER);
pub const CHAIN: Route = read("GET", "/customers/{customerId}/chain", SIGNER);
pub const CREATE_EXPORT: Route = read("POST", "/exports", EXPORTER);
pub const EXPORT_STATUS: Route = read("GET", "/exports/{exportId}", EXPORTER);
pub const LIST_DESTINATIONS: Route = manage("GET", "/destinations");
pub const CREATE_DESTINATION: Route = manage("POST", "/destinations");
pub const DESTINATION: Route = manage("GET", "/destinations/{destinationId}");
pub const UPDATE_DESTINATION: Route = manage("PATCH", "/destinations/{destinationId}");
pub const DELETE_DESTINATION: Route = manage("DELETE", "/destinations/{destinationId}");

/// Every route of the API.
pub const ROUTES: [Route; 15] = [
    RECORD,
    TENANT_LOG,
    CUSTOMER_LOG,
    DETAIL,
    FEED,
    CHECKPOINT,
    PUBLIC_KEY,
    CHAIN,
    CREATE_EXPORT,
    EXPORT_STATUS,
    LIST_DESTINATIONS,
    CREATE_DESTINATION,
    DESTINATION,
    UPDATE_DESTINATION,
    DELETE_DESTINATION,
];

/// The permission every route of `function` needs (`None`: no route, or routes that differ).
pub fn permission_of(function: &str) -> Option<Permission> {
    let mut of = ROUTES
        .iter()
        .filter(|r| r.function == function)
        .map(|r| r.permission);
    let first = of.next()?;
    of.all(|p| p == first).then_some(first)
}

/// The route a request's method and path segments (decoded) take; the path may carry a prefix
/// (a stage name) before the route's own segments.
pub fn route_of(method: &str, segments: &[String]) -> Option<&'static Route> {
    ROUTES.iter().find(|r| {
        let pattern: Vec<&str> = r.path.split('/').filter(|s| !s.is_empty()).collect();
        r.method.eq_ignore_ascii_case(method)
            && segments.len() >= pattern.len()
            && segments[segments.len() - pattern.len()..]
                .iter()
                .zip(&pattern)
                .all(|(s, p)| p.starts_with('{') || s == p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn requests_find_their_route_and_its_permission() {
        let found = |m: &str, p: &str| route_of(m, &segments(p)).map(|r| (r.path, r.permission));
        assert_eq!(
            found("POST", "/activities"),
            Some(("/activities", Permission::Record))
        );
        assert_eq!(
            found("GET", "/activities"),
            Some(("/activities", Permission::Read))
        );
        assert_eq!(
            found("GET", "/customers/c%201/activities/a1"),
            Some((
                "/customers/{customerId}/activities/{activityId}",
                Permission::Read
            ))
        );
        assert_eq!(
            found("get", "/prod/exports/e1"),
            Some(("/exports/{exportId}", Permission::Read))
        );
        assert_eq!(found("DELETE", "/activities"), None);
        assert_eq!(
            found("PATCH", "/destinations/01J0000000000000000000000A"),
            Some(("/destinations/{destinationId}", Permission::Manage))
        );
        for function in [
            "record-activity",
            "query-activity",
            "integrity",
            "export-activity",
            "manage-destinations",
        ] {
            assert!(permission_of(function).is_some(), "{function}");
        }
        assert_eq!(permission_of("record-activity"), Some(Permission::Record));
        assert_eq!(found("GET", "/customers/c1"), None);
    }
}
