//! A loopback server for Dataverse behaviours CAP lacks.
