//! Typed calls of the experiment routes (A/B tests): lifecycle, arms, results, history, and
//! the calculator (docs/http-api.md, "Experiment routes").

use promptstore_types::{
    CreateExperiment, EndExperiment, Experiment, ExperimentHistoryEntry, ExperimentResults,
    ExperimentStatus, Page, UpdateArms,
};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue, IF_MATCH};

use crate::client::{Client, Tagged};
use crate::encode::{path_segment, query_string};
use crate::error::ClientError;
use crate::query::PageRequest;

/// Filters of `GET /api/v1/experiments`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExperimentFilter {
    pub prompt: Option<String>,
    pub status: Option<ExperimentStatus>,
    pub page: PageRequest,
}

/// What `POST /api/v1/abtest/analyze` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AnalyzeFormat {
    /// The readable analysis (text).
    #[default]
    Report,
    /// `[{"id", "expected": {...}}]` with the reference cases' field names (JSON).
    Reference,
    /// The full analysis as JSON.
    Json,
}

impl AnalyzeFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            AnalyzeFormat::Report => "report",
            AnalyzeFormat::Reference => "reference",
            AnalyzeFormat::Json => "json",
        }
    }
}

/// The answer of the calculator: text for `report`, JSON otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    Text(String),
    Json(serde_json::Value),
}

fn experiment_path(id: &str) -> Result<String, ClientError> {
    Ok(format!(
        "/api/v1/experiments/{}",
        path_segment("experiment id", id)?
    ))
}

fn if_match(revision: Option<u64>) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
    match revision {
        None => Ok(Vec::new()),
        Some(r) => Ok(vec![(
            IF_MATCH,
            HeaderValue::from_str(&format!("\"{r}\""))
                .map_err(|_| ClientError::InvalidArgument("invalid revision".into()))?,
        )]),
    }
}

impl Client {
    /// Creates an experiment in `draft`.
    pub async fn create_experiment(
        &self,
        request: &CreateExperiment,
    ) -> Result<Experiment, ClientError> {
        self.send_json(Method::POST, "/api/v1/experiments", request)
            .await
    }

    /// Experiments of the project, newest first.
    pub async fn list_experiments(
        &self,
        filter: &ExperimentFilter,
    ) -> Result<Page<Experiment>, ClientError> {
        let [cursor, limit] = filter.page.pairs();
        let query = query_string([
            ("prompt", filter.prompt.clone()),
            ("status", filter.status.map(|s| s.as_str().to_string())),
            cursor,
            limit,
        ]);
        self.get_json(&format!("/api/v1/experiments{query}")).await
    }

    pub async fn get_experiment(&self, id: &str) -> Result<Experiment, ClientError> {
        self.get_json(&experiment_path(id)?).await
    }

    /// The experiment with its `ETag` (`"<revision>"`).
    pub async fn get_experiment_tagged(&self, id: &str) -> Result<Tagged<Experiment>, ClientError> {
        self.get_tagged(&experiment_path(id)?).await
    }

    /// Replaces a draft's definition if it is still at `expected_revision`.
    pub async fn update_experiment(
        &self,
        id: &str,
        expected_revision: u64,
        request: &CreateExperiment,
    ) -> Result<Experiment, ClientError> {
        self.send_json_with(
            Method::PUT,
            &experiment_path(id)?,
            &if_match(Some(expected_revision))?,
            request,
        )
        .await
    }

    /// Deletes a draft.
    pub async fn delete_experiment(&self, id: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &experiment_path(id)?, &[], None)
            .await?
            .ok()?;
        Ok(())
    }

    /// `draft → running` (only if still at `expected_revision`, when given).
    pub async fn start_experiment(
        &self,
        id: &str,
        expected_revision: Option<u64>,
    ) -> Result<Experiment, ClientError> {
        let path = format!("{}/start", experiment_path(id)?);
        self.call(Method::POST, &path, &if_match(expected_revision)?, None)
            .await?
            .ok()?
            .decode(&path)
    }

    /// `running → stopped`.
    pub async fn stop_experiment(
        &self,
        id: &str,
        request: &EndExperiment,
    ) -> Result<Experiment, ClientError> {
        self.send_json(
            Method::POST,
            &format!("{}/stop", experiment_path(id)?),
            request,
        )
        .await
    }

    /// Concludes, optionally naming the winner and promoting it (the label moves to its
    /// version in the same transaction).
    pub async fn conclude_experiment(
        &self,
        id: &str,
        request: &EndExperiment,
    ) -> Result<Experiment, ClientError> {
        self.send_json(
            Method::POST,
            &format!("{}/conclude", experiment_path(id)?),
            request,
        )
        .await
    }

    /// Changes the arms or weights of a running experiment (a new analysis phase, recorded
    /// with the reason).
    pub async fn set_experiment_arms(
        &self,
        id: &str,
        expected_revision: Option<u64>,
        request: &UpdateArms,
    ) -> Result<Experiment, ClientError> {
        self.send_json_with(
            Method::PUT,
            &format!("{}/arms", experiment_path(id)?),
            &if_match(expected_revision)?,
            request,
        )
        .await
    }

    /// The statistical results: the current phase, or every phase with `all_phases`;
    /// `mde` overrides the experiment's minimum detectable effect for the sample size.
    pub async fn experiment_results(
        &self,
        id: &str,
        all_phases: bool,
        mde: Option<f64>,
    ) -> Result<ExperimentResults, ClientError> {
        let query = query_string([
            ("all_phases", all_phases.then(|| "true".to_string())),
            ("mde", mde.map(|m| m.to_string())),
        ]);
        self.get_json(&format!("{}/results{query}", experiment_path(id)?))
            .await
    }

    /// Every lifecycle step and decision, oldest first.
    pub async fn experiment_history(
        &self,
        id: &str,
        page: &PageRequest,
    ) -> Result<Page<ExperimentHistoryEntry>, ClientError> {
        self.get_json(&format!("{}/history{}", experiment_path(id)?, page.query()))
            .await
    }

    /// The A/B calculator on any data: a case, a list of cases, or a document shaped like
    /// the reference `cases.json`.
    pub async fn abtest_analyze(
        &self,
        cases: &serde_json::Value,
        format: AnalyzeFormat,
    ) -> Result<Analysis, ClientError> {
        let path = format!(
            "/api/v1/abtest/analyze{}",
            query_string([("format", Some(format.as_str().to_string()))])
        );
        let body = crate::client::encode_body(cases)?;
        let answer = self
            .call(Method::POST, &path, &[], Some(body))
            .await?
            .ok()?;
        match format {
            AnalyzeFormat::Report => Ok(Analysis::Text(
                String::from_utf8_lossy(&answer.body).into_owned(),
            )),
            AnalyzeFormat::Reference | AnalyzeFormat::Json => {
                Ok(Analysis::Json(answer.decode(&path)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_segments() {
        assert_eq!(
            experiment_path("3f2a-1").unwrap(),
            "/api/v1/experiments/3f2a-1"
        );
        assert!(experiment_path("a/b").unwrap().ends_with("a%2Fb"));
    }

    #[test]
    fn revisions_become_if_match() {
        let headers = if_match(Some(7)).unwrap();
        assert_eq!(headers[0].1, "\"7\"");
        assert!(if_match(None).unwrap().is_empty());
    }
}
