//! Kith client library.
