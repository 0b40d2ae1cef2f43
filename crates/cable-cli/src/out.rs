//! Standard output that never panics: `println!` panics when the reader has gone
//! (`cable demo | head -1`) or the disk is full (`> /dev/full`). Every line the commands
//! print goes through [`outln!`], which returns the write error as [`CliError::Stdout`];
//! `main` then exits quietly for a closed pipe and with one line for anything else.

use std::fmt;
use std::io::Write;

use crate::error::CliError;

/// `println!` that returns `Result<(), CliError>`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

pub(crate) fn write_line(args: fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(CliError::Stdout)
}

/// Whether `err` is only the reader of standard output having gone away.
pub(crate) fn is_closed_pipe(err: &CliError) -> bool {
    matches!(err, CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
}
