//! `promptstore key …`: create (secret shown once), list, revoke.

use promptstore_client::types::{CreateApiKey, Role};

use super::connect;
use crate::cli::KeyCommand;
use crate::failure::Failure;
use crate::output::{Table, print_json, when};

pub async fn run(command: KeyCommand) -> Result<(), Failure> {
    match command {
        KeyCommand::Create { client, name, role } => {
            let role = Role::parse(&role).ok_or_else(|| {
                Failure::usage(format!(
                    "unknown role `{role}`: use admin, editor, viewer or runtime"
                ))
            })?;
            let api = connect(&client)?;
            let created = api.create_key(&CreateApiKey { name, role }).await?;
            if client.json {
                return Ok(print_json(&created)?);
            }
            outln!(
                "created key {} ({}, role {})",
                created.key.id,
                created.key.name,
                created.key.role.as_str()
            );
            outln!("secret (shown once, store it now): {}", created.secret);
            Ok(())
        }
        KeyCommand::List { client } => {
            let api = connect(&client)?;
            let keys = api.list_keys().await?;
            if client.json {
                return Ok(print_json(&keys)?);
            }
            let mut table = Table::new(&["id", "name", "role", "created", "created by", "revoked"]);
            for k in &keys {
                table.row(vec![
                    k.id.clone(),
                    k.name.clone(),
                    k.role.as_str().into(),
                    when(k.created_at),
                    k.created_by.clone(),
                    k.revoked_at.map(when).unwrap_or_default(),
                ]);
            }
            table.print();
            Ok(())
        }
        KeyCommand::Revoke { client, id } => {
            let api = connect(&client)?;
            let key = api.revoke_key(&id).await?;
            if client.json {
                return Ok(print_json(&key)?);
            }
            outln!("revoked key {} ({})", key.id, key.name);
            Ok(())
        }
    }
}
