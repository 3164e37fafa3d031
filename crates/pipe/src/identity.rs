//! The identity the command runs as: `user=name[:group]`, refused (the service does not
//! start) when it would be root, group 0, or the mail system owner, as Postfix's pipe
//! refuses them: a command run with those rights could rewrite the queue or the system.

use crate::args::{PipeArgs, PipeArgsError};
use nix::unistd::{Gid, Group, Uid, User};
use rostfix_local::privileges::Identity;

/// Looks `user=` (and its group) up in the system databases and checks it.
/// `mail_owner` is the queue owner's identity when known.
pub fn command_identity(
    args: &PipeArgs,
    mail_owner: Option<Identity>,
) -> Result<Identity, PipeArgsError> {
    let user = User::from_name(&args.user)
        .ok()
        .flatten()
        .ok_or_else(|| PipeArgsError::UnknownUser(args.user.clone()))?;
    let gid = match &args.group {
        Some(name) => {
            Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| PipeArgsError::UnknownGroup(name.clone()))?
                .gid
        }
        None => user.gid,
    };
    check(
        Identity { uid: user.uid, gid },
        mail_owner,
        &user_spec(args),
    )
}

fn user_spec(args: &PipeArgs) -> String {
    match &args.group {
        Some(g) => format!("{}:{g}", args.user),
        None => args.user.clone(),
    }
}

/// The refusals, on numeric ids (unit-testable without a passwd entry).
pub fn check(
    id: Identity,
    mail_owner: Option<Identity>,
    spec: &str,
) -> Result<Identity, PipeArgsError> {
    if id.uid == Uid::from_raw(0) {
        return Err(PipeArgsError::RootPrivileges(spec.to_string()));
    }
    if id.gid == Gid::from_raw(0) {
        return Err(PipeArgsError::RootGroup(spec.to_string()));
    }
    if let Some(owner) = mail_owner {
        if id.uid == owner.uid || id.gid == owner.gid {
            return Err(PipeArgsError::MailOwner(spec.to_string()));
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(uid: u32, gid: u32) -> Identity {
        Identity {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
        }
    }

    #[test]
    fn root_group_zero_and_mail_owner_are_refused() {
        let owner = Some(id(100, 101));
        assert_eq!(
            check(id(0, 5), owner, "root").unwrap_err(),
            PipeArgsError::RootPrivileges("root".into())
        );
        assert_eq!(
            check(id(5, 0), owner, "x:root").unwrap_err(),
            PipeArgsError::RootGroup("x:root".into())
        );
        assert!(matches!(
            check(id(100, 7), owner, "postfix"),
            Err(PipeArgsError::MailOwner(_))
        ));
        assert!(matches!(
            check(id(7, 101), owner, "x:postfix"),
            Err(PipeArgsError::MailOwner(_))
        ));
        assert_eq!(check(id(7, 8), owner, "vmail").unwrap(), id(7, 8));
    }

    #[test]
    fn root_by_name_is_refused() {
        let words: Vec<String> = ["user=root", "argv=/bin/true"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let args = PipeArgs::parse(&words).unwrap();
        assert_eq!(
            command_identity(&args, None).unwrap_err(),
            PipeArgsError::RootPrivileges("root".into())
        );
    }
}
