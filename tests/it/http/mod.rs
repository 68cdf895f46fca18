//! The HTTP connectors against real servers on loopback (`support::http`): the SAP CAP
//! imitations, the fault-injecting proxy and the Dataverse mock.

mod bc_fields;
mod cap_smoke;
mod companies;
mod connectors;
mod currencies;
mod e2e;
mod e2e_orders;
mod fault_matrix;
mod hostile;
mod requests;
mod sales_orders;
mod support_selftest;
mod throttling;
mod write_flags;
mod writes;
