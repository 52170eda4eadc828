//! Typed calls of the registry routes: projects, keys, prompts, versions, labels,
//! dependencies, audit and import/export (docs/http-api.md, in that order).

use promptstore_types::{
    ApiKey, ApiKeyCreated, AuditRecord, CreateApiKey, CreateProject, CreatePrompt, CreateVersion,
    Dependencies, ForkVersion, ImportReport, Label, LabelAt, LabelMove, Page, Project,
    ProjectCreated, ProjectExport, Prompt, PromptCreated, RollbackLabel, SetLabel,
    SetProtectedLabels, TransitionPrompt, UpdatePrompt, Version, VersionCreated, VersionDiff,
    VersionSummary,
};
use reqwest::Method;
use reqwest::header::{HeaderValue, IF_MATCH};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::client::{Client, Tagged};
use crate::encode::{path_segment, query_string};
use crate::error::ClientError;
use crate::query::{AuditFilter, PageRequest, PromptFilter, rfc3339};

/// Lists that the API plan leaves open between a bare array and a page: accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrPage<T> {
    List(Vec<T>),
    Page(Page<T>),
}

impl<T> ListOrPage<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            ListOrPage::List(items) => items,
            ListOrPage::Page(page) => page.items,
        }
    }
}

fn prompt_path(name: &str) -> Result<String, ClientError> {
    Ok(format!(
        "/api/v1/prompts/{}",
        path_segment("prompt name", name)?
    ))
}

fn label_path(name: &str, label: &str) -> Result<String, ClientError> {
    Ok(format!(
        "{}/labels/{}",
        prompt_path(name)?,
        path_segment("label name", label)?
    ))
}

impl Client {
    // --- projects -------------------------------------------------------------------

    /// The project of this client's key.
    pub async fn project(&self) -> Result<Project, ClientError> {
        self.get_json("/api/v1/project").await
    }

    /// Creates a project and its first admin key (shown once). Admin only.
    pub async fn create_project(
        &self,
        request: &CreateProject,
    ) -> Result<ProjectCreated, ClientError> {
        self.send_json(Method::POST, "/api/v1/projects", request)
            .await
    }

    pub async fn set_protected_labels(
        &self,
        request: &SetProtectedLabels,
    ) -> Result<Project, ClientError> {
        self.send_json(Method::PUT, "/api/v1/project/protected-labels", request)
            .await
    }

    // --- keys -----------------------------------------------------------------------

    /// The project's keys, without secrets. Admin only.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, ClientError> {
        Ok(self
            .get_json::<ListOrPage<ApiKey>>("/api/v1/keys")
            .await?
            .into_vec())
    }

    /// Creates a key; the answer holds the secret, the only time it is shown.
    pub async fn create_key(&self, request: &CreateApiKey) -> Result<ApiKeyCreated, ClientError> {
        self.send_json(Method::POST, "/api/v1/keys", request).await
    }

    /// Revokes a key by its public id.
    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey, ClientError> {
        let path = format!("/api/v1/keys/{}", path_segment("key id", id)?);
        self.send_empty(Method::DELETE, &path).await
    }

    // --- prompts --------------------------------------------------------------------

    /// One page of prompts.
    pub async fn list_prompts(&self, filter: &PromptFilter) -> Result<Page<Prompt>, ClientError> {
        self.get_json(&format!("/api/v1/prompts{}", filter.query()))
            .await
    }

    /// Every prompt matching the filter, following the cursors (the filter's own cursor
    /// is the starting point).
    pub async fn list_all_prompts(
        &self,
        filter: &PromptFilter,
    ) -> Result<Vec<Prompt>, ClientError> {
        let mut filter = filter.clone();
        self.collect_pages(|cursor| {
            filter.page.cursor = cursor;
            format!("/api/v1/prompts{}", filter.query())
        })
        .await
    }

    pub async fn create_prompt(
        &self,
        request: &CreatePrompt,
    ) -> Result<PromptCreated, ClientError> {
        self.send_json(Method::POST, "/api/v1/prompts", request)
            .await
    }

    pub async fn get_prompt(&self, name: &str) -> Result<Prompt, ClientError> {
        self.get_json(&prompt_path(name)?).await
    }

    /// The prompt with its `ETag` (`"<revision>"`).
    pub async fn get_prompt_tagged(&self, name: &str) -> Result<Tagged<Prompt>, ClientError> {
        self.get_tagged(&prompt_path(name)?).await
    }

    /// Changes metadata if the prompt is still at `expected_revision` (sent as `If-Match`);
    /// otherwise the server refuses with `precondition_failed`.
    pub async fn update_prompt(
        &self,
        name: &str,
        expected_revision: u64,
        request: &UpdatePrompt,
    ) -> Result<Prompt, ClientError> {
        let if_match = HeaderValue::from_str(&format!("\"{expected_revision}\""))
            .map_err(|_| ClientError::InvalidArgument("invalid revision".into()))?;
        self.send_json_with(
            Method::PATCH,
            &prompt_path(name)?,
            &[(IF_MATCH, if_match)],
            request,
        )
        .await
    }

    /// Deletes a prompt; `force` deletes it even while labels or other prompts depend on it.
    pub async fn delete_prompt(&self, name: &str, force: bool) -> Result<(), ClientError> {
        let path = format!(
            "{}{}",
            prompt_path(name)?,
            query_string([("force", force.then(|| "true".to_string()))])
        );
        self.call(Method::DELETE, &path, &[], None).await?.ok()?;
        Ok(())
    }

    /// Moves a prompt through its lifecycle.
    pub async fn transition_prompt(
        &self,
        name: &str,
        request: &TransitionPrompt,
    ) -> Result<Prompt, ClientError> {
        self.send_json(
            Method::POST,
            &format!("{}/status", prompt_path(name)?),
            request,
        )
        .await
    }

    // --- versions -------------------------------------------------------------------

    /// One page of versions, newest first.
    pub async fn list_versions(
        &self,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<VersionSummary>, ClientError> {
        self.get_json(&format!("{}/versions{}", prompt_path(name)?, page.query()))
            .await
    }

    /// Every version, newest first.
    pub async fn list_all_versions(&self, name: &str) -> Result<Vec<VersionSummary>, ClientError> {
        let base = format!("{}/versions", prompt_path(name)?);
        self.collect_pages(|cursor| {
            format!(
                "{base}{}",
                PageRequest {
                    cursor,
                    limit: Some(200)
                }
                .query()
            )
        })
        .await
    }

    /// Saves a new version (`created: false` when identical to the newest one).
    pub async fn create_version(
        &self,
        name: &str,
        request: &CreateVersion,
    ) -> Result<VersionCreated, ClientError> {
        self.send_json(
            Method::POST,
            &format!("{}/versions", prompt_path(name)?),
            request,
        )
        .await
    }

    pub async fn get_version(&self, name: &str, number: u32) -> Result<Version, ClientError> {
        self.get_json(&format!("{}/versions/{number}", prompt_path(name)?))
            .await
    }

    /// Forks a version into a new prompt.
    pub async fn fork_version(
        &self,
        name: &str,
        number: u32,
        request: &ForkVersion,
    ) -> Result<PromptCreated, ClientError> {
        self.send_json(
            Method::POST,
            &format!("{}/versions/{number}/fork", prompt_path(name)?),
            request,
        )
        .await
    }

    /// The diff between two versions of a prompt.
    pub async fn diff(&self, name: &str, from: u32, to: u32) -> Result<VersionDiff, ClientError> {
        self.get_json(&format!("{}/diff?from={from}&to={to}", prompt_path(name)?))
            .await
    }

    // --- labels ---------------------------------------------------------------------

    pub async fn list_labels(&self, name: &str) -> Result<Vec<Label>, ClientError> {
        let path = format!("{}/labels", prompt_path(name)?);
        Ok(self.get_json::<ListOrPage<Label>>(&path).await?.into_vec())
    }

    pub async fn get_label(&self, name: &str, label: &str) -> Result<Label, ClientError> {
        self.get_json(&label_path(name, label)?).await
    }

    /// What the label pointed to at `as_of` (time travel over the deployment log).
    pub async fn label_as_of(
        &self,
        name: &str,
        label: &str,
        as_of: OffsetDateTime,
    ) -> Result<LabelAt, ClientError> {
        let query = query_string([("as_of", Some(rfc3339(as_of)?))]);
        self.get_json(&format!("{}{query}", label_path(name, label)?))
            .await
    }

    /// Points a label at a version (creating or moving it).
    pub async fn set_label(
        &self,
        name: &str,
        label: &str,
        request: &SetLabel,
    ) -> Result<LabelMove, ClientError> {
        self.send_json(Method::PUT, &label_path(name, label)?, request)
            .await
    }

    pub async fn remove_label(&self, name: &str, label: &str) -> Result<LabelMove, ClientError> {
        self.send_empty(Method::DELETE, &label_path(name, label)?)
            .await
    }

    /// Moves a label back to its previous version (or to `request.version`).
    pub async fn rollback_label(
        &self,
        name: &str,
        label: &str,
        request: &RollbackLabel,
    ) -> Result<LabelMove, ClientError> {
        self.send_json(
            Method::POST,
            &format!("{}/rollback", label_path(name, label)?),
            request,
        )
        .await
    }

    /// One page of the deployment log of a prompt (or of one of its labels), newest first.
    pub async fn label_history(
        &self,
        name: &str,
        label: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>, ClientError> {
        let [cursor, limit] = page.pairs();
        let query = query_string([("label", label.map(str::to_string)), cursor, limit]);
        self.get_json(&format!("{}/history{query}", prompt_path(name)?))
            .await
    }

    /// The include graph around a prompt, both ways.
    pub async fn dependencies(&self, name: &str) -> Result<Dependencies, ClientError> {
        self.get_json(&format!("{}/dependencies", prompt_path(name)?))
            .await
    }

    // --- audit, export, import ------------------------------------------------------

    /// One page of audit records, newest first. Admin only.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Page<AuditRecord>, ClientError> {
        self.get_json(&format!("/api/v1/audit{}", filter.query()?))
            .await
    }

    /// The whole project as prompts-as-code.
    pub async fn export(&self) -> Result<ProjectExport, ClientError> {
        self.get_json("/api/v1/export").await
    }

    /// Applies an export all-or-nothing; importing the same bundle twice changes nothing.
    pub async fn import(&self, bundle: &ProjectExport) -> Result<ImportReport, ClientError> {
        self.send_json(Method::POST, "/api/v1/import", bundle).await
    }

    /// Follows `next_cursor` until the last page. A server that repeats a cursor would loop
    /// forever, so a repeated cursor ends the walk with an error.
    async fn collect_pages<T: DeserializeOwned>(
        &self,
        mut path_for: impl FnMut(Option<String>) -> String,
    ) -> Result<Vec<T>, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: Page<T> = self.get_json(&path_for(cursor.clone())).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if Some(&next) == cursor.as_ref() => {
                    return Err(ClientError::Decode(format!(
                        "the server repeated the page cursor `{next}`"
                    )));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_names_and_labels() {
        assert_eq!(
            prompt_path("support/triage").unwrap(),
            "/api/v1/prompts/support%2Ftriage"
        );
        assert_eq!(
            label_path("support/triage", "prod eu").unwrap(),
            "/api/v1/prompts/support%2Ftriage/labels/prod%20eu"
        );
        assert!(prompt_path("").is_err());
        assert!(label_path("a", "..").is_err());
    }

    #[test]
    fn lists_accept_arrays_and_pages() {
        let bare: ListOrPage<u32> = serde_json::from_str("[1,2]").unwrap();
        let page: ListOrPage<u32> =
            serde_json::from_str(r#"{"items":[3],"next_cursor":"x"}"#).unwrap();
        assert_eq!(bare.into_vec(), vec![1, 2]);
        assert_eq!(page.into_vec(), vec![3]);
    }
}
