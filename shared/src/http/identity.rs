//! Who is calling: the tenant, the subject and the roles, only ever from a verified identity.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::Deserialize;

use super::error::ApiError;
use crate::config::AuthMode;
use crate::domain::{Identity, PartnerId, Permission, Role};

/// Verifies the caller and checks it may do `needs`.
pub fn authorize(req: &Request, auth: &AuthMode, needs: Permission) -> Result<Identity, ApiError> {
    let who = identify(req, auth)?;
    if !who.allows(needs) {
        return Err(ApiError::Forbidden(match needs {
            Permission::Read => {
                "viewing the activity log needs one of the roles GlobalAdmin, BillingAdmin, \
                                 UserManagementAdmin, AdminAgent, SalesAgent, HelpdeskAgent"
                    .into()
            }
            Permission::Record => "recording activities needs the ActivityWriter role".into(),
        }));
    }
    Ok(who)
}

pub fn identify(req: &Request, auth: &AuthMode) -> Result<Identity, ApiError> {
    match auth {
        AuthMode::ApiGateway => from_authorizer(req),
        AuthMode::Local { secret } => from_local_token(req, secret),
    }
}

fn from_authorizer(req: &Request) -> Result<Identity, ApiError> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|j| &j.claims),
        _ => None,
    }
    .ok_or_else(|| ApiError::Unauthenticated("no verified identity on the request".into()))?;
    build(
        claims.get("partner_id").map(String::as_str),
        claims.get("sub").map(String::as_str),
        claims
            .get("roles")
            .map(|r| parse_roles_claim(r))
            .unwrap_or_default(),
    )
}

/// Claims of a locally issued token. `roles` is a JSON array (or, leniently, a single string).
#[derive(Deserialize)]
struct LocalClaims {
    partner_id: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    roles: RolesClaim,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum RolesClaim {
    List(Vec<String>),
    Text(String),
    #[default]
    None,
}

fn from_local_token(req: &Request, secret: &[u8]) -> Result<Identity, ApiError> {
    let header = req
        .headers()
        .get(lambda_http::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthenticated("missing Authorization: Bearer token".into()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthenticated("Authorization must be a Bearer token".into()))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data =
        jsonwebtoken::decode::<LocalClaims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|e| ApiError::Unauthenticated(format!("token rejected: {e}")))?;
    let c = data.claims;
    let roles = match c.roles {
        RolesClaim::List(v) => v,
        RolesClaim::Text(t) => parse_roles_claim(&t),
        RolesClaim::None => Vec::new(),
    };
    build(c.partner_id.as_deref(), c.sub.as_deref(), roles)
}

fn build(
    partner: Option<&str>,
    sub: Option<&str>,
    roles: Vec<String>,
) -> Result<Identity, ApiError> {
    let partner = partner
        .and_then(|p| PartnerId::parse(p).ok())
        .ok_or_else(|| {
            ApiError::Unauthenticated("the identity has no valid partner_id claim".into())
        })?;
    let subject = sub
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::Unauthenticated("the identity has no sub claim".into()))?
        .to_owned();
    let roles: BTreeSet<Role> = roles.iter().filter_map(|r| Role::parse(r)).collect();
    Ok(Identity {
        partner,
        subject,
        roles,
    })
}

/// Reads a roles claim as API Gateway hands it over: `"[GlobalAdmin AdminAgent]"` for an array,
/// `"GlobalAdmin"` for a single value, or a JSON array text `["GlobalAdmin","AdminAgent"]`.
pub fn parse_roles_claim(text: &str) -> Vec<String> {
    let text = text.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(text) {
        return list;
    }
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|r| r.trim_matches('"'))
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_claim_in_all_three_forms() {
        assert_eq!(
            parse_roles_claim("[GlobalAdmin AdminAgent]"),
            ["GlobalAdmin", "AdminAgent"]
        );
        assert_eq!(parse_roles_claim("SalesAgent"), ["SalesAgent"]);
        assert_eq!(
            parse_roles_claim(r#"["BillingAdmin","HelpdeskAgent"]"#),
            ["BillingAdmin", "HelpdeskAgent"]
        );
        assert_eq!(parse_roles_claim("[]"), Vec::<String>::new());
        assert_eq!(parse_roles_claim(""), Vec::<String>::new());
    }
}
