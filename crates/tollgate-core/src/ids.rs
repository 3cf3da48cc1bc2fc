//! Typed ids. Each is a UUIDv7 so ids sort by creation time, which is what cursor
//! pagination relies on; the newtype keeps an `AppId` from being passed as a `PlanId`.

use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_type! {
    /// An organization (provider, consumer or both).
    OrgId,
    /// A person who can sign in; members of orgs are users with a role.
    UserId,
    /// A user's personal API token (the secret is never stored).
    TokenId,
    /// A published or draft API.
    ApiId,
    /// A plan: a named set of operations offered under one set of terms.
    PlanId,
    /// A consumer org's application.
    AppId,
    /// An application's subscription to a plan.
    SubscriptionId,
    /// One entry of the audit log.
    AuditId,
    /// A key in the marketplace keyring.
    KeyId,
    /// A stored term sheet version.
    TermsId,
    /// A signed acceptance of a term sheet by a subscriber.
    AcceptanceId,
    /// A consumer API key (the secret is never stored).
    ApiKeyId,
    /// A notice to a subscriber that a plan offers a new term sheet version.
    NoticeId,
    /// An app's OAuth 2.0 client (client credentials grant).
    OAuthClientId,
    /// An app's registered HTTP message signature key (RFC 9421).
    SigningKeyId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = OrgId::new();
        assert_eq!(id.to_string().parse::<OrgId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<OrgId>(&json).unwrap(), id);
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = ApiId::new();
        let b = ApiId::new();
        assert!(a < b);
        assert!(
            a.to_string() < b.to_string(),
            "text order matches creation order"
        );
    }
}
