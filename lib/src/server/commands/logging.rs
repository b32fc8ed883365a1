//! Logging settings: the log level and the access log.

use sluice_command::proto;

use super::{Answer, CommandError};
use crate::access_log::{AccessLog, AccessLogFormat, AccessLogTarget};
use crate::server::Server;

impl Server {
    /// Takes new logging settings: the log level (unless `RUST_LOG` overrides it) and the
    /// access log, reopened even when its path did not change (logrotate moved it away).
    /// On an error, the current access log stays.
    pub(super) fn set_logging(&mut self, settings: &proto::LoggingSettings) -> Answer {
        let level: log::LevelFilter = settings
            .log_level
            .parse()
            .map_err(|_| CommandError::UnknownLogLevel(settings.log_level.clone()))?;
        let target = AccessLogTarget::from_arg(&settings.access_log);
        let format = AccessLogFormat::from_arg(settings.access_log_format.as_deref().unwrap_or(""));
        let reopened = match AccessLog::open(&target, format) {
            Ok(reopened) => reopened,
            Err(source) => return Err(CommandError::AccessLog { target, source }),
        };
        self.ctx.access_log.flush();
        self.ctx.access_log = reopened;
        if std::env::var_os("RUST_LOG").is_none() {
            log::set_max_level(level);
        }
        Ok((format!("logging at {level}, access log {target}"), None))
    }
}
