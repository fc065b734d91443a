//! Kith's integration tests: real nodes on loopback, real WebSockets, real sled files.
//! Shared helpers live in the `kith_tests` library (tests/src), never here.

mod bad_input;
mod catchup;
mod cli;
mod cluster;

mod durability;
mod fed_hostile;
mod fed_liveness;
mod fed_overflow;
mod fed_partitions;
mod fed_scenarios;
mod fed_tls;
mod federation;
mod groups;
mod homes_cli;
mod http;
mod limits;
mod login;
mod routing;
mod subscribe;
