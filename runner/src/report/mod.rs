//! Reporters: how runs and catalog contents are shown, for people (`human`) and for pipelines (`--json`), and the
//! one place output is written (`out`).

pub mod human;
pub mod out;
pub mod render;
mod run_report;

pub use run_report::RunReport;

/// Prints one human line on stdout through [`out::line`], with `format!` arguments.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::report::out::line(&format!($($arg)*))
    };
}
