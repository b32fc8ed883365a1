//! What the commands print on stdout. A reader that goes away early (`sluice
//! ctl cluster list | head`) ends the printing quietly, as for any Unix tool,
//! instead of a panic on the broken pipe.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout and flushes it. A closed stdout is not an error;
/// any other failure to write is.
pub(crate) fn print(text: &str) -> std::io::Result<()> {
    write_quietly(&mut std::io::stdout().lock(), text)
}

/// [`print`] with a line end.
pub(crate) fn print_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    write_quietly(&mut out, text)?;
    write_quietly(&mut out, "\n")
}

/// Writes and flushes `text` to `out`, taking a broken pipe for the end.
fn write_quietly(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() == ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails every write with `ErrorKind`.
    struct Failing(ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_reader_ends_the_output_quietly() {
        assert!(write_quietly(&mut Failing(ErrorKind::BrokenPipe), "cluster c1\n").is_ok());
    }

    #[test]
    fn other_write_failures_are_errors() {
        let error =
            write_quietly(&mut Failing(ErrorKind::StorageFull), "cluster c1\n").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StorageFull);
    }

    #[test]
    fn the_text_is_written_whole() {
        let mut out = Vec::new();
        write_quietly(&mut out, "a\nb\n").unwrap();
        assert_eq!(out, b"a\nb\n");
    }
}
