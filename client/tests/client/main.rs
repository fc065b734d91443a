//! Tests of kith-client that need no real node: the library and the `kith` tool against a
//! small fake node (`fake_node`) on 127.0.0.1.

mod cli;
mod connection;
mod fake_node;
