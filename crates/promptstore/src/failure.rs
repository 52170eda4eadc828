//! How a command fails: a usage mistake (exit 2) or anything else (exit 1), rendered as one
//! line — the API's `message (code)` for server refusals, the cause chain for the rest.

use promptstore_client::ClientError;

/// The error every command returns.
#[derive(Debug)]
pub enum Failure {
    /// The command line was wrong in a way clap could not see (a bad `--var`, an unknown
    /// status name…).
    Usage(String),
    /// Everything else.
    Other(anyhow::Error),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Other(_) => 1,
        }
    }

    /// The message on one line: each cause is appended unless the message already says it
    /// (many errors repeat their source in their own text).
    pub fn one_line(&self) -> String {
        let mut line = match self {
            Failure::Usage(message) => message.clone(),
            Failure::Other(error) => {
                let mut line = String::new();
                for cause in error.chain() {
                    let text = cause.to_string();
                    if line.is_empty() {
                        line = text;
                    } else if !line.contains(&text) {
                        line.push_str(": ");
                        line.push_str(&text);
                    }
                }
                line
            }
        };
        if line.contains('\n') {
            line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        line
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Other(error)
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure::Other(error.into())
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Other(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptstore_client::{ErrorBody, ErrorCode};

    #[test]
    fn api_errors_read_message_then_code() {
        let failure = Failure::from(ClientError::Api {
            status: 404,
            body: ErrorBody::new(ErrorCode::NotFound, "prompt `x` does not exist"),
        });
        assert_eq!(failure.one_line(), "prompt `x` does not exist (not_found)");
        assert_eq!(failure.exit_code(), 1);
    }

    #[test]
    fn causes_are_chained_once_and_on_one_line() {
        let inner = anyhow::anyhow!("permission denied");
        let failure = Failure::from(inner.context("cannot read a.yaml\nsecond line"));
        assert_eq!(
            failure.one_line(),
            "cannot read a.yaml second line: permission denied"
        );
        assert_eq!(Failure::usage("bad --var").exit_code(), 2);
    }
}
