//! `answers = { 503 = "answers/503.http" }`: files holding a whole HTTP
//! response that replaces a default answer, read when the config is loaded
//! so that a missing file is a config error, not a surprise under load.

use super::{defaults::ANSWER_STATUSES, error::ConfigError, reader::Field};
use crate::proto;

/// Reads every answer file named in an `answers` table.
pub(crate) fn parse_answers(field: &Field<'_>) -> Result<Vec<proto::CustomAnswer>, ConfigError> {
    let table = field.map()?;
    let mut answers = Vec::new();
    for (key, key_span, value) in table.entries() {
        let status = key
            .parse::<u32>()
            .ok()
            .filter(|status| ANSWER_STATUSES.contains(status))
            .ok_or_else(|| {
                let allowed: Vec<String> = ANSWER_STATUSES.iter().map(u32::to_string).collect();
                let message = format!(
                    "unknown status {key:?}, expected one of {}",
                    allowed.join(", ")
                );
                field.source().invalid(key_span, &value.path(), message)
            })?;
        answers.push(proto::CustomAnswer {
            status,
            content: read_answer(&value)?,
        });
    }
    Ok(answers)
}

fn read_answer(field: &Field<'_>) -> Result<String, ConfigError> {
    let written = field.str()?;
    if written.is_empty() {
        return Err(field.error("empty path, expected the path of a file holding an HTTP response"));
    }
    let path = field.source().resolve(written);
    let content = std::fs::read_to_string(&path).map_err(|source| {
        let (line, column) = super::error::line_column(field.source().text, field.span().start);
        ConfigError::ReadReferenced {
            file: field.source().file.to_owned(),
            line,
            column,
            key: field.path(),
            path: path.clone(),
            source,
        }
    })?;
    if !content.starts_with("HTTP/1.") {
        return Err(field.error(format!(
            "{} does not start with a status line, expected a whole HTTP response \
             starting like \"HTTP/1.1 503 Service Unavailable\"",
            path.display()
        )));
    }
    Ok(content)
}
