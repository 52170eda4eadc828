//! Parameters of the list endpoints, turned into query strings in one place so that every
//! value is percent-encoded the same way.

use promptstore_types::PromptStatus;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::encode::query_string;
use crate::error::ClientError;

/// Which page of a cursor-paginated list to fetch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageRequest {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1..=200; the server's default (50) when absent.
    pub limit: Option<u32>,
}

impl PageRequest {
    pub(crate) fn pairs(&self) -> [(&'static str, Option<String>); 2] {
        [
            ("cursor", self.cursor.clone()),
            ("limit", self.limit.map(|l| l.to_string())),
        ]
    }

    pub(crate) fn query(&self) -> String {
        query_string(self.pairs())
    }
}

/// Filters of `GET /api/v1/prompts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptFilter {
    pub tag: Option<String>,
    /// Only prompts that have this label.
    pub label: Option<String>,
    pub status: Option<PromptStatus>,
    /// Only names starting with this (`support/`).
    pub prefix: Option<String>,
    /// Full-text search over names, descriptions, templates and tags.
    pub q: Option<String>,
    pub page: PageRequest,
}

impl PromptFilter {
    pub(crate) fn query(&self) -> String {
        let [cursor, limit] = self.page.pairs();
        query_string([
            ("tag", self.tag.clone()),
            ("label", self.label.clone()),
            ("status", self.status.map(|s| s.as_str().to_string())),
            ("prefix", self.prefix.clone()),
            ("q", self.q.clone()),
            cursor,
            limit,
        ])
    }
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// `prompt.created`, `label.moved`, …
    pub action: Option<String>,
    /// `prompt`, `version`, `label`, `key`, `project`.
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// Key id of the actor.
    pub actor: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub page: PageRequest,
}

impl AuditFilter {
    pub(crate) fn query(&self) -> Result<String, ClientError> {
        let [cursor, limit] = self.page.pairs();
        Ok(query_string([
            ("action", self.action.clone()),
            ("object_type", self.object_type.clone()),
            ("object_id", self.object_id.clone()),
            ("actor", self.actor.clone()),
            ("since", self.since.map(rfc3339).transpose()?),
            ("until", self.until.map(rfc3339).transpose()?),
            cursor,
            limit,
        ]))
    }
}

pub(crate) fn rfc3339(at: OffsetDateTime) -> Result<String, ClientError> {
    at.format(&Rfc3339)
        .map_err(|e| ClientError::InvalidArgument(format!("cannot format the time {at}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_filters_become_an_encoded_query() {
        let filter = PromptFilter {
            tag: Some("team a".into()),
            status: Some(PromptStatus::Active),
            prefix: Some("support/".into()),
            page: PageRequest {
                cursor: Some("abc=".into()),
                limit: Some(10),
            },
            ..PromptFilter::default()
        };
        assert_eq!(
            filter.query(),
            "?tag=team%20a&status=active&prefix=support%2F&cursor=abc%3D&limit=10"
        );
        assert_eq!(PromptFilter::default().query(), "");
    }

    #[test]
    fn audit_times_are_rfc3339() {
        let filter = AuditFilter {
            since: Some(time::macros::datetime!(2026-01-02 03:04:05 UTC)),
            action: Some("label.moved".into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            filter.query().unwrap(),
            "?action=label.moved&since=2026-01-02T03%3A04%3A05Z"
        );
    }
}
