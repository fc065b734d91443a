//! Tests of kith-client against a node that misbehaves on purpose ([`hostile_node`]): the
//! client must refuse forged, altered, far-future and unrequested events, and wrong
//! answers, from a compromised node. Also the join codes newcomers paste ([`join_code`]).
//!
//! Everything an honest node does is tested against the real node (`kithd`) in
//! `tests/tests/integration/cli.rs`; kith-client cannot depend on kith-server, so those
//! tests live there.

mod cli;
mod groups;
mod hostile_node;
mod join_code;
mod refusals;
