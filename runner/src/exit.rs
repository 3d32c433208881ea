//! hookrun's documented exit codes, and which errors map to which.

use hookrun_hooks::FailureClass;

use crate::config::ConfigError;
use crate::lock::LockHeld;

/// What the process tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything succeeded.
    Success = 0,
    /// A hook failed (or the command failed); services were restored.
    Failed = 1,
    /// Bad usage or configuration; nothing was touched.
    Usage = 2,
    /// Services could not be restored: a person is needed.
    ServicesDown = 3,
    /// Another run holds the storage dir's lock.
    Locked = 4,
    /// `upgrade`: the upgrade failed and was rolled back; the project is healthy on the old version.
    RolledBack = 5,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code for a run whose first failure has this class.
    pub fn for_class(class: FailureClass) -> Self {
        match class {
            FailureClass::Failed => Exit::Failed,
            FailureClass::Config => Exit::Usage,
            FailureClass::ServicesDown => Exit::ServicesDown,
        }
    }

    /// The exit code for an error that ended a command.
    pub fn for_error(error: &anyhow::Error) -> Self {
        if error.downcast_ref::<ConfigError>().is_some() || error.downcast_ref::<UsageError>().is_some() {
            Exit::Usage
        } else if error.downcast_ref::<LockHeld>().is_some() {
            Exit::Locked
        } else if error.downcast_ref::<ServicesDown>().is_some() {
            Exit::ServicesDown
        } else {
            Exit::Failed
        }
    }
}

/// A command given something it cannot use (an unknown backup id, a bad flag value).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Services are down and could not be brought back (a run that died left them stopped): a person is needed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServicesDown(pub String);
