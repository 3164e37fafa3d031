//! Postfix's spawn(8) as a library (the `spawn` binary is a thin server around it):
//! a master.cf service such as
//! `policyd-spf unix - n n - 0 spawn user=policyd-spf argv=/usr/bin/policyd-spf`
//! runs its command once per client connection, with the connection as the command's
//! standard input, output and error, as the unprivileged `user=`. The master.cf
//! arguments are in [`args`], running the command in [`run`].

#![deny(unsafe_code)]

pub mod args;
pub mod run;
