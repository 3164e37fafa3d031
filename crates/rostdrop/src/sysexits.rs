//! The sysexits(3) codes that mail programs return (the libc crate lacks them on Linux);
//! EX_USAGE is rostfix_config::getopt's, shared by every command.

pub const EX_DATAERR: i32 = 65;
pub const EX_IOERR: i32 = 74;
pub const EX_CANTCREAT: i32 = 73;
pub const EX_TEMPFAIL: i32 = 75;
pub const EX_NOPERM: i32 = 77;
pub const EX_CONFIG: i32 = 78;
