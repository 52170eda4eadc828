//! Command-line flags of the benchmark programs: `--name value` pairs, nothing more, so the
//! programs stay small and the driver script (`bench/run.sh`) reads like their usage.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{Context, bail};

/// The `--name value` flags given to a program.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parse `std::env::args()`; `allowed` lists the flag names the program knows, so a typo
    /// is an error naming the flag rather than a silently ignored setting.
    pub fn from_env(allowed: &[&str]) -> anyhow::Result<Flags> {
        Flags::parse(std::env::args().skip(1), allowed)
    }

    pub fn parse(
        args: impl IntoIterator<Item = String>,
        allowed: &[&str],
    ) -> anyhow::Result<Flags> {
        let mut values = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument `{arg}`: flags are `--name value`");
            };
            if !allowed.contains(&name) {
                bail!(
                    "unknown flag `--{name}`; known flags: {}",
                    allowed
                        .iter()
                        .map(|a| format!("--{a}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let Some(value) = args.next() else {
                bail!("flag `--{name}` needs a value");
            };
            values.insert(name.to_owned(), value);
        }
        Ok(Flags { values })
    }

    /// A flag that must be given.
    pub fn required(&self, name: &str) -> anyhow::Result<String> {
        self.values
            .get(name)
            .cloned()
            .with_context(|| format!("missing flag `--{name}`"))
    }

    /// A flag that must be given, parsed.
    pub fn required_parsed<T: FromStr>(&self, name: &str) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.required(name)?;
        raw.parse()
            .map_err(|e| anyhow::anyhow!("invalid `--{name} {raw}`: {e}"))
    }

    /// An optional flag, parsed, or `default`.
    pub fn parsed_or<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| anyhow::anyhow!("invalid `--{name} {raw}`: {e}")),
        }
    }

    /// An optional flag as text.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Flags> {
        Flags::parse(args.iter().map(|s| (*s).to_owned()), &["runs", "url"])
    }

    #[test]
    fn known_flags_parse_and_unknown_ones_are_named() {
        let flags = parse(&["--runs", "7", "--url", "http://127.0.0.1:1"]).unwrap();
        assert_eq!(flags.required_parsed::<u32>("runs").unwrap(), 7);
        assert_eq!(flags.parsed_or::<u32>("missing", 3).unwrap(), 3);
        assert_eq!(flags.optional("url").as_deref(), Some("http://127.0.0.1:1"));

        let err = parse(&["--rusn", "7"]).unwrap_err().to_string();
        assert!(err.contains("--rusn"), "{err}");
        let err = parse(&["--runs"]).unwrap_err().to_string();
        assert!(err.contains("needs a value"), "{err}");
        let err = parse(&["runs"]).unwrap_err().to_string();
        assert!(err.contains("unexpected argument"), "{err}");
        let err = parse(&["--runs", "x"])
            .unwrap()
            .required_parsed::<u32>("runs")
            .unwrap_err();
        assert!(err.to_string().contains("--runs x"), "{err}");
        let err = parse(&[]).unwrap().required("url").unwrap_err();
        assert!(err.to_string().contains("--url"), "{err}");
    }
}
