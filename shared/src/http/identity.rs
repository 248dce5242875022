//! Who is calling: the tenant, the subject and the roles, only ever from a verified identity.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::config::{AuthMode, ClaimNames, Config, LocalIssuer};
use crate::domain::{Identity, PartnerId, Permission, Role};

/// Refuses a verified caller without `needs` (403, naming the roles that have it).
pub fn require(who: &Identity, needs: Permission) -> Result<(), ApiError> {
    if who.allows(needs) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(needs.refusal()))
    }
}

pub fn identify(req: &Request, config: &Config) -> Result<Identity, ApiError> {
    match &config.auth {
        AuthMode::ApiGateway => from_authorizer(req, &config.claims),
        AuthMode::Local(issuer) => from_local_token(req, issuer, &config.claims),
    }
}

fn from_authorizer(req: &Request, names: &ClaimNames) -> Result<Identity, ApiError> {
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
        names,
        claims.get(&names.partner).map(String::as_str),
        claims.get("sub").map(String::as_str),
        claims
            .get(&names.roles)
            .map(|r| parse_roles_claim(r))
            .unwrap_or_default(),
    )
}

/// Verifies a bearer token of the local OpenID Connect provider as API Gateway's JWT authorizer
/// does in AWS: RS256 with a key of the provider's JWKS (by `kid`), `iss`, `aud`, `exp`, `nbf`.
fn from_local_token(
    req: &Request,
    issuer: &LocalIssuer,
    names: &ClaimNames,
) -> Result<Identity, ApiError> {
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
    let rejected =
        |e: jsonwebtoken::errors::Error| ApiError::Unauthenticated(format!("token rejected: {e}"));
    let kid = jsonwebtoken::decode_header(token).map_err(rejected)?.kid;
    let key = match kid {
        Some(kid) => issuer.keys.iter().find(|k| k.kid == kid),
        None if issuer.keys.len() == 1 => issuer.keys.first(),
        None => None,
    }
    .ok_or_else(|| ApiError::Unauthenticated("token rejected: unknown signing key".into()))?;
    let key = DecodingKey::from_rsa_components(&key.n, &key.e).map_err(rejected)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 5;
    validation.validate_nbf = true;
    validation.set_issuer(&[&issuer.issuer]);
    validation.set_audience(&[&issuer.audience]);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(rejected)?
        .claims;
    let roles = match claims.get(&names.roles) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(text)) => parse_roles_claim(text),
        _ => Vec::new(),
    };
    build(
        names,
        claims.get(&names.partner).and_then(Value::as_str),
        claims.get("sub").and_then(Value::as_str),
        roles,
    )
}

fn build(
    names: &ClaimNames,
    partner: Option<&str>,
    sub: Option<&str>,
    roles: Vec<String>,
) -> Result<Identity, ApiError> {
    let partner = partner
        .and_then(|p| PartnerId::parse(p).ok())
        .ok_or_else(|| {
            ApiError::Unauthenticated(format!(
                "the identity has no valid {} claim (the partner)",
                names.partner
            ))
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
    use crate::testing::ApiRequest;
    use crate::testing::fixtures::{config, local_issuer, local_token, refused_tokens};

    fn local_config() -> Config {
        Config {
            auth: AuthMode::Local(local_issuer()),
            ..config()
        }
    }

    fn bearer(token: &str) -> Request {
        ApiRequest::get("/activities")
            .header("authorization", &format!("Bearer {token}"))
            .build()
    }

    #[test]
    fn local_tokens_are_verified_like_the_jwt_authorizer_does() {
        let c = local_config();
        let who = identify(
            &bearer(&local_token("p1", &["GlobalAdmin", "Nobody"], "ann", 60)),
            &c,
        )
        .unwrap();
        assert_eq!((who.partner.as_str(), who.subject.as_str()), ("p1", "ann"));
        assert_eq!(who.roles, BTreeSet::from([Role::GlobalAdmin]));
        for (what, token) in refused_tokens("p1", &["GlobalAdmin"]) {
            match identify(&bearer(&token), &c) {
                Err(ApiError::Unauthenticated(_)) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_partner_and_roles_claims_are_named_by_configuration() {
        let mut c = config();
        c.claims = ClaimNames {
            partner: "tid".into(),
            roles: "cognito:groups".into(),
        };
        let req = ApiRequest::get("/activities")
            .claims(&[
                ("tid", "9f3c2d1e-0000-4000-8000-000000000001"),
                ("cognito:groups", "[HelpdeskAgent SalesAgent]"),
                ("sub", "ann"),
                ("partner_id", "not-this-one"),
            ])
            .build();
        let who = identify(&req, &c).unwrap();
        assert_eq!(who.partner.as_str(), "9f3c2d1e-0000-4000-8000-000000000001");
        assert_eq!(
            who.roles,
            BTreeSet::from([Role::HelpdeskAgent, Role::SalesAgent])
        );
        let missing = ApiRequest::get("/activities")
            .claims(&[("partner_id", "p1"), ("sub", "ann")])
            .build();
        match identify(&missing, &c) {
            Err(ApiError::Unauthenticated(m)) => assert!(m.contains("tid"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

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
