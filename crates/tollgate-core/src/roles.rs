//! Who may do what. Org roles limit members inside their org; marketplace roles sit above
//! all orgs. Visibility across orgs (the catalog, subscriptions) is decided by the
//! control plane's access layer; this module only answers "does this role permit that".

use serde::{Deserialize, Serialize};

/// A member's role inside one organization.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including deleting the org and granting ownership.
    Owner,
    /// Everything except deleting the org and granting or removing ownership.
    Admin,
    /// Builds: APIs, apps, subscriptions, own tokens. Cannot manage members or plans.
    Developer,
    /// Reads everything in the org; will manage invoices and payment details.
    Billing,
    /// Reads everything in the org, including its audit log. Changes nothing.
    Auditor,
}

/// A user's role above all orgs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarketplaceRole {
    /// Runs the marketplace: may read and change every object.
    Operator,
    /// May read every object and the whole audit log; changes nothing.
    Auditor,
}

/// An action inside an organization, checked against the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the org and its objects.
    Read,
    /// Rename or re-describe the org.
    UpdateOrg,
    /// Delete the org.
    DeleteOrg,
    /// Add, change or remove members (owners only for the `owner` role).
    ManageMembers,
    /// Create and change APIs and their OpenAPI documents.
    ManageApis,
    /// Create and change plans.
    ManagePlans,
    /// Create and change applications.
    ManageApps,
    /// Subscribe an app, cancel its subscriptions (consumer side).
    Subscribe,
    /// Approve, suspend, reinstate or cancel subscriptions to own plans (provider side).
    DecideSubscriptions,
    /// Read the org's audit log.
    ReadAudit,
    /// Issue credit notes, mark invoices paid or void, manage test clocks (billing).
    ManageBilling,
}

impl Role {
    /// Whether this role permits `action`.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Owner => true,
            Role::Admin => action != DeleteOrg,
            Role::Developer => matches!(action, Read | ManageApis | ManageApps | Subscribe),
            Role::Billing => matches!(action, Read | ManageBilling),
            Role::Auditor => matches!(action, Read | ReadAudit),
        }
    }
}

impl MarketplaceRole {
    /// Whether this marketplace role permits `action` in any org.
    pub fn allows(self, action: Action) -> bool {
        match self {
            MarketplaceRole::Operator => true,
            MarketplaceRole::Auditor => matches!(action, Action::Read | Action::ReadAudit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_delete_orgs_and_auditors_change_nothing() {
        assert!(Role::Owner.allows(Action::DeleteOrg));
        assert!(!Role::Admin.allows(Action::DeleteOrg));
        for a in [
            Action::UpdateOrg,
            Action::ManageApis,
            Action::ManageApps,
            Action::Subscribe,
        ] {
            assert!(!Role::Auditor.allows(a));
            assert!(!MarketplaceRole::Auditor.allows(a));
            assert!(MarketplaceRole::Operator.allows(a));
        }
        assert!(Role::Auditor.allows(Action::ReadAudit));
        assert!(!Role::Developer.allows(Action::ReadAudit));
        assert!(!Role::Developer.allows(Action::ManagePlans));
        assert!(!Role::Billing.allows(Action::ManageApis));
        assert!(Role::Billing.allows(Action::ManageBilling));
        assert!(!Role::Developer.allows(Action::ManageBilling));
        assert!(!MarketplaceRole::Auditor.allows(Action::ManageBilling));
    }
}
