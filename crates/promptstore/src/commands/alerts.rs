//! `promptstore alerts …`: list rules with their state, create and delete rules, and show
//! the firing/resolved history.

use promptstore_client::PageRequest;
use promptstore_client::types::{AlertRule, AlertRuleIn};

use super::connect;
use crate::cli::AlertsCommand;
use crate::failure::Failure;
use crate::output::{Table, print_json, when};

fn scope(rule: &AlertRuleIn) -> String {
    match (&rule.prompt, &rule.label) {
        (None, _) => "project".to_owned(),
        (Some(p), None) => p.clone(),
        (Some(p), Some(l)) => format!("{p}@{l}"),
    }
}

fn value(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"))
}

fn rules_table(rules: &[AlertRule]) -> Table {
    let mut table = Table::new(&[
        "id",
        "name",
        "condition",
        "scope",
        "window",
        "min sample",
        "enabled",
        "state",
        "last value",
    ]);
    for r in rules {
        table.row(vec![
            r.id.to_string(),
            r.rule.name.clone(),
            format!(
                "{} {} {}",
                r.rule.metric, r.rule.comparison, r.rule.threshold
            ),
            scope(&r.rule),
            format!("{} min", r.rule.window_minutes),
            r.rule.min_sample.to_string(),
            if r.rule.enabled { "yes" } else { "no" }.to_owned(),
            r.state.clone(),
            value(r.last_value),
        ]);
    }
    table
}

pub async fn run(command: AlertsCommand) -> Result<(), Failure> {
    match command {
        AlertsCommand::List { client } => {
            let api = connect(&client)?;
            let rules = api.list_alerts().await?;
            if client.json {
                return Ok(print_json(&rules)?);
            }
            rules_table(&rules).print();
            Ok(())
        }
        AlertsCommand::Create {
            client,
            name,
            metric,
            comparison,
            threshold,
            window,
            min_sample,
            prompt,
            label,
            disabled,
        } => {
            let api = connect(&client)?;
            let rule = api
                .create_alert(&AlertRuleIn {
                    name,
                    metric,
                    prompt,
                    label,
                    comparison,
                    threshold,
                    window_minutes: window,
                    min_sample,
                    enabled: !disabled,
                })
                .await?;
            if client.json {
                return Ok(print_json(&rule)?);
            }
            outln!("created alert rule {} ({})", rule.id, rule.rule.name);
            Ok(())
        }
        AlertsCommand::Delete { client, id } => {
            let api = connect(&client)?;
            api.delete_alert(id).await?;
            outln!("deleted alert rule {id}");
            Ok(())
        }
        AlertsCommand::History {
            client,
            rule,
            limit,
        } => {
            let api = connect(&client)?;
            let page = api
                .alert_events(
                    rule,
                    &PageRequest {
                        cursor: None,
                        limit: Some(limit),
                    },
                )
                .await?;
            if client.json {
                return Ok(print_json(&page.items)?);
            }
            let mut table = Table::new(&["at", "rule", "state", "value", "threshold", "sample"]);
            for e in &page.items {
                table.row(vec![
                    when(e.at),
                    format!("{} ({})", e.rule_name, e.rule_id),
                    e.state.clone(),
                    value(Some(e.value)),
                    e.threshold.to_string(),
                    e.sample.to_string(),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}
