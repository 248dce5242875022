//! Identifier newtypes, parsed once at the edge so the rest of the code can trust them.

use serde::Deserialize;

/// Why an identifier was refused; the caller decides which field it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be between {min} and {max} characters long")]
    Length { min: usize, max: usize },
    #[error("{0}")]
    Charset(&'static str),
}

fn check_len(value: &str, min: usize, max: usize) -> Result<(), IdError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(IdError::Length { min, max });
    }
    Ok(())
}

/// The tenant: a cloud-solution partner. Taken only from a verified identity.
/// Restricted to a safe ASCII set because it is a component of storage keys and S3 object keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct PartnerId(String);

impl PartnerId {
    pub const MAX_LEN: usize = 128;

    fn check(value: &str) -> Result<(), IdError> {
        check_len(value, 1, Self::MAX_LEN)?;
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(IdError::Charset(
                "may contain only letters, digits, '-', '_', '.' and ':'",
            ));
        }
        Ok(())
    }
}

/// A partner's customer. Any printable text except '/' (it travels in URL paths).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct CustomerId(String);

impl CustomerId {
    pub const MAX_LEN: usize = 128;

    fn check(value: &str) -> Result<(), IdError> {
        check_len(value, 1, Self::MAX_LEN)?;
        if value.chars().any(|c| c.is_control() || c == '/') {
            return Err(IdError::Charset(
                "must not contain control characters or '/'",
            ));
        }
        if value.trim() != value {
            return Err(IdError::Charset("must not start or end with whitespace"));
        }
        Ok(())
    }
}

impl CustomerId {
    /// The partner's own account: the service records changes to the partner's settings (its
    /// streaming destinations) under it. No writer may record there.
    pub const PARTNER_ACCOUNT: &'static str = "_partner";
    /// The name shown for it.
    pub const PARTNER_ACCOUNT_NAME: &'static str = "Partner account";

    pub fn partner_account() -> Self {
        Self(Self::PARTNER_ACCOUNT.to_owned())
    }

    pub fn is_partner_account(&self) -> bool {
        self.0 == Self::PARTNER_ACCOUNT
    }
}

/// The key of one activity record, unique within a partner's customer.
/// Chosen by the writer (for retry safety) or generated as a ULID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ActivityId(String);

impl ActivityId {
    pub const MAX_LEN: usize = 64;

    fn check(value: &str) -> Result<(), IdError> {
        check_len(value, 1, Self::MAX_LEN)?;
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(IdError::Charset(
                "may contain only letters, digits, '-' and '_'",
            ));
        }
        Ok(())
    }

    pub fn generate() -> Self {
        Self(ulid::Ulid::generate().to_string())
    }
}

/// What every identifier newtype has: `parse` (check, normalise, own), `as_str`, `Display`,
/// serialization as its text and deserialization through the same checks. Each type brings its
/// own `fn check(&str) -> Result<(), IdError>`; the optional second argument normalises the text.
macro_rules! string_id {
    ($t:ty) => {
        $crate::domain::ids::string_id!($t, |value: String| value);
    };
    ($t:ty, $normalise:expr) => {
        impl $t {
            pub fn parse(value: &str) -> Result<Self, $crate::domain::ids::IdError> {
                Self::try_from(value.to_owned())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = $crate::domain::ids::IdError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::check(&value)?;
                Ok(Self($normalise(value)))
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}
pub(crate) use string_id;
string_id!(PartnerId);
string_id!(CustomerId);
string_id!(ActivityId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_ids_are_key_safe() {
        assert!(PartnerId::parse("partner-1.eu:prod_2").is_ok());
        assert!(PartnerId::parse("").is_err());
        assert!(PartnerId::parse("a#b").is_err());
        assert!(PartnerId::parse("a/b").is_err());
        assert!(PartnerId::parse(&"p".repeat(129)).is_err());
    }

    #[test]
    fn customer_ids_allow_unicode_but_not_slashes_or_controls() {
        assert_eq!(
            CustomerId::parse("台灣客戶-01").unwrap().as_str(),
            "台灣客戶-01"
        );
        assert!(CustomerId::parse(&"客".repeat(128)).is_ok());
        assert!(CustomerId::parse(&"客".repeat(129)).is_err());
        assert!(CustomerId::parse("a/b").is_err());
        assert!(CustomerId::parse("a\nb").is_err());
        assert!(CustomerId::parse(" padded").is_err());
        assert!(CustomerId::parse("").is_err());
    }

    #[test]
    fn activity_ids_are_restricted_and_generated_ids_are_valid() {
        assert!(ActivityId::parse("order_42-retry").is_ok());
        assert!(ActivityId::parse("has space").is_err());
        assert!(ActivityId::parse(&"a".repeat(65)).is_err());
        let generated = ActivityId::generate();
        assert_eq!(ActivityId::parse(generated.as_str()), Ok(generated));
    }
}
