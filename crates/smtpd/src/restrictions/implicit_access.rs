//! A bare `type:table` in a restriction list: Postfix's short-hand for the access check
//! of the list's own stage (check_client_access in smtpd_client_restrictions,
//! check_recipient_access in the relay and recipient lists, ...). A restriction class
//! takes the stage of the list that names it, so the kind is chosen when evaluated.
//! In the DATA and end-of-data lists there is no such check: Postfix logs a warning
//! and answers 451 4.3.5, and so do we.

use super::eval::Stage;
use super::AccessKind;

/// The check_*_access a bare table means at `stage`, if any.
pub fn kind_for(stage: Stage) -> Option<AccessKind> {
    match stage {
        Stage::Client => Some(AccessKind::Client),
        Stage::Helo => Some(AccessKind::Helo),
        Stage::Sender => Some(AccessKind::Sender),
        Stage::Relay | Stage::Recipient => Some(AccessKind::Recipient),
        Stage::Etrn => Some(AccessKind::Etrn),
        Stage::Data | Stage::EndOfData => None,
    }
}

/// Postfix's warning for a bare table where no access check applies.
pub fn no_default_warning(stage: Stage, table: &str) -> String {
    format!(
        "specify one of (check_client_access, check_reverse_client_access, \
         check_helo_access, check_sender_access, check_recipient_access, \
         check_etrn_access) before {} restriction \"{table}\"",
        stage.class()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_has_its_own_access_check() {
        assert_eq!(kind_for(Stage::Client), Some(AccessKind::Client));
        assert_eq!(kind_for(Stage::Helo), Some(AccessKind::Helo));
        assert_eq!(kind_for(Stage::Sender), Some(AccessKind::Sender));
        assert_eq!(kind_for(Stage::Relay), Some(AccessKind::Recipient));
        assert_eq!(kind_for(Stage::Recipient), Some(AccessKind::Recipient));
        assert_eq!(kind_for(Stage::Data), None);
        assert_eq!(kind_for(Stage::EndOfData), None);
    }
}
