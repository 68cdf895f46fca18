//! HTTP connectors: Dataverse Web API and Business Central API v2.0.
