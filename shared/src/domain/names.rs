//! Names taken from the one serde definition of a type: the wire name of an enum's unit variant,
//! the variant a name stands for, and the field names of a struct. Nothing spells them twice.

use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};
use serde::{Deserialize, Serialize};

/// The serde name of a unit variant, e.g. `"inProgress"` for `Status::InProgress`.
pub fn name_of<T: Serialize>(value: &T) -> &'static str {
    // Only fails for what is not a unit variant; every caller passes one.
    serde_variant::to_variant_name(value).unwrap_or_default()
}

/// The unit variant whose serde name is `name`, if there is one.
pub fn parse_name<'a, T: Deserialize<'a>>(name: &'a str) -> Option<T> {
    T::deserialize(BorrowedStrDeserializer::<ValueError>::new(name)).ok()
}

/// The serde field names of a struct, in declaration order.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    serde_aux::serde_introspection::serde_introspect::<T>()
}

/// The serde names of an enum's variants, as a list for messages: `a, b, c`.
pub fn choices_of<'de, T: Deserialize<'de>>() -> String {
    fields_of::<T>().join(", ")
}

/// Implements `as_str`, `parse` and `Display` of enums whose unit variants' names are their serde
/// names.
macro_rules! serde_names {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// The name on the wire and in storage.
            pub fn as_str(self) -> &'static str {
                $crate::domain::names::name_of(&self)
            }

            /// The variant named `name` (its wire name, exactly).
            pub fn parse(name: &str) -> Option<Self> {
                $crate::domain::names::parse_name(name)
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
pub(crate) use serde_names;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Sample {
        First,
        InProgress,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Fields {
        one: u8,
        partner_user: Option<String>,
    }

    #[test]
    fn names_come_from_the_serde_definition() {
        assert_eq!(name_of(&Sample::InProgress), "inProgress");
        assert_eq!(parse_name::<Sample>("inProgress"), Some(Sample::InProgress));
        assert_eq!(parse_name::<Sample>("InProgress"), None);
        assert_eq!(parse_name::<Sample>("first"), Some(Sample::First));
        assert_eq!(fields_of::<Fields>(), ["one", "partnerUser"]);
        assert_eq!(choices_of::<Sample>(), "first, inProgress");
    }
}
