//! `mailcat completions SHELL`: the shell completions clap_complete generates from the command
//! line's own definition, so they never lag behind a new flag.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

/// Prints the completions for the shell on stdout; returns the exit code.
pub(crate) fn run(args: &CompletionsArgs) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "mailcat", &mut script);
    crate::cmd::common::write_bytes(&script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "mailcat", &mut script);
            assert!(!script.is_empty(), "{shell}");
        }
    }
}
