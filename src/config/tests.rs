use std::collections::HashSet;
use std::time::Duration;

use super::*;

fn parse(args: &[(&str, &str)], env: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ServiceConfig::from_args_with(args.iter().copied(), move |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
}

#[test]
fn the_defaults_are_the_layers_defaults() {
    let config = ServiceConfig::defaults();
    assert_eq!(config, parse(&[], &[]).unwrap());
    assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 8000));
    assert_eq!(config.engines, ["local"]);
    assert_eq!(config.limits(), Limits::default());
    assert_eq!(config.replay(), ReplayConfig::default());
    let stream = StreamConfig::default();
    assert_eq!(config.stream_config().heartbeat, stream.heartbeat);
    assert_eq!(config.stream_config().timeout, stream.timeout);
    assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(config.header_timeout, Duration::from_secs(10));
    assert_eq!(config.body_timeout, Duration::from_secs(30));
    assert_eq!(config.max_connections, 4096);
    assert_eq!(config.locale, Locale::En);
    assert_eq!(config.log_level, "info");
    assert!(!config.bench_routes);
    assert!(config.api_keys.is_empty() && config.redis_url.is_none());
    // Every row's default parses on its own too.
    for setting in SETTINGS {
        parse(&[(setting.key, setting.default)], &[]).unwrap();
    }
}

#[test]
fn the_table_names_each_flag_and_variable_once() {
    let flags: HashSet<_> = SETTINGS.iter().map(|s| s.flag).collect();
    let envs: HashSet<_> = SETTINGS.iter().map(|s| s.env).collect();
    let keys: HashSet<_> = SETTINGS.iter().map(|s| s.key).collect();
    assert_eq!(flags.len(), SETTINGS.len());
    assert_eq!(envs.len(), SETTINGS.len());
    assert_eq!(keys.len(), SETTINGS.len());
    for s in SETTINGS {
        assert!(s.env.starts_with("DEEPSEARCH_"), "{}", s.env);
        assert!(s.help.ends_with('.') && !s.help.contains('\n'), "{}", s.key);
        assert!(s.help_line().contains(&format!("[env: {}]", s.env)));
    }
    for key in SEARCH_SETTINGS {
        assert!(Setting::find(key).is_some(), "{key}");
    }
}

#[test]
fn a_flag_wins_over_its_variable_which_wins_over_the_default() {
    let env = [("DEEPSEARCH_PORT", " 9100 "), ("DEEPSEARCH_HEARTBEAT", "")];
    let config = parse(&[], &env).unwrap();
    assert_eq!(config.port, 9100);
    assert_eq!(
        config.heartbeat,
        Some(Duration::from_secs(10)),
        "empty is unset"
    );
    let config = parse(&[("port", "0"), ("heartbeat", "0")], &env).unwrap();
    assert_eq!(config.port, 0);
    assert_eq!(config.heartbeat, None, "0 disables heartbeats");
    let config = parse(
        &[
            ("engines", "local, searxng,"),
            ("stream_timeout", "1.5"),
            ("locale", "zh-CN"),
            ("bench_routes", "true"),
        ],
        &[("DEEPSEARCH_API_KEY", " k-secret\n")],
    )
    .unwrap();
    assert_eq!(config.engines, ["local", "searxng"]);
    assert_eq!(config.stream_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(config.locale, Locale::Zh);
    assert!(config.bench_routes);
    let level = |raw: &str| parse(&[("log_level", raw)], &[]).map(|c| c.log_level);
    assert_eq!(level("WARNING").unwrap(), "warn");
    assert_eq!(level("debug").unwrap(), "debug");
    assert_eq!(
        config.api_keys.first().map(Secret::expose),
        Some("k-secret")
    );
    assert!(!format!("{config:?}").contains("k-secret"));
}

#[test]
fn bad_values_name_the_flag_or_variable_and_what_was_expected() {
    let err = parse(&[("port", "x")], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for --port: expected a port number from 0 to 65535, got \"x\""
    );
    let err = parse(&[], &[("DEEPSEARCH_HEARTBEAT", "-1")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for DEEPSEARCH_HEARTBEAT (--heartbeat): expected a number of seconds, \
         at least 0, got \"-1\""
    );
    for (key, raw) in [
        ("port", "70000"),
        ("header_timeout", "0"),
        ("body_timeout", "nan"),
        ("locale", "fr"),
        ("max_streams", "-3"),
        ("max_body_bytes", "0"),
        ("upstream", "ftp://x"),
        ("bench_routes", "maybe"),
        ("log_level", "loud"),
    ] {
        let err = parse(&[(key, raw)], &[]).unwrap_err().to_string();
        let flag = Setting::find(key).unwrap().flag;
        assert!(
            err.starts_with(&format!("invalid value for --{flag}: ")),
            "{err}"
        );
    }
    assert_eq!(
        parse(&[("nope", "1")], &[]).unwrap_err(),
        ConfigError::Unknown("nope".into())
    );
}
