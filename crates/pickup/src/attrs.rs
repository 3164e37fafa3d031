//! Which envelope attributes and DSN values a local submitter may set in a maildrop
//! file. The file belongs to the submitting user (rostdrop runs with their uid and the
//! maildrop directory's group), so everything in it is that user's claim. pickup keeps
//! only the attributes rostdrop itself writes from sendmail's options, with values of
//! the shape rostdrop accepts; it sets the trusted ones (`uid`, `rewrite_context`)
//! itself. Anything else (`alias_expanded`, `client_address`, `client_name`,
//! `sasl_username`, `protocol`, ...) would let a local user skip virtual alias
//! expansion or pose as a network or authenticated client, and is ignored with a
//! warning, as Postfix's pickup and postdrop ignore attributes outside their list.
//!
//! One writer is trusted a little further: the bus intake (crates/bus), which runs as
//! mail_owner, so its files are owned by pickup's own uid, which no local user can
//! forge (rostdrop runs with the submitter's uid). From those files pickup also copies
//! `campaign_id` and `bus_id` (see [`check_attribute_from`]).

/// Why a maildrop attribute was not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttrRefusal {
    /// Only pickup itself may set this one (`uid`, `rewrite_context`).
    #[error("set by pickup itself")]
    Trusted,
    /// Not something a local submission carries.
    #[error("not allowed in local submissions")]
    NotAllowed,
    /// A permitted name with a value rostdrop would never write.
    #[error("invalid value")]
    BadValue,
}

/// Longest DSN envelope id, as rostdrop and smtpd accept it (RFC 3461: 100).
const MAX_ENVID: usize = 100;

/// Characters a VERP delimiter may be at all (address syntax aside); the configured
/// verp_delimiter_filter narrows them down in qmgr.
const VERP_PUNCTUATION: &str = "!#$%&'*+-/=?^_`{|}~.";

/// Accepts `name=value` when a local submitter may set it.
pub fn check_attribute(name: &str, value: &str) -> Result<(), AttrRefusal> {
    let valid = match name {
        "uid" | "rewrite_context" => return Err(AttrRefusal::Trusted),
        "body_type" => matches!(value, "7BIT" | "8BITMIME"),
        "dsn_ret" => matches!(value, "FULL" | "HDRS"),
        // sendmail -XV: two delimiter characters; qmgr holds them to
        // verp_delimiter_filter when it delivers.
        rostfix_queue::VERP_ATTR => {
            rostfix_queue::verify_delimiters(value, VERP_PUNCTUATION).is_ok()
        }
        "dsn_envid" => {
            !value.is_empty()
                && value.len() <= MAX_ENVID
                && value.bytes().all(|b| (0x21..0x7f).contains(&b))
        }
        _ => return Err(AttrRefusal::NotAllowed),
    };
    if valid {
        Ok(())
    } else {
        Err(AttrRefusal::BadValue)
    }
}

/// Longest `campaign_id` or `bus_id` the bus intake writes.
const MAX_BUS_TOKEN: usize = 128;

/// Attributes only mail_owner's own files (the bus intake's) may carry.
const MAIL_OWNER_ATTRS: [&str; 2] = ["campaign_id", "bus_id"];

/// As [`check_attribute`], for a file whose owner is mail_owner (`from_mail_owner`):
/// such a file may also carry `campaign_id` and `bus_id` (printable ASCII without
/// space, 1 to 128 characters). From anyone else they are [`AttrRefusal::NotAllowed`].
pub fn check_attribute_from(
    name: &str,
    value: &str,
    from_mail_owner: bool,
) -> Result<(), AttrRefusal> {
    if !MAIL_OWNER_ATTRS.contains(&name) {
        return check_attribute(name, value);
    }
    if !from_mail_owner {
        return Err(AttrRefusal::NotAllowed);
    }
    if !value.is_empty()
        && value.len() <= MAX_BUS_TOKEN
        && value.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        Ok(())
    } else {
        Err(AttrRefusal::BadValue)
    }
}

/// True for a DSN NOTIFY value rostdrop writes: "" (none), `NEVER`, or a non-empty
/// subset of SUCCESS, FAILURE, DELAY in that order.
pub fn valid_notify(value: &str) -> bool {
    if value.is_empty() || value == "NEVER" {
        return true;
    }
    let order = ["SUCCESS", "FAILURE", "DELAY"];
    let mut next = 0;
    for word in value.split(',') {
        match order[next..].iter().position(|w| *w == word) {
            Some(i) => next += i + 1,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_local_user_may_set() {
        assert_eq!(check_attribute("body_type", "8BITMIME"), Ok(()));
        assert_eq!(check_attribute("body_type", "7BIT"), Ok(()));
        assert_eq!(check_attribute("dsn_ret", "HDRS"), Ok(()));
        assert_eq!(check_attribute("dsn_ret", "FULL"), Ok(()));
        assert_eq!(check_attribute("dsn_envid", "abc.123+x"), Ok(()));
        assert_eq!(check_attribute("verp_delimiters", "+="), Ok(()));
        assert_eq!(check_attribute("verp_delimiters", "-="), Ok(()));
    }

    #[test]
    fn what_only_pickup_or_the_network_sets() {
        for name in ["uid", "rewrite_context"] {
            assert_eq!(check_attribute(name, "0"), Err(AttrRefusal::Trusted));
        }
        for name in [
            "alias_expanded",
            "client_address",
            "client_name",
            "helo",
            "sasl_username",
            "protocol",
            "smtputf8",
            "junk",
        ] {
            assert_eq!(
                check_attribute(name, "1"),
                Err(AttrRefusal::NotAllowed),
                "{name}"
            );
        }
    }

    #[test]
    fn values_rostdrop_never_writes() {
        assert_eq!(
            check_attribute("body_type", "BINARYMIME"),
            Err(AttrRefusal::BadValue)
        );
        assert_eq!(
            check_attribute("dsn_ret", "full"),
            Err(AttrRefusal::BadValue)
        );
        assert_eq!(check_attribute("dsn_envid", ""), Err(AttrRefusal::BadValue));
        assert_eq!(
            check_attribute("dsn_envid", "a b"),
            Err(AttrRefusal::BadValue)
        );
        assert_eq!(
            check_attribute("dsn_envid", &"e".repeat(MAX_ENVID + 1)),
            Err(AttrRefusal::BadValue)
        );
        assert_eq!(check_attribute("dsn_envid", &"e".repeat(MAX_ENVID)), Ok(()));
        for bad in ["+", "+=+", "a=", "+@", "+ "] {
            assert_eq!(
                check_attribute("verp_delimiters", bad),
                Err(AttrRefusal::BadValue),
                "{bad}"
            );
        }
    }

    #[test]
    fn campaign_and_bus_ids_only_from_mail_owner() {
        for name in ["campaign_id", "bus_id"] {
            assert_eq!(check_attribute_from(name, "c-1", true), Ok(()));
            assert_eq!(
                check_attribute_from(name, "c-1", false),
                Err(AttrRefusal::NotAllowed),
                "{name} from a local user"
            );
            assert_eq!(
                check_attribute_from(name, "a b", true),
                Err(AttrRefusal::BadValue)
            );
            assert_eq!(
                check_attribute_from(name, "", true),
                Err(AttrRefusal::BadValue)
            );
            assert_eq!(
                check_attribute_from(name, &"x".repeat(MAX_BUS_TOKEN + 1), true),
                Err(AttrRefusal::BadValue)
            );
        }
        // mail_owner's files get no more than that.
        assert_eq!(
            check_attribute_from("uid", "0", true),
            Err(AttrRefusal::Trusted)
        );
        assert_eq!(
            check_attribute_from("client_address", "1.2.3.4", true),
            Err(AttrRefusal::NotAllowed)
        );
        assert_eq!(check_attribute_from("dsn_ret", "HDRS", false), Ok(()));
    }

    #[test]
    fn notify_values() {
        for ok in [
            "",
            "NEVER",
            "SUCCESS",
            "DELAY",
            "SUCCESS,DELAY",
            "SUCCESS,FAILURE,DELAY",
        ] {
            assert!(valid_notify(ok), "{ok}");
        }
        for bad in [
            "never",
            "DELAY,SUCCESS",
            "SUCCESS,SUCCESS",
            "NEVER,DELAY",
            ",",
            "X",
        ] {
            assert!(!valid_notify(bad), "{bad}");
        }
    }
}
