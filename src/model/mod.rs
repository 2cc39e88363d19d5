//! The API's data types.
//!
//! The records the server sends (`Agent`, `Credential`, …) are the types
//! progenitor generates from the spec's received views: they decode whenever
//! the fields they need are there (a capability outside `resource:action`, an
//! owner over 128 characters, an unknown extra field all decode), and they are
//! `#[non_exhaustive]` since later servers add fields. The enums are generated
//! from the spec too, as open enums that keep values this SDK does not know.
//!
//! What the SDK sends is built with the request builders of each area
//! (`client.agents().register()…`), which check the spec's constraints before
//! anything is sent.

#[macro_use]
mod open_enum;

pub use open_enum::UnknownValue;

pub use crate::raw::types::{
    Agent, Audience, AuditEvent, Credential, CredentialWithSecret, Introspection,
};

/// An agent, credential or event id.
pub use uuid::Uuid;

/// A point in time, as the API's `date-time` fields carry it.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

include!(concat!(env!("OUT_DIR"), "/enums.rs"));

/// One page of a paginated listing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The number of matching items across all pages, when the server says.
    pub total: Option<u64>,
    /// The 1-based page number.
    pub page: u32,
    /// The page size: the one the server says it used (it may cap the one
    /// asked for), else the one asked for.
    pub limit: u32,
}

impl<T> Page<T> {
    /// Whether a later page may hold more items: the server's `total` says
    /// so, or, without it, this page came back full.
    pub fn has_more(&self) -> bool {
        match self.total {
            Some(total) => u64::from(self.page) * u64::from(self.limit) < total,
            None => self.items.len() as u64 >= u64::from(self.limit),
        }
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// The id that names a listed item, which pagination uses to drop an item a
/// page boundary shifted onto the next page, and to notice a server that
/// answers the same page again.
pub(crate) trait Keyed {
    fn key(&self) -> Uuid;
}

impl Keyed for Agent {
    fn key(&self) -> Uuid {
        self.agent_id
    }
}

impl Keyed for AuditEvent {
    fn key(&self) -> Uuid {
        self.event_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enums_keep_unknown_values_that_cannot_shadow_known_ones() {
        let status: AgentStatus = serde_json::from_str("\"hibernating\"").unwrap();
        assert!(matches!(&status, AgentStatus::Unknown(v) if v.as_str() == "hibernating"));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"hibernating\"");
        let known: AuditAction = serde_json::from_str("\"credential.rotated\"").unwrap();
        assert_eq!(known, AuditAction::CredentialRotated);
        assert_eq!(known.to_string(), "credential.rotated");
        assert_eq!(AgentStatus::from("active"), AgentStatus::Active);
        assert_eq!(AgentType::KNOWN.len(), 8);
    }

    #[test]
    fn has_more_uses_total_or_a_full_page() {
        let page = |n: usize, total, page| Page {
            items: vec![(); n],
            total,
            page,
            limit: 2,
        };
        assert!(page(2, Some(5), 2).has_more());
        assert!(!page(1, Some(5), 3).has_more());
        assert!(page(2, None, 1).has_more());
        assert!(!page(1, None, 1).has_more());
    }
}
