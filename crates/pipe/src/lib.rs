//! Postfix's pipe(8) delivery agent as a library (the `pipe` binary is a thin server
//! around it): master.cf arguments ([`args`], [`flags`]), argv= macro expansion
//! ([`macros`]), the command's input ([`copy`]), the identity it runs as
//! ([`identity`]) and the request handling ([`agent`]). Commands are run, and their
//! exit status mapped to a delivery status, by the local agent's command runner
//! (rostfix_local::command, rostfix_local::sysexits).

#![deny(unsafe_code)]

pub mod agent;
pub mod args;
pub mod command_env;
pub mod copy;
pub mod flags;
pub mod identity;
pub mod macros;
