//! The OpenAPI 3.1 document, generated from the route annotations and the wire types, so
//! the document cannot drift from the code.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "promptstore", description = "Self-hosted prompt management: registry, labels, runtime resolve/render, usage analytics, A/B tests."),
    paths(
        routes::health::health,
        routes::health::ready,
        routes::projects::get_project,
        routes::projects::create_project,
        routes::projects::set_protected_labels,
        routes::keys::list_keys,
        routes::keys::create_key,
        routes::keys::revoke_key,
        routes::prompts::list_prompts,
        routes::prompts::create_prompt,
        routes::prompts::get_prompt,
        routes::prompts::update_prompt,
        routes::prompts::delete_prompt,
        routes::prompts::transition_prompt,
        routes::versions::list_versions,
        routes::versions::create_version,
        routes::versions::get_version,
        routes::versions::fork_version,
        routes::versions::diff_versions,
        routes::versions::get_dependencies,
        routes::labels::list_labels,
        routes::labels::get_label,
        routes::labels::set_label,
        routes::labels::remove_label,
        routes::labels::rollback_label,
        routes::labels::label_history,
        routes::runtime::resolve,
        routes::runtime::resolve_bulk,
        routes::runtime::render,
        routes::changes::changes,
        routes::audit::list_audit,
        routes::transfer::export_project,
        routes::transfer::import_project,
        routes::events::ingest_events,
        routes::events::list_events,
        routes::events::get_event,
        routes::events::attach_by_id,
        routes::events::attach_by_client_id,
        routes::analytics::summary,
        routes::analytics::timeseries,
        routes::analytics::compare,
        routes::analytics::top,
        routes::analytics::recommendations,
        routes::prices::list_prices,
        routes::prices::set_price,
        routes::prices::delete_price,
        routes::alerts::list_alerts,
        routes::alerts::create_alert,
        routes::alerts::get_alert,
        routes::alerts::update_alert,
        routes::alerts::delete_alert,
        routes::alerts::alert_events,
        routes::experiments::create_experiment,
        routes::experiments::list_experiments,
        routes::experiments::get_experiment,
        routes::experiments::update_experiment,
        routes::experiments::delete_experiment,
        routes::experiments::start_experiment,
        routes::experiments::stop_experiment,
        routes::experiments::conclude_experiment,
        routes::experiments::set_arms,
        routes::experiments::experiment_results,
        routes::experiments::experiment_history,
        routes::abtest::analyze,
        routes::metrics::metrics,
    ),
    components(schemas(
        promptstore_types::ErrorBody,
        promptstore_types::ErrorCode,
        promptstore_types::LabelAt,
        promptstore_types::Selector,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "projects", description = "The key's project and new projects"),
        (name = "keys", description = "API keys"),
        (name = "prompts", description = "Prompts and their lifecycle"),
        (name = "versions", description = "Immutable versions, forks, diffs and the include graph"),
        (name = "labels", description = "Movable labels, rollback and the deployment log"),
        (name = "runtime", description = "The hot path: resolve, render, bulk resolve, change stream"),
        (name = "audit", description = "Who changed what"),
        (name = "transfer", description = "Export and import of a whole project"),
        (name = "analytics", description = "Usage analytics: events, aggregate queries, prices, alert rules"),
        (name = "experiments", description = "A/B tests of prompt versions inside label resolution, their results and the calculator"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ps_<id>_<secret>")
                    .description(Some("An API key: Authorization: Bearer ps_<id>_<secret>"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                promptstore_types::API_KEY_HEADER,
                "An API key: X-API-Key: ps_<id>_<secret>",
            ))),
        );
    }
}

/// The document as served at `/api/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
