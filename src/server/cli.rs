//! The command line of `deepsearch-server`, built from the one settings table
//! ([`crate::config::SETTINGS`]): serving (the flags alone), `search "question"` and
//! `index DIR`. Values are checked by [`ServiceConfig`], not here, so both CLIs refuse
//! bad input with the same message.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches};

use crate::config::{ConfigError, Kind, ServiceConfig, Setting, SEARCH_SETTINGS, SETTINGS};

const ABOUT: &str = "Serves DeepSearch over HTTP: POST /deepsearch and POST /v1/tool/deepsearch \
stream Server-Sent Events; GET /healthz, GET /metrics, GET /.

Engines other than local read their settings from the environment (SEARXNG_URL, \
TAVILY_API_KEY, ...); the model falls back to OPENAI_BASE_URL/OPENAI_API_KEY. Without a \
model the search runs offline (extractive answers).";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Listen and serve.
    Serve(ServiceConfig),
    /// One search in the terminal.
    Search(SearchArgs),
    /// Build or refresh the local index of a corpus folder.
    Index(IndexArgs),
}

/// `deepsearch-server search`.
#[derive(Debug, Clone)]
pub struct SearchArgs {
    pub question: String,
    /// Rounds at most; checked by the search (1 to 10).
    pub max_loop: i64,
    /// Print only the final result, as JSON.
    pub json: bool,
    pub config: ServiceConfig,
}

/// `deepsearch-server index`.
#[derive(Debug, Clone)]
pub struct IndexArgs {
    pub folder: PathBuf,
    pub config: ServiceConfig,
}

/// Why the command line was refused: clap's own errors (unknown flags, `--help`) or a
/// value the configuration does not accept.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Usage(#[from] clap::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn setting_arg(setting: &'static Setting) -> Arg {
    let arg = Arg::new(setting.key)
        .long(setting.flag)
        .help(setting.help_line());
    match setting.kind {
        Kind::Bool => arg.action(ArgAction::SetTrue),
        Kind::Secrets => arg
            .value_name(setting.key.to_ascii_uppercase())
            .action(ArgAction::Append)
            .allow_hyphen_values(true),
        // Hyphen values reach the check, which says what was expected ("-1" seconds).
        _ => arg
            .value_name(setting.key.to_ascii_uppercase())
            .action(ArgAction::Set)
            .allow_hyphen_values(true),
    }
}

fn settings_args(keys: impl IntoIterator<Item = &'static str>) -> Vec<Arg> {
    keys.into_iter()
        .filter_map(Setting::find)
        .map(setting_arg)
        .collect()
}

/// The whole command: the serve flags, and the `search` and `index` subcommands.
pub fn command() -> clap::Command {
    let search = clap::Command::new("search")
        .about("Run one search in the terminal: the plan, each round's sources, the answer, the numbered sources")
        .arg(Arg::new("question").required(true).help("What to search for."))
        .arg(
            Arg::new("max_loop")
                .long("max-loop")
                .value_name("N")
                .default_value("3")
                .allow_hyphen_values(true)
                .help("Search rounds at most, 1 to 10."),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print only the final result, as JSON."),
        )
        .args(settings_args(SEARCH_SETTINGS.iter().copied()));
    let index = clap::Command::new("index")
        .about("Build or refresh the local index of a corpus folder; print its document count and size")
        .arg(
            Arg::new("folder")
                .value_name("DIR")
                .required(true)
                .value_parser(clap::value_parser!(PathBuf))
                .help("The corpus folder (.md, .txt, .html files)."),
        )
        .args(settings_args(["cache_dir"]));
    clap::Command::new("deepsearch-server")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT.lines().next().unwrap_or_default())
        .long_about(ABOUT)
        .args(settings_args(SETTINGS.iter().map(|s| s.key)))
        .args_conflicts_with_subcommands(true)
        .subcommand(search)
        .subcommand(index)
}

/// The values given on the command line, as (setting key, text).
fn given(
    matches: &ArgMatches,
    keys: impl IntoIterator<Item = &'static str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for setting in keys.into_iter().filter_map(Setting::find) {
        if setting.kind == Kind::Bool {
            if matches.get_flag(setting.key) {
                out.push((setting.key, "true".to_string()));
            }
        } else if setting.kind == Kind::Secrets {
            let values = matches
                .get_many::<String>(setting.key)
                .into_iter()
                .flatten();
            out.extend(values.map(|v| (setting.key, v.clone())));
        } else if let Some(value) = matches.get_one::<String>(setting.key) {
            out.push((setting.key, value.clone()));
        }
    }
    out
}

/// Parses `args` (the program name first) over the environment.
pub fn parse_from<I, T>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    match matches.subcommand() {
        Some(("search", m)) => {
            let raw = m.get_one::<String>("max_loop").map_or("3", String::as_str);
            let max_loop = raw
                .trim()
                .parse::<i64>()
                .map_err(|_| ConfigError::Invalid {
                    from: "--max-loop".into(),
                    expected: "expected a whole number from 1 to 10".into(),
                    raw: raw.to_string(),
                })?;
            Ok(Command::Search(SearchArgs {
                question: m.get_one::<String>("question").cloned().unwrap_or_default(),
                max_loop,
                json: m.get_flag("json"),
                config: ServiceConfig::from_args(given(m, SEARCH_SETTINGS.iter().copied()))?,
            }))
        }
        Some(("index", m)) => Ok(Command::Index(IndexArgs {
            folder: m.get_one::<PathBuf>("folder").cloned().unwrap_or_default(),
            config: ServiceConfig::from_args(given(m, ["cache_dir"]))?,
        })),
        _ => Ok(Command::Serve(ServiceConfig::from_args(given(
            &matches,
            SETTINGS.iter().map(|s| s.key),
        ))?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServiceConfig, CliError> {
        match parse_from(std::iter::once("deepsearch-server").chain(args.iter().copied()))? {
            Command::Serve(config) => Ok(config),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn every_setting_is_a_flag_with_its_help_default_and_variable() {
        let help = command().render_long_help().to_string();
        for setting in SETTINGS {
            assert!(
                help.contains(&format!("--{}", setting.flag)),
                "{}",
                setting.flag
            );
            assert!(help.contains(&setting.help_line()), "{}", setting.key);
        }
    }

    #[test]
    fn flags_become_the_config() {
        let config = serve(&[
            "--port",
            "0",
            "--engines",
            "local, searxng",
            "--heartbeat",
            "0",
            "--bench-routes",
            "--redis",
            "redis://:pw@127.0.0.1:6390/0",
        ])
        .unwrap();
        assert_eq!(config.port, 0);
        assert_eq!(config.engines, ["local", "searxng"]);
        assert_eq!(config.heartbeat, None);
        assert!(config.bench_routes && config.redis_url.is_some());
        assert!(
            !format!("{config:?}").contains("pw@"),
            "the URL may hold a password"
        );
    }

    #[test]
    fn bad_values_are_refused_by_the_config() {
        let err = serve(&["--heartbeat", "-1"]).unwrap_err();
        assert!(matches!(err, CliError::Config(_)), "{err}");
        assert!(err
            .to_string()
            .starts_with("invalid value for --heartbeat: "));
        assert!(matches!(serve(&["--nope"]), Err(CliError::Usage(_))));
    }

    #[test]
    fn subcommands_take_their_own_arguments() {
        let parsed = parse_from([
            "deepsearch-server",
            "search",
            "q",
            "--max-loop",
            "2",
            "--json",
        ]);
        let Ok(Command::Search(search)) = parsed else {
            panic!("not a search")
        };
        assert_eq!(
            (search.question.as_str(), search.max_loop, search.json),
            ("q", 2, true)
        );
        let parsed = parse_from([
            "deepsearch-server",
            "index",
            "/tmp/x",
            "--cache-dir",
            "/tmp/c",
        ]);
        let Ok(Command::Index(index)) = parsed else {
            panic!("not an index")
        };
        assert_eq!(index.folder, PathBuf::from("/tmp/x"));
        assert_eq!(index.config.cache_dir, Some(PathBuf::from("/tmp/c")));
        // Serve flags do not mix with a subcommand.
        assert!(parse_from(["deepsearch-server", "--port", "1", "index", "/tmp/x"]).is_err());
    }
}
