//! Negative numbers as arguments of `stitch run`, wherever they stand.
//!
//! clap takes a token starting with `-` for an option unless it is a plain decimal
//! (`allow_negative_numbers`), so `-0x10` and `-inf` were refused; `allow_hyphen_values`
//! would take them, but also every option after the first argument. Instead the
//! command line is put in a form clap reads unambiguously before it parses it: the
//! options of `run` (found from clap's own definition, with their values) first, then
//! `--`, then the file and the arguments in their order. A token is an argument when it
//! is not an option or an option's value and either does not start with `-` or is a
//! number (an i64 in decimal or hex, or an f64 including `inf` and `nan`). Anything
//! else starting with `-` stays an option, so clap still reports unknown ones.

use std::ffi::{OsStr, OsString};

/// `argv` with the arguments of subcommand `sub` moved after a `--` (see the module
/// comment); other command lines are returned as they are.
pub fn numbers_as_values(cli: &clap::Command, sub: &str, argv: Vec<OsString>) -> Vec<OsString> {
    let Some(at) = argv.iter().position(|a| a == sub) else {
        return argv;
    };
    let Some(command) = cli.find_subcommand(sub) else {
        return argv;
    };
    // Only a `run` in the subcommand position counts, not a file called `run`.
    if argv[1..at]
        .iter()
        .any(|a| !a.to_string_lossy().starts_with('-'))
    {
        return argv;
    }
    let mut out: Vec<OsString> = argv[..=at].to_vec();
    let mut values = Vec::new();
    let mut rest = argv[at + 1..].iter();
    while let Some(token) = rest.next() {
        let text = token.to_string_lossy();
        if text == "--" {
            values.extend(rest.by_ref().cloned());
            break;
        }
        match option_of(command, &text) {
            Some(takes_value) => {
                out.push(token.clone());
                if takes_value {
                    out.extend(rest.next().cloned());
                }
            }
            None if text.starts_with('-') && text.len() > 1 && !is_number(token) => {
                out.push(token.clone())
            }
            None => values.push(token.clone()),
        }
    }
    out.push("--".into());
    out.extend(values);
    out
}

/// For an option of `command` written without `=value`: whether its value is the
/// next token. `None` if `token` is not one of its options.
fn option_of(command: &clap::Command, token: &str) -> Option<bool> {
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    if let Some(long) = token.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((name, _)) => (name, true),
            None => (long, false),
        };
        if name == "help" {
            return Some(false);
        }
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name))?;
        return Some(!inline && takes_value(arg));
    }
    let mut shorts = token.strip_prefix('-')?.chars();
    let short = shorts.next()?;
    if short == 'h' && shorts.as_str().is_empty() {
        return Some(false);
    }
    let arg = command
        .get_arguments()
        .find(|a| a.get_short() == Some(short))?;
    Some(shorts.as_str().is_empty() && takes_value(arg))
}

/// A number some parameter bank could take: an i64 (decimal or hex) or an f64.
fn is_number(token: &OsStr) -> bool {
    token
        .to_str()
        .is_some_and(|t| stitch_io::parse_i64(t).is_some() || t.trim().parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn rewrite(line: &str) -> String {
        let argv = line.split(' ').map(OsString::from).collect();
        let out = numbers_as_values(&crate::Cli::command(), "run", argv);
        let words: Vec<_> = out
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        words.join(" ")
    }

    #[test]
    fn numbers_are_arguments_and_options_stay_options() {
        assert_eq!(
            rewrite("stitch run f.vm3 -0x10 --tier interp -inf 2"),
            "stitch run --tier interp -- f.vm3 -0x10 -inf 2"
        );
        assert_eq!(
            rewrite("stitch run --entry=half f.vm3 -1e3 --depth-limit 5"),
            "stitch run --entry=half --depth-limit 5 -- f.vm3 -1e3"
        );
        // An option's value is its own, even when it looks like a number.
        assert_eq!(
            rewrite("stitch run --depth-limit -1 f.vm3"),
            "stitch run --depth-limit -1 -- f.vm3"
        );
        // What follows `--` is an argument already; unknown options stay for clap.
        assert_eq!(
            rewrite("stitch run f.vm3 --bogus -- --tier"),
            "stitch run --bogus -- f.vm3 --tier"
        );
        assert_eq!(rewrite("stitch bench --quick"), "stitch bench --quick");
    }
}
