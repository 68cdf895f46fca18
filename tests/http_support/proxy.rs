//! A fault-injecting HTTP proxy for tests.
