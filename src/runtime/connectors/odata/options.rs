//! The settings both HTTP connectors have; each connector adds its own in `only`.

use super::super::http::HttpOptions;

/// An endpoint's settings: what every OData endpoint has, and `only`, what one kind has.
#[derive(Debug, Clone)]
pub struct EndpointOptions<X> {
    pub http: HttpOptions,
    /// Operations per `$batch` ([`Flavor::BATCH_SIZE`] unless set).
    pub batch_size: usize,
    /// `$batch` for writes of more than one record.
    pub use_batch: bool,
    /// Sent with every request (tests: the CAP imitation's `x-coupler-user`).
    pub extra_headers: Vec<(String, String)>,
    pub only: X,
}

/// What a kind of endpoint starts from.
pub trait Flavor: Default {
    /// The most operations the service takes in one `$batch`.
    const BATCH_SIZE: usize;
    /// The limits of its requests.
    const HTTP: fn() -> HttpOptions;
}

impl<X: Flavor> Default for EndpointOptions<X> {
    fn default() -> Self {
        EndpointOptions {
            http: (X::HTTP)(),
            batch_size: X::BATCH_SIZE,
            use_batch: true,
            extra_headers: Vec::new(),
            only: X::default(),
        }
    }
}
