//! The passes the engine executes are the plan's (`plan::direction`), built once by the plan
//! compiler; this module only names them for the engine's files.

pub use crate::plan::direction::{
    ConflictWinner, DeletePolicy, Direction, MissingPolicy, OwnChanges, Split, Step, StepSource,
};
