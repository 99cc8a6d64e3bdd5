//! The flags and environment variables scripts, manifests and tests already use keep working.

use std::time::Duration;

use clap::{CommandFactory, Parser};

use super::*;

/// Every setting `chorus serve` had before the settings were grouped, with its variable.
const OLD_SETTINGS: &[(&str, &str)] = &[
    ("listen", "CHORUS_LISTEN"),
    ("data-dir", "CHORUS_DATA_DIR"),
    ("store", "CHORUS_STORE"),
    ("update-log", "CHORUS_UPDATE_LOG"),
    ("fsync", "CHORUS_FSYNC"),
    ("store-redis-url", "CHORUS_STORE_REDIS_URL"),
    ("store-prefix", "CHORUS_STORE_PREFIX"),
    ("s3-bucket", "CHORUS_S3_BUCKET"),
    ("s3-prefix", "CHORUS_S3_PREFIX"),
    ("s3-endpoint", "CHORUS_S3_ENDPOINT"),
    ("s3-region", "CHORUS_S3_REGION"),
    ("s3-allow-http", "CHORUS_S3_ALLOW_HTTP"),
    ("auth-secret", "CHORUS_AUTH_SECRET"),
    ("api-key", "CHORUS_API_KEY"),
    ("auth-public-key", "CHORUS_AUTH_PUBLIC_KEY"),
    ("auth-callback-url", "CHORUS_AUTH_CALLBACK_URL"),
    ("auth-callback-cache", "CHORUS_AUTH_CALLBACK_CACHE"),
    ("auth-callback-timeout", "CHORUS_AUTH_CALLBACK_TIMEOUT"),
    ("webhook-url", "CHORUS_WEBHOOK_URL"),
    ("webhook-secret", "CHORUS_WEBHOOK_SECRET"),
    ("webhook-include-content", "CHORUS_WEBHOOK_INCLUDE_CONTENT"),
    ("webhook-max-attempts", "CHORUS_WEBHOOK_MAX_ATTEMPTS"),
    ("webhook-timeout", "CHORUS_WEBHOOK_TIMEOUT"),
    ("change-debounce", "CHORUS_CHANGE_DEBOUNCE"),
    ("allowed-origins", "CHORUS_ALLOWED_ORIGINS"),
    ("max-connections", "CHORUS_MAX_CONNECTIONS"),
    (
        "max-connections-per-room",
        "CHORUS_MAX_CONNECTIONS_PER_ROOM",
    ),
    ("max-messages-per-second", "CHORUS_MAX_MESSAGES_PER_SECOND"),
    ("max-bytes-per-second", "CHORUS_MAX_BYTES_PER_SECOND"),
    ("static-dir", "CHORUS_STATIC_DIR"),
    ("log-format", "CHORUS_LOG_FORMAT"),
    ("snapshot-interval", "CHORUS_SNAPSHOT_INTERVAL"),
    ("room-idle-timeout", "CHORUS_ROOM_IDLE_TIMEOUT"),
    ("max-message-bytes", "CHORUS_MAX_MESSAGE_BYTES"),
    ("max-document-bytes", "CHORUS_MAX_DOCUMENT_BYTES"),
    ("max-document-clients", "CHORUS_MAX_DOCUMENT_CLIENTS"),
    (
        "max-clients-per-connection",
        "CHORUS_MAX_CLIENTS_PER_CONNECTION",
    ),
    ("max-pending-structs", "CHORUS_MAX_PENDING_STRUCTS"),
    ("quarantine-dir", "CHORUS_QUARANTINE_DIR"),
    ("quarantine-max", "CHORUS_QUARANTINE_MAX"),
    ("outbox-capacity", "CHORUS_OUTBOX_CAPACITY"),
    ("ping-interval", "CHORUS_PING_INTERVAL"),
    ("peer-timeout", "CHORUS_PEER_TIMEOUT"),
    ("awareness-timeout", "CHORUS_AWARENESS_TIMEOUT"),
    ("redis-url", "CHORUS_REDIS_URL"),
    ("redis-cluster", "CHORUS_REDIS_CLUSTER"),
    ("redis-prefix", "CHORUS_REDIS_PREFIX"),
    ("relay-resync-interval", "CHORUS_RELAY_RESYNC_INTERVAL"),
    ("node-timeout", "CHORUS_NODE_TIMEOUT"),
    ("shutdown-timeout", "CHORUS_SHUTDOWN_TIMEOUT"),
];

#[test]
fn every_old_flag_keeps_its_environment_variable() {
    let command = Config::command();
    assert_eq!(OLD_SETTINGS.len(), 50);
    for (flag, env) in OLD_SETTINGS {
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("--{flag} is gone"));
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some(*env),
            "--{flag}"
        );
    }
    let drain = command
        .get_arguments()
        .find(|arg| arg.get_long() == Some("drain-delay"))
        .and_then(|arg| arg.get_env())
        .and_then(|env| env.to_str());
    assert_eq!(drain, Some("CHORUS_DRAIN_DELAY"));
}

#[test]
fn a_command_line_of_every_old_flag_parses_into_its_group() {
    let config = Config::try_parse_from([
        "serve",
        "--listen=0.0.0.0:9000",
        "--data-dir=/var/chorus",
        "--store=redis",
        "--update-log=memory",
        "--fsync=1s",
        "--store-redis-url=redis://store:6379",
        "--store-prefix=st:",
        "--s3-bucket=bucket",
        "--s3-prefix=pre",
        "--s3-endpoint=http://minio:9000",
        "--s3-region=eu-west-1",
        "--s3-allow-http",
        "--auth-secret=0123456789abcdef0123456789abcdef",
        "--api-key=key",
        "--auth-public-key=/keys/pub.pem",
        "--auth-callback-url=http://backend/auth",
        "--auth-callback-cache=3s",
        "--auth-callback-timeout=4s",
        "--webhook-url=http://backend/hook",
        "--webhook-secret=hook-secret",
        "--webhook-include-content",
        "--webhook-max-attempts=3",
        "--webhook-timeout=7s",
        "--change-debounce=500ms",
        "--allowed-origins=https://a.example,https://b.example",
        "--max-connections=11",
        "--max-connections-per-room=12",
        "--max-messages-per-second=13",
        "--max-bytes-per-second=14",
        "--static-dir=/srv/demo",
        "--log-format=json",
        "--snapshot-interval=15s",
        "--room-idle-timeout=16s",
        "--max-message-bytes=17000",
        "--max-document-bytes=18000",
        "--max-document-clients=19",
        "--max-clients-per-connection=20",
        "--max-pending-structs=21",
        "--quarantine-dir=/q",
        "--quarantine-max=22",
        "--outbox-capacity=23",
        "--ping-interval=24s",
        "--peer-timeout=25s",
        "--awareness-timeout=26s",
        "--redis-url=redis://relay:6379",
        "--redis-cluster",
        "--redis-prefix=rp",
        "--relay-resync-interval=27s",
        "--node-timeout=28s",
        "--shutdown-timeout=29s",
        "--drain-delay=5s",
        "--version-interval=31s",
        "--version-retention=7,2d",
    ])
    .expect("every flag parses");
    let secs = Duration::from_secs;
    let Config {
        server,
        storage,
        scale_out,
        auth,
        limits,
        webhooks,
        sessions,
        operations,
        history,
    } = config;
    assert_eq!(history.version_interval, secs(31));
    assert_eq!(history.version_retention.max_count, Some(7));
    assert_eq!(history.version_retention.max_age, Some(secs(2 * 86_400)));
    assert_eq!(server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(server.static_dir, Some("/srv/demo".into()));

    assert_eq!(storage.data_dir, PathBuf::from("/var/chorus"));
    assert_eq!(storage.store, StoreKind::Redis);
    assert_eq!(storage.update_log, Some(LogKind::Memory));
    assert_eq!(storage.fsync, chorus_store::FsyncPolicy::Interval(secs(1)));
    assert_eq!(
        storage.store_redis_url.as_deref(),
        Some("redis://store:6379")
    );
    assert_eq!(storage.store_prefix, "st:");
    assert_eq!(storage.s3_bucket.as_deref(), Some("bucket"));
    assert_eq!(storage.s3_prefix, "pre");
    assert_eq!(storage.s3_endpoint.as_deref(), Some("http://minio:9000"));
    assert_eq!(storage.s3_region.as_deref(), Some("eu-west-1"));
    assert!(storage.s3_allow_http);
    assert_eq!(storage.snapshot_interval, secs(15));

    assert_eq!(
        auth.auth_secret,
        Some(Secret("0123456789abcdef0123456789abcdef".into()))
    );
    assert_eq!(auth.api_key, Some(Secret("key".into())));
    assert_eq!(auth.auth_public_key, Some("/keys/pub.pem".into()));
    assert_eq!(
        auth.auth_callback_url.map(String::from).as_deref(),
        Some("http://backend/auth")
    );
    assert_eq!(auth.auth_callback_cache, secs(3));
    assert_eq!(auth.auth_callback_timeout, secs(4));
    assert_eq!(
        auth.allowed_origins,
        ["https://a.example", "https://b.example"]
    );

    assert_eq!(
        webhooks.webhook_url.map(String::from).as_deref(),
        Some("http://backend/hook")
    );
    assert_eq!(webhooks.webhook_secret, Some(Secret("hook-secret".into())));
    assert!(webhooks.webhook_include_content);
    assert_eq!(webhooks.webhook_max_attempts, 3);
    assert_eq!(webhooks.webhook_timeout, secs(7));
    assert_eq!(webhooks.change_debounce, Duration::from_millis(500));

    assert_eq!(
        (
            limits.max_connections,
            limits.max_connections_per_room,
            limits.max_messages_per_second,
            limits.max_bytes_per_second,
        ),
        (11, 12, 13, 14)
    );
    assert_eq!(
        (
            limits.max_message_bytes,
            limits.max_document_bytes,
            limits.max_document_clients,
            limits.max_clients_per_connection,
            limits.max_pending_structs,
            limits.outbox_capacity,
        ),
        (17_000, 18_000, 19, 20, 21, 23)
    );

    assert_eq!(sessions.room_idle_timeout, secs(16));
    assert_eq!(sessions.ping_interval, secs(24));
    assert_eq!(sessions.peer_timeout, secs(25));
    assert_eq!(sessions.awareness_timeout, secs(26));

    assert_eq!(scale_out.redis_url.as_deref(), Some("redis://relay:6379"));
    assert!(scale_out.redis_cluster);
    assert_eq!(scale_out.redis_prefix, "rp");
    assert_eq!(scale_out.relay_resync_interval, secs(27));
    assert_eq!(scale_out.node_timeout, secs(28));

    assert_eq!(operations.log_format, LogFormat::Json);
    assert_eq!(operations.quarantine_dir, Some("/q".into()));
    assert_eq!(operations.quarantine_max, 22);
    assert_eq!(operations.shutdown_timeout, secs(29));
    assert_eq!(operations.drain_delay, secs(5));
}

#[test]
fn every_default_parses_and_stays_what_it_was() {
    let config = Config::default();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:1234");
    assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(config.storage.store, StoreKind::Fs);
    assert_eq!(config.storage.fsync, chorus_store::FsyncPolicy::Always);
    assert_eq!(config.storage.store_prefix, "chorus:");
    assert_eq!(config.storage.s3_prefix, "chorus");
    assert_eq!(config.storage.snapshot_interval, Duration::from_secs(30));
    assert_eq!(config.auth.auth_callback_cache, Duration::from_secs(10));
    assert_eq!(config.auth.auth_callback_timeout, Duration::from_secs(5));
    assert_eq!(config.webhooks.webhook_max_attempts, 8);
    assert_eq!(config.webhooks.webhook_timeout, Duration::from_secs(10));
    assert_eq!(config.webhooks.change_debounce, Duration::from_secs(2));
    assert_eq!(config.limits.max_connections, 100_000);
    assert_eq!(config.limits.max_connections_per_room, 2_000);
    assert_eq!(config.limits.max_messages_per_second, 1_000);
    assert_eq!(config.limits.max_bytes_per_second, 4 * 1024 * 1024);
    assert_eq!(config.limits.max_message_bytes, 16 * 1024 * 1024);
    assert_eq!(config.limits.max_document_bytes, 64 * 1024 * 1024);
    assert_eq!(config.limits.max_document_clients, 65_536);
    assert_eq!(config.limits.max_pending_structs, 10_000);
    assert_eq!(config.limits.outbox_capacity, 1024);
    assert_eq!(config.sessions.ping_interval, Duration::from_secs(15));
    assert_eq!(config.sessions.peer_timeout, Duration::from_secs(30));
    assert_eq!(config.sessions.awareness_timeout, Duration::from_secs(30));
    assert_eq!(config.sessions.room_idle_timeout, Duration::from_secs(30));
    assert_eq!(config.scale_out.redis_prefix, "chorus");
    assert_eq!(
        config.scale_out.relay_resync_interval,
        Duration::from_secs(30)
    );
    assert_eq!(config.scale_out.node_timeout, Duration::from_secs(10));
    assert_eq!(config.operations.log_format, LogFormat::Text);
    assert_eq!(config.operations.quarantine_max, 100);
    assert_eq!(config.operations.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(config.operations.drain_delay, Duration::ZERO);
    assert_eq!(config.history.version_interval, Duration::from_secs(600));
    assert_eq!(config.history.version_retention.max_count, Some(500));
    assert_eq!(
        config.history.version_retention.max_age,
        Some(Duration::from_secs(90 * 86_400))
    );
    assert_eq!(LimitsConfig::default().outbox_capacity, 1024);
}

#[test]
fn help_reads_by_topic() {
    let help = Config::command().render_long_help().to_string();
    let headings = [
        "Server:",
        "Storage:",
        "Scale-out:",
        "Auth:",
        "Limits:",
        "Webhooks:",
        "Connections and rooms:",
        "Operations:",
    ];
    let mut at = 0;
    for heading in headings {
        let found = help[at..]
            .find(heading)
            .unwrap_or_else(|| panic!("no {heading:?} heading after byte {at} in:\n{help}"));
        at += found + heading.len();
    }
    let storage = help.find("Storage:").expect("heading");
    let scale_out = help.find("Scale-out:").expect("heading");
    let data_dir = help.find("--data-dir").expect("flag");
    assert!(
        storage < data_dir && data_dir < scale_out,
        "--data-dir is listed under Storage"
    );
}

#[test]
fn defaults_are_valid_and_problems_are_all_listed() {
    assert_eq!(Config::local("./data").validate(), Ok(()));
    let mut config = Config::local("./data");
    config.limits.outbox_capacity = 0;
    config.sessions.ping_interval = Duration::from_secs(60);
    let problems = config.validate().expect_err("two problems").to_string();
    assert!(
        problems.contains("--outbox-capacity (CHORUS_OUTBOX_CAPACITY)"),
        "{problems}"
    );
    assert!(
        problems.contains("--ping-interval (CHORUS_PING_INTERVAL)"),
        "{problems}"
    );
}

#[test]
fn every_problem_names_a_flag_and_its_variable() {
    let mut config = Config::local("./data");
    config.limits.max_connections = 0;
    config.limits.max_bytes_per_second = 0;
    config.auth.auth_secret = Some(Secret("short".into()));
    config.auth.auth_public_key = Some("/k.pem".into());
    config.webhooks.webhook_secret = Some(Secret("s".into()));
    config.scale_out.redis_cluster = true;
    config.storage.store = StoreKind::S3;
    let problems = config.validate().expect_err("problems").problems;
    for line in &problems {
        assert!(
            line.contains("--") && line.contains("(CHORUS_"),
            "{line:?} names no flag and variable"
        );
    }
    assert_eq!(problems.len(), 7, "{problems:?}");
}
