//! `promptstore label …`: deploy (set), remove, roll back and list labels.

use promptstore_client::types::{LabelMove, RollbackLabel, SetLabel};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::connect;
use crate::cli::LabelCommand;
use crate::failure::Failure;
use crate::output::{Table, print_json, when};

pub async fn run(command: LabelCommand) -> Result<(), Failure> {
    match command {
        LabelCommand::Set {
            client,
            name,
            label,
            version,
            allow_breaking,
            reason,
            expected,
        } => {
            let api = connect(&client)?;
            let request = SetLabel {
                version,
                expected_version: expected,
                allow_breaking,
                reason,
            };
            let moved = api.set_label(&name, &label, &request).await?;
            print_move(&moved, client.json)
        }
        LabelCommand::Remove {
            client,
            name,
            label,
        } => {
            let api = connect(&client)?;
            let moved = api.remove_label(&name, &label).await?;
            print_move(&moved, client.json)
        }
        LabelCommand::Rollback {
            client,
            name,
            label,
            to,
            allow_breaking,
            reason,
        } => {
            let api = connect(&client)?;
            let request = RollbackLabel {
                version: to,
                allow_breaking,
                reason,
            };
            let moved = api.rollback_label(&name, &label, &request).await?;
            print_move(&moved, client.json)
        }
        LabelCommand::Show {
            client,
            name,
            label,
            as_of,
        } => {
            let api = connect(&client)?;
            match as_of {
                Some(raw) => {
                    let at = OffsetDateTime::parse(&raw, &Rfc3339).map_err(|e| {
                        Failure::usage(format!("invalid --as-of `{raw}`: {e} (expected RFC 3339, e.g. 2026-01-02T14:02:00Z)"))
                    })?;
                    let then = api.label_as_of(&name, &label, at).await?;
                    if client.json {
                        return Ok(print_json(&then)?);
                    }
                    match then.version {
                        Some(version) => outln!(
                            "{name}#{label} pointed at version {version} at {}",
                            when(then.as_of)
                        ),
                        None => outln!("{name}#{label} did not exist at {}", when(then.as_of)),
                    }
                }
                None => {
                    let now = api.get_label(&name, &label).await?;
                    if client.json {
                        return Ok(print_json(&now)?);
                    }
                    outln!(
                        "{name}#{label} → version {} (moved by {} at {}){}",
                        now.version,
                        now.updated_by,
                        when(now.updated_at),
                        if now.protected { ", protected" } else { "" }
                    );
                }
            }
            Ok(())
        }
        LabelCommand::List { client, name } => {
            let api = connect(&client)?;
            let labels = api.list_labels(&name).await?;
            if client.json {
                return Ok(print_json(&labels)?);
            }
            let mut table =
                Table::new(&["label", "version", "protected", "updated by", "updated at"]);
            for l in &labels {
                table.row(vec![
                    l.name.clone(),
                    l.version.to_string(),
                    if l.protected {
                        "yes".into()
                    } else {
                        String::new()
                    },
                    l.updated_by.clone(),
                    when(l.updated_at),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

fn print_move(moved: &LabelMove, json: bool) -> Result<(), Failure> {
    if json {
        return Ok(print_json(moved)?);
    }
    let show = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into());
    outln!(
        "{}#{}: {} → {}",
        moved.prompt,
        moved.label,
        show(moved.from_version),
        show(moved.to_version)
    );
    Ok(())
}
