//! The prompt lifecycle: which status changes are allowed.
//!
//! `draft → active → deprecated → archived`, with the ways back a team needs: a deprecated
//! prompt can be reactivated, an archived one restored to active. Nothing returns to draft
//! (a prompt that has been served is not a draft any more), and a "change" to the same
//! status is refused so that a caller learns its request did nothing.

use promptstore_types::{ErrorCode, PromptStatus};
use serde_json::json;

use crate::error::{Error, Result};

/// The statuses reachable from `from`.
pub fn allowed_transitions(from: PromptStatus) -> &'static [PromptStatus] {
    use PromptStatus::*;
    match from {
        Draft => &[Active, Archived],
        Active => &[Deprecated, Archived],
        Deprecated => &[Active, Archived],
        Archived => &[Active],
    }
}

/// Ok when `from → to` is allowed; otherwise `invalid_transition` naming both states and
/// what `from` allows.
pub fn check_transition(from: PromptStatus, to: PromptStatus) -> Result<()> {
    let allowed = allowed_transitions(from);
    if allowed.contains(&to) {
        return Ok(());
    }
    let list: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    let why = if from == to {
        format!("the prompt is already {}", to.as_str())
    } else {
        "not allowed".to_owned()
    };
    Err(Error::rejected(
        ErrorCode::InvalidTransition,
        format!(
            "cannot change status from {} to {}: {why}; from {} a prompt can go to {}",
            from.as_str(),
            to.as_str(),
            from.as_str(),
            list.join(" or ")
        ),
    )
    .with_details(json!({ "from": from.as_str(), "to": to.as_str(), "allowed": list })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PromptStatus::*;

    #[test]
    fn transition_table() {
        // Rows: from; columns: to in the order Draft, Active, Deprecated, Archived.
        let all = [Draft, Active, Deprecated, Archived];
        let table: [(PromptStatus, [bool; 4]); 4] = [
            (Draft, [false, true, false, true]),
            (Active, [false, false, true, true]),
            (Deprecated, [false, true, false, true]),
            (Archived, [false, true, false, false]),
        ];
        for (from, row) in table {
            for (to, allowed) in all.iter().zip(row) {
                let got = check_transition(from, *to);
                assert_eq!(got.is_ok(), allowed, "{from:?} -> {to:?}");
                if let Err(e) = got {
                    assert_eq!(e.code(), ErrorCode::InvalidTransition);
                    let msg = e.to_string();
                    assert!(
                        msg.contains(from.as_str()) && msg.contains(to.as_str()),
                        "{msg}"
                    );
                    for a in allowed_transitions(from) {
                        assert!(msg.contains(a.as_str()), "{msg}");
                    }
                }
            }
        }
    }

    #[test]
    fn same_status_says_so() {
        let e = check_transition(Active, Active).unwrap_err();
        assert!(e.to_string().contains("already active"), "{e}");
        assert_eq!(
            e.to_body().details["allowed"],
            json!(["deprecated", "archived"])
        );
    }
}
