//! `promptstore prices …`: list the price table, set a model's price, remove the project's
//! entries for a model.

use promptstore_client::types::SetModelPrice;
use time::OffsetDateTime;

use super::connect;
use super::stats::parse_when;
use crate::cli::PricesCommand;
use crate::failure::Failure;
use crate::output::{Table, print_json, when};

fn usd(v: f64) -> String {
    format!("{v:.4}")
}

pub async fn run(command: PricesCommand) -> Result<(), Failure> {
    match command {
        PricesCommand::List { client, model } => {
            let api = connect(&client)?;
            let mut prices = api.list_prices().await?;
            if let Some(part) = &model {
                let part = part.to_lowercase();
                prices.retain(|p| p.model.to_lowercase().contains(&part));
            }
            if client.json {
                return Ok(print_json(&prices)?);
            }
            let mut table = Table::new(&[
                "model",
                "input/mtok",
                "output/mtok",
                "cached/mtok",
                "from",
                "source",
            ]);
            for p in &prices {
                table.row(vec![
                    p.model.clone(),
                    usd(p.input_per_mtok),
                    usd(p.output_per_mtok),
                    p.cached_input_per_mtok
                        .map(usd)
                        .unwrap_or_else(|| "-".into()),
                    when(p.effective_from),
                    p.source.clone(),
                ]);
            }
            table.print();
            Ok(())
        }
        PricesCommand::Set {
            client,
            model,
            input,
            output,
            cached_input,
            from,
        } => {
            let effective_from = from
                .as_deref()
                .map(|f| parse_when("--from", f, OffsetDateTime::now_utc()))
                .transpose()?;
            let api = connect(&client)?;
            let price = api
                .set_price(
                    &model,
                    &SetModelPrice {
                        input_per_mtok: input,
                        output_per_mtok: output,
                        cached_input_per_mtok: cached_input,
                        effective_from,
                    },
                )
                .await?;
            if client.json {
                return Ok(print_json(&price)?);
            }
            outln!(
                "price of {} from {}: input {} / output {} USD per million tokens",
                price.model,
                when(price.effective_from),
                usd(price.input_per_mtok),
                usd(price.output_per_mtok)
            );
            Ok(())
        }
        PricesCommand::Delete { client, model } => {
            let api = connect(&client)?;
            api.delete_price(&model).await?;
            outln!("removed the project's prices for {model}");
            Ok(())
        }
    }
}
