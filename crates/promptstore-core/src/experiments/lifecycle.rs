//! The experiment lifecycle `draft → running → stopped | concluded` (and `stopped →
//! concluded`): which change is allowed from which status, and the content checks of a
//! change (arms of a running experiment, the winner of a conclusion).

use promptstore_types::{Conclusion, EndExperiment, ErrorCode, ExperimentStatus};

use super::definition::{MAX_REASON_LEN, check_display_text, invalid, validate_running_arms};
use super::model::{ExperimentChange, ExperimentRecord};
use crate::error::{Error, Result};

/// The name of a change, for messages.
pub fn change_name(change: &ExperimentChange) -> &'static str {
    match change {
        ExperimentChange::ReplaceDraft(_) => "edit the definition",
        ExperimentChange::Start => "start",
        ExperimentChange::SetArms(_) => "change the arms",
        ExperimentChange::Stop => "stop",
        ExperimentChange::Conclude(_) => "conclude",
    }
}

/// What each status allows, for messages.
fn allowed_from(status: ExperimentStatus) -> &'static str {
    match status {
        ExperimentStatus::Draft => "a draft can be edited, started or deleted",
        ExperimentStatus::Running => {
            "a running experiment can change its arms (with a reason), be stopped or be concluded"
        }
        ExperimentStatus::Stopped => "a stopped experiment can only be concluded",
        ExperimentStatus::Concluded => "a concluded experiment cannot change any more",
    }
}

fn refused(status: ExperimentStatus, what: &str) -> Error {
    Error::rejected(
        ErrorCode::InvalidTransition,
        format!(
            "cannot {what} an experiment that is {}: {}",
            status.as_str(),
            allowed_from(status)
        ),
    )
    .with_details(serde_json::json!({ "status": status.as_str() }))
}

/// Whether `change` is allowed from `status` (`invalid_transition` otherwise).
pub fn check_transition(status: ExperimentStatus, change: &ExperimentChange) -> Result<()> {
    use ExperimentChange as C;
    use ExperimentStatus as S;
    let allowed = matches!(
        (status, change),
        (S::Draft, C::ReplaceDraft(_) | C::Start)
            | (S::Running, C::SetArms(_) | C::Stop | C::Conclude(_))
            | (S::Stopped, C::Conclude(_))
    );
    if allowed {
        Ok(())
    } else {
        Err(refused(status, change_name(change)))
    }
}

/// Only drafts can be deleted (a started experiment is part of the record).
pub fn check_delete(status: ExperimentStatus) -> Result<()> {
    if status == ExperimentStatus::Draft {
        Ok(())
    } else {
        Err(refused(status, "delete"))
    }
}

/// The transition rule plus the content of the change: the arms of a running experiment
/// (valid, control active, an active treatment), a conclusion's winner (one of the arms).
/// `latest_version` is the prompt's newest version number.
pub fn check_change(
    experiment: &ExperimentRecord,
    change: &ExperimentChange,
    latest_version: u32,
) -> Result<()> {
    check_transition(experiment.status, change)?;
    match change {
        ExperimentChange::SetArms(arms) => validate_running_arms(arms, latest_version),
        ExperimentChange::Conclude(c) => check_winner(experiment, c.winner.as_deref()),
        ExperimentChange::ReplaceDraft(_) | ExperimentChange::Start | ExperimentChange::Stop => {
            Ok(())
        }
    }
}

fn check_winner(experiment: &ExperimentRecord, winner: Option<&str>) -> Result<()> {
    match winner {
        Some(w) if !experiment.arms.iter().any(|a| a.name == w) => Err(invalid(
            "winner",
            format_args!(
                "'{}' is not an arm of this experiment; its arms are {}",
                super::metric::shorten(w),
                arm_names(experiment)
            ),
        )),
        _ => Ok(()),
    }
}

fn arm_names(experiment: &ExperimentRecord) -> String {
    experiment
        .arms
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A conclusion by hand (`POST …/conclude`): the winner must be an arm, promotion needs a
/// winner. `promoted` is what was asked; the caller clears it when the label move is not
/// done. The reason defaults to "concluded by hand".
pub fn manual_conclusion(experiment: &ExperimentRecord, end: &EndExperiment) -> Result<Conclusion> {
    check_winner(experiment, end.winner.as_deref())?;
    if end.promote && end.winner.is_none() {
        return Err(invalid(
            "promote",
            "promotion moves the label to the winner's version: name the winner",
        ));
    }
    let reason = end.reason.trim();
    check_display_text("reason", reason, MAX_REASON_LEN, true)?;
    Ok(Conclusion {
        winner: end.winner.clone(),
        reason: if reason.is_empty() {
            "concluded by hand".into()
        } else {
            reason.to_owned()
        },
        promoted: end.promote,
        decided_by: "manual".into(),
    })
}

#[cfg(test)]
mod tests {
    use promptstore_types::Arm;

    use super::*;
    use crate::experiments::testutil::{experiment, new_experiment};

    #[test]
    fn the_transition_table() {
        use ExperimentStatus::*;
        let changes = [
            ExperimentChange::ReplaceDraft(new_experiment()),
            ExperimentChange::Start,
            ExperimentChange::SetArms(experiment().arms),
            ExperimentChange::Stop,
            ExperimentChange::Conclude(Conclusion {
                winner: None,
                reason: "r".into(),
                promoted: false,
                decided_by: "manual".into(),
            }),
        ];
        // Rows: status; columns: the changes above, in order; then delete.
        let table = [
            (Draft, [true, true, false, false, false], true),
            (Running, [false, false, true, true, true], false),
            (Stopped, [false, false, false, false, true], false),
            (Concluded, [false, false, false, false, false], false),
        ];
        for (status, allowed, delete) in table {
            for (change, ok) in changes.iter().zip(allowed) {
                let got = check_transition(status, change);
                assert_eq!(got.is_ok(), ok, "{status:?} {change:?}");
                if let Err(e) = got {
                    assert_eq!(e.code(), ErrorCode::InvalidTransition);
                    assert!(e.to_string().contains(status.as_str()), "{e}");
                }
            }
            assert_eq!(check_delete(status).is_ok(), delete, "{status:?} delete");
        }
    }

    #[test]
    fn change_content_is_checked() {
        let mut e = experiment();
        e.status = ExperimentStatus::Running;
        let mut arms = e.arms.clone();
        arms[1].stopped = true;
        let err = check_change(&e, &ExperimentChange::SetArms(arms), 3).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        let bad_version = vec![
            e.arms[0].clone(),
            Arm {
                version: 9,
                ..e.arms[1].clone()
            },
        ];
        assert!(check_change(&e, &ExperimentChange::SetArms(bad_version), 3).is_err());
        let conclusion = |winner: &str| {
            ExperimentChange::Conclude(Conclusion {
                winner: Some(winner.into()),
                reason: "r".into(),
                promoted: false,
                decided_by: "manual".into(),
            })
        };
        assert!(check_change(&e, &conclusion("treatment"), 3).is_ok());
        let err = check_change(&e, &conclusion("nobody"), 3).unwrap_err();
        assert_eq!(err.to_body().details["field"], "winner");
    }

    #[test]
    fn manual_conclusions() {
        let e = experiment();
        let c = manual_conclusion(
            &e,
            &EndExperiment {
                winner: Some("treatment".into()),
                promote: true,
                reason: String::new(),
            },
        )
        .unwrap();
        assert_eq!(c.reason, "concluded by hand");
        assert!(c.promoted);
        assert_eq!(c.decided_by, "manual");
        let err = manual_conclusion(
            &e,
            &EndExperiment {
                winner: None,
                promote: true,
                reason: String::new(),
            },
        )
        .unwrap_err();
        assert_eq!(err.to_body().details["field"], "promote");
        assert!(
            manual_conclusion(
                &e,
                &EndExperiment {
                    winner: Some("x".into()),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
