//! Builders of the audit records of analytics changes (model prices, alert rules), so that
//! every backend writes the same action names, object ids and before/after JSON. The JSON
//! is the wire form an API client sees (`ModelPrice`, `AlertRule`).
//!
//! Events and alert evaluations are not audited: they are data, not changes to the
//! project's configuration.

use promptstore_types::{AlertRule, ModelPrice};

use super::model::{AlertRuleRecord, PriceRecord};
use crate::convert::to_json;
use crate::model::NewAuditEntry;

/// The action names, as stored and as filtered on (`GET /audit?action=`).
pub mod actions {
    pub const PRICE_SET: &str = "price.set";
    pub const PRICE_DELETED: &str = "price.deleted";
    pub const ALERT_RULE_CREATED: &str = "alert_rule.created";
    pub const ALERT_RULE_UPDATED: &str = "alert_rule.updated";
    pub const ALERT_RULE_DELETED: &str = "alert_rule.deleted";
}

/// The object types of analytics audit records.
pub mod object_types {
    /// Object id: the model name.
    pub const PRICE: &str = "price";
    /// Object id: the rule id.
    pub const ALERT_RULE: &str = "alert_rule";
}

/// A project's own price entry as the API shows it.
fn price_json(p: &PriceRecord) -> serde_json::Value {
    to_json(&ModelPrice {
        model: p.model.clone(),
        input_per_mtok: p.input_per_mtok,
        output_per_mtok: p.output_per_mtok,
        cached_input_per_mtok: p.cached_input_per_mtok,
        effective_from: p.effective_from,
        source: "project".to_owned(),
    })
}

fn rule_json(r: &AlertRuleRecord) -> serde_json::Value {
    to_json(&AlertRule {
        id: r.id,
        rule: r.rule.clone(),
        state: r.state.clone(),
        last_value: r.last_value,
        last_evaluated_at: r.last_evaluated_at,
        created_at: r.created_at,
    })
}

/// A price entry added, or replaced (`before`: the entry of the same model and effective
/// time it replaced).
pub fn price_set(before: Option<&PriceRecord>, after: &PriceRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PRICE_SET,
        object_type: object_types::PRICE,
        object_id: after.model.clone(),
        before: before.map(price_json),
        after: Some(price_json(after)),
    }
}

/// All of a project's entries for `model` removed; `before` lists them.
pub fn price_deleted(model: &str, deleted: &[PriceRecord]) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::PRICE_DELETED,
        object_type: object_types::PRICE,
        object_id: model.to_owned(),
        before: Some(serde_json::Value::Array(
            deleted.iter().map(price_json).collect(),
        )),
        after: None,
    }
}

pub fn alert_rule_created(r: &AlertRuleRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::ALERT_RULE_CREATED,
        object_type: object_types::ALERT_RULE,
        object_id: r.id.to_string(),
        before: None,
        after: Some(rule_json(r)),
    }
}

pub fn alert_rule_updated(before: &AlertRuleRecord, after: &AlertRuleRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::ALERT_RULE_UPDATED,
        object_type: object_types::ALERT_RULE,
        object_id: after.id.to_string(),
        before: Some(rule_json(before)),
        after: Some(rule_json(after)),
    }
}

pub fn alert_rule_deleted(before: &AlertRuleRecord) -> NewAuditEntry {
    NewAuditEntry {
        action: actions::ALERT_RULE_DELETED,
        object_type: object_types::ALERT_RULE,
        object_id: before.id.to_string(),
        before: Some(rule_json(before)),
        after: None,
    }
}

#[cfg(test)]
mod tests {
    use promptstore_types::AlertRuleIn;
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::model::ProjectId;

    fn price(model: &str, input: f64) -> PriceRecord {
        PriceRecord {
            model: model.to_owned(),
            input_per_mtok: input,
            output_per_mtok: 10.0,
            cached_input_per_mtok: None,
            effective_from: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn price_records_name_the_model_and_carry_the_wire_form() {
        let set = price_set(Some(&price("gpt-x", 1.0)), &price("gpt-x", 2.0));
        assert_eq!(set.action, "price.set");
        assert_eq!(set.object_type, "price");
        assert_eq!(set.object_id, "gpt-x");
        assert_eq!(set.before.as_ref().unwrap()["input_per_mtok"], json!(1.0));
        assert_eq!(set.after.as_ref().unwrap()["source"], json!("project"));
        assert_eq!(price_set(None, &price("m", 1.0)).before, None);

        let deleted = price_deleted("gpt-x", &[price("gpt-x", 1.0), price("gpt-x", 2.0)]);
        assert_eq!(deleted.action, "price.deleted");
        assert_eq!(deleted.before.unwrap().as_array().unwrap().len(), 2);
        assert_eq!(deleted.after, None);
    }

    #[test]
    fn alert_rule_records_use_the_rule_id() {
        let rule = AlertRuleRecord {
            id: 7,
            project: ProjectId("p".into()),
            rule: AlertRuleIn {
                name: "errors".into(),
                metric: "error_rate".into(),
                prompt: None,
                label: None,
                comparison: "gt".into(),
                threshold: 0.1,
                window_minutes: 15,
                min_sample: 10,
                enabled: true,
            },
            state: "ok".into(),
            last_value: None,
            last_evaluated_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let created = alert_rule_created(&rule);
        assert_eq!(
            (
                created.action,
                created.object_type,
                created.object_id.as_str()
            ),
            ("alert_rule.created", "alert_rule", "7")
        );
        assert_eq!(created.after.unwrap()["name"], json!("errors"));
        assert_eq!(
            alert_rule_updated(&rule, &rule).action,
            "alert_rule.updated"
        );
        let deleted = alert_rule_deleted(&rule);
        assert_eq!(
            (deleted.action, deleted.after),
            ("alert_rule.deleted", None)
        );
    }
}
