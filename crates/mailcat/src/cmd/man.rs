//! `mailcat man [--dir DIR]`: the manual pages clap_mangen generates from the command line's
//! own definition: mailcat(1), and with `--dir` one page per command (mailcat-send(1) ...), as
//! git and cargo ship theirs.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::exit;

/// Prints mailcat(1), or writes every page into `--dir`; returns the exit code.
pub(crate) fn run(args: &ManArgs) -> u8 {
    let mut command = Cli::command();
    // Global flags are copied into the commands only when the command is built.
    command.build();
    match &args.dir {
        None => match render(&command) {
            Ok(page) => crate::cmd::common::write_bytes(&page),
            Err(e) => {
                eprintln!("mailcat man: {e}");
                exit::IOERR
            }
        },
        Some(dir) => match write_pages(&command, dir) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!(
                    "mailcat man: cannot write the pages into {}: {e}",
                    dir.display()
                );
                exit::IOERR
            }
        },
    }
}

/// One page, in roff.
fn render(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    Ok(page)
}

/// `mailcat.1` and `mailcat-COMMAND.1` for each command, into `dir`.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("mailcat.1"), render(command)?)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("mailcat-{}", sub.get_name());
        let page = render(&sub.clone().display_name(name.clone()))?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
    }
    Ok(())
}
