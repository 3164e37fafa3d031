//! What postscreen does when a client fails a test (postscreen_*_action): `ignore`
//! (log it, carry on, test again next time), `enforce` (keep the client in
//! postscreen's own SMTP engine and refuse its mail with a 5xx), `drop` (reply 521 and
//! hang up).

/// One test's failure action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ignore,
    Enforce,
    Drop,
}

/// A postscreen_*_action value that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: unknown action \"{value}\" (want ignore, enforce or drop)")]
pub struct ActionError {
    pub param: &'static str,
    pub value: String,
}

impl Action {
    /// Parses the value of `param`, case-insensitively as Postfix does.
    pub fn parse(param: &'static str, value: &str) -> Result<Action, ActionError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "ignore" => Ok(Action::Ignore),
            "enforce" => Ok(Action::Enforce),
            "drop" => Ok(Action::Drop),
            _ => Err(ActionError {
                param,
                value: value.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_actions_and_nothing_else() {
        assert_eq!(Action::parse("p", "Enforce"), Ok(Action::Enforce));
        assert_eq!(Action::parse("p", "drop"), Ok(Action::Drop));
        assert_eq!(Action::parse("p", " ignore "), Ok(Action::Ignore));
        let e = Action::parse("postscreen_greet_action", "reject").unwrap_err();
        assert_eq!(
            e.to_string(),
            "postscreen_greet_action: unknown action \"reject\" (want ignore, enforce or drop)"
        );
    }
}
