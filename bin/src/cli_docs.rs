//! `sluice completions SHELL` and `sluice man`: shell completion scripts and
//! manual pages generated from the command line's own definition, so they never
//! fall behind it. The Debian package ships both (see `os-build/build-deb`).

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use clap_complete::Shell;

/// The manual's sections that the command line cannot tell: files, signals,
/// environment and where to read more, appended to `sluice(1)` in roff.
const EXTRA_SECTIONS: &str = r#".SH FILES
.TP
\fI/etc/sluice/sluice.toml\fR
The configuration of the packaged service (\fBsluice.service\fR). Every key is
described in the README's "Configuration reference".
.TP
\fI/run/sluice/sluice.sock\fR
The command socket of the packaged service, for \fBsluice ctl \-s\fR.
.TP
\fI/var/log/sluice/access.log\fR
The access log of the packaged service, rotated by logrotate.
.SH SIGNALS
The main process handles:
.TP
\fBSIGHUP\fR
Reload the configuration file, as \fBsluice ctl reload\fR.
.TP
\fBSIGUSR1\fR
Reopen the access log (after logrotate moved it).
.TP
\fBSIGTERM\fR
Soft stop: stop accepting, let sessions finish for up to
\fIshutdown_grace_period\fR, exit 0.
.TP
\fBSIGINT\fR
Hard stop: close everything at once, exit 0.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Overrides \fIlog_level\fR (env_logger filters).
.TP
\fBNOTIFY_SOCKET\fR
Set by systemd for a unit of \fIType=notify\fR: the main process reports
READY=1 once every worker serves, RELOADING=1 and READY=1 around a reload,
STOPPING=1 on stop.
.SH SEE ALSO
\fBsluice\-ctl\fR(1), \fBsystemctl\fR(1), /usr/share/doc/sluice/README.md
"#;

/// Prints the completion script for `shell` of the command line `command`.
pub(crate) fn print_completions(command: clap::Command, shell: Shell) -> anyhow::Result<()> {
    let mut command = without_hidden_subcommands(&command);
    // Into memory first: `generate` panics on a write error, such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "sluice", &mut script);
    let mut out = io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("cannot write the completion script")
}

/// `command` without its hidden subcommands (`sluice worker`), which the bash
/// generator would otherwise offer.
fn without_hidden_subcommands(command: &clap::Command) -> clap::Command {
    let mut visible = clap::Command::new(command.get_name().to_owned())
        .args(command.get_arguments().cloned())
        .subcommands(
            command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .map(without_hidden_subcommands),
        );
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    if let Some(version) = command.get_version() {
        visible = visible.version(version.to_owned());
    }
    visible
}

/// Prints `sluice(1)`, or writes one page per subcommand into `dir`
/// (`sluice.1`, `sluice-ctl.1`, `sluice-ctl-reload.1`, …).
pub(crate) fn man(command: clap::Command, dir: Option<&Path>) -> anyhow::Result<()> {
    match dir {
        None => {
            let mut out = io::stdout().lock();
            render_main_page(command, &mut out)?;
            out.flush().context("cannot write the manual page")
        }
        Some(dir) => write_pages(command, dir)
            .with_context(|| format!("cannot write the manual pages into {}", dir.display())),
    }
}

/// Renders `sluice(1)`: the generated page and [`EXTRA_SECTIONS`].
fn render_main_page(command: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(command).render(out)?;
    out.write_all(EXTRA_SECTIONS.as_bytes())
}

/// Writes every page into `dir`; the subcommands' pages come from clap_mangen,
/// `sluice.1` is then rewritten with the extra sections.
fn write_pages(command: clap::Command, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(command.clone(), dir)?;
    let mut page = io::BufWriter::new(std::fs::File::create(dir.join("sluice.1"))?);
    render_main_page(command, &mut page)?;
    page.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("sluice")
            .about("A test command")
            .subcommand(clap::Command::new("start").about("Start it"))
            .subcommand(
                clap::Command::new("ctl")
                    .about("Talk to it")
                    .subcommand(clap::Command::new("reload").about("Reload it")),
            )
            .subcommand(clap::Command::new("worker").hide(true))
    }

    #[test]
    fn the_main_page_lists_the_subcommands_and_the_extra_sections() {
        let mut page = Vec::new();
        render_main_page(command(), &mut page).expect("rendered");
        let page = String::from_utf8(page).expect("utf-8");
        assert!(page.starts_with(".ie"), "roff: {}", &page[..40]);
        for expected in [
            "sluice\\-start(1)",
            "sluice\\-ctl(1)",
            ".SH SIGNALS",
            ".SH FILES",
        ] {
            assert!(page.contains(expected), "{expected} missing:\n{page}");
        }
        assert!(
            !page.contains("sluice\\-worker"),
            "a hidden subcommand is listed"
        );
    }

    #[test]
    fn one_page_per_visible_subcommand_is_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_pages(command(), dir.path()).expect("written");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "sluice-ctl-reload.1",
                "sluice-ctl.1",
                "sluice-start.1",
                "sluice.1"
            ]
        );
        let main = std::fs::read_to_string(dir.path().join("sluice.1")).expect("sluice.1");
        assert!(main.contains(".SH SIGNALS"));
    }
}
