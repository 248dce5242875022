//! Roles of a partner's users and what each may do.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ids::PartnerId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    GlobalAdmin,
    BillingAdmin,
    UserManagementAdmin,
    AdminAgent,
    SalesAgent,
    HelpdeskAgent,
    /// A system integration that records activities; it cannot read the log.
    ActivityWriter,
    /// Partner Center's account admin: manages the partner's streaming destinations. Not one of
    /// the roles the log page lists as its readers, so it does not read the log.
    AccountAdmin,
}

super::names::serde_names!(Role);

impl Role {
    /// The six portal roles that may view and export the activity log.
    pub fn may_read(self) -> bool {
        !matches!(self, Self::ActivityWriter | Self::AccountAdmin)
    }

    pub fn may_record(self) -> bool {
        matches!(self, Self::ActivityWriter)
    }

    /// The roles that manage where the log is streamed.
    pub fn may_manage(self) -> bool {
        matches!(self, Self::GlobalAdmin | Self::AccountAdmin)
    }

    fn has(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => self.may_read(),
            Permission::Record => self.may_record(),
            Permission::Manage => self.may_manage(),
        }
    }
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Record,
    /// Managing streaming destinations.
    Manage,
}

impl Role {
    /// Every role, in declaration order.
    pub fn all() -> impl Iterator<Item = Self> {
        super::names::fields_of::<Self>()
            .iter()
            .filter_map(|name| Self::parse(name))
    }
}

impl Permission {
    /// The roles that have it.
    pub fn roles(self) -> Vec<Role> {
        Role::all().filter(|r| r.has(self)).collect()
    }

    /// Why a caller without it is refused: what it is and the roles that have it.
    pub fn refusal(self) -> String {
        let roles: Vec<&str> = self.roles().into_iter().map(Role::as_str).collect();
        match (self, roles.as_slice()) {
            (Self::Read, _) => format!(
                "viewing the activity log needs one of the roles {}",
                roles.join(", ")
            ),
            (Self::Record, [one]) => format!("recording activities needs the {one} role"),
            (Self::Record, _) => format!(
                "recording activities needs one of the roles {}",
                roles.join(", ")
            ),
            (Self::Manage, _) => format!(
                "managing streaming destinations needs one of the roles {}",
                roles.join(", ")
            ),
        }
    }
}

/// A verified caller: tenant, subject and roles, from the authorizer or a locally verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub partner: PartnerId,
    pub subject: String,
    pub roles: BTreeSet<Role>,
}

impl Identity {
    pub fn allows(&self, permission: Permission) -> bool {
        self.roles.iter().any(|r| r.has(permission))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(roles: &[Role]) -> Identity {
        Identity {
            partner: PartnerId::parse("p1").unwrap(),
            subject: "u".into(),
            roles: roles.iter().copied().collect(),
        }
    }

    #[test]
    fn the_six_portal_roles_read_and_only_the_writer_records() {
        for r in [
            Role::GlobalAdmin,
            Role::BillingAdmin,
            Role::UserManagementAdmin,
            Role::AdminAgent,
            Role::SalesAgent,
            Role::HelpdeskAgent,
        ] {
            assert!(who(&[r]).allows(Permission::Read), "{r:?} reads");
            assert!(
                !who(&[r]).allows(Permission::Record),
                "{r:?} does not record"
            );
        }
        assert!(who(&[Role::ActivityWriter]).allows(Permission::Record));
        assert!(!who(&[Role::ActivityWriter]).allows(Permission::Read));
        assert!(!who(&[Role::AccountAdmin]).allows(Permission::Read));
        assert!(!who(&[Role::AccountAdmin]).allows(Permission::Record));
        for r in Role::all() {
            assert_eq!(
                who(&[r]).allows(Permission::Manage),
                matches!(r, Role::GlobalAdmin | Role::AccountAdmin),
                "{r:?} manages destinations"
            );
        }
        assert!(!who(&[]).allows(Permission::Read));
    }

    #[test]
    fn a_refusal_names_the_roles_that_have_the_permission() {
        assert_eq!(
            Permission::Read.refusal(),
            "viewing the activity log needs one of the roles GlobalAdmin, BillingAdmin, \
             UserManagementAdmin, AdminAgent, SalesAgent, HelpdeskAgent"
        );
        assert_eq!(
            Permission::Record.refusal(),
            "recording activities needs the ActivityWriter role"
        );
        assert_eq!(
            Permission::Manage.refusal(),
            "managing streaming destinations needs one of the roles GlobalAdmin, AccountAdmin"
        );
        assert_eq!(Role::all().count(), 8);
    }

    #[test]
    fn unknown_role_names_are_not_roles() {
        assert_eq!(Role::parse("globaladmin"), None);
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("SalesAgent"), Some(Role::SalesAgent));
    }
}
