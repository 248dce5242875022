//! Secrets Manager: the cursor key's versions, read once at start-up.

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::config::{ConfigError, CursorKeys, secret_bytes};

/// The cursor keys in `secret`: its current version (`AWSCURRENT`) signs; its pending version
/// (`AWSPENDING`, a key staged before it signs) and its previous one (`AWSPREVIOUS`, after a
/// rotation) check the cursors signed with them (README, "Rotating the cursor key").
pub async fn cursor_keys(
    sdk: &aws_config::SdkConfig,
    secret: &str,
) -> Result<CursorKeys, ConfigError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let read = |stage: &'static str| {
        client
            .get_secret_value()
            .secret_id(secret)
            .version_stage(stage)
            .send()
    };
    let current = read("AWSCURRENT").await.map_err(|e| {
        ConfigError::new(format!(
            "CURSOR_SIGNING_KEY_SECRET {secret}: {}",
            DisplayErrorContext(&e)
        ))
    })?;
    let current = secret_bytes(
        "the secret of CURSOR_SIGNING_KEY_SECRET",
        current.secret_string().unwrap_or_default().to_owned(),
    )?;
    // The next key (staged before it signs) and the one before (after a rotation) only check;
    // neither exists until the first rotation, and a short one is not a key.
    let mut others = Vec::new();
    for stage in ["AWSPENDING", "AWSPREVIOUS"] {
        match read(stage).await {
            Ok(answer) => others.extend(
                secret_bytes(
                    "a version of CURSOR_SIGNING_KEY_SECRET",
                    answer.secret_string().unwrap_or_default().to_owned(),
                )
                .inspect_err(|e| tracing::warn!(stage, error = %e, "cursor key left out"))
                .ok(),
            ),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => {
                return Err(ConfigError::new(format!(
                    "CURSOR_SIGNING_KEY_SECRET {secret} ({stage}): {}",
                    DisplayErrorContext(&e)
                )));
            }
        }
    }
    Ok(CursorKeys::new(current, others))
}
