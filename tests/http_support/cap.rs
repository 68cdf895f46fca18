//! Starts the CAP services (see tests/servers/cap/). Owned by the CAP harness.
