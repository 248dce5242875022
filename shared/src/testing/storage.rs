//! The table and bucket as `template.yaml` declares them, for the local stack and the tests (in
//! AWS the template creates them).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use crate::store::StoreError;
use crate::store::dynamodb::TTL;
use crate::store::keys::{self, PARTNER_PK, PARTNER_SK, PK, SK, TIME_SK};
use crate::store::sdk_error::classify;

/// How long to wait for a new table to become active.
const TABLE_ACTIVE_DEADLINE: Duration = Duration::from_secs(60);
const TABLE_POLL: Duration = Duration::from_millis(100);

/// Creates the activity table as `template.yaml` declares it (for the local stack and tests),
/// and waits until it is active.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let all = Projection::builder()
        .projection_type(ProjectionType::All)
        .build();
    let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Other(e.to_string());

    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [
                PK,
                SK,
                TIME_SK,
                PARTNER_PK,
                PARTNER_SK,
                keys::HEAD_SHARD,
                "recordedAt",
            ]
            .into_iter()
            .map(attr)
            .chain([AttributeDefinition::builder()
                .attribute_name(keys::SEQUENCE)
                .attribute_type(ScalarAttributeType::N)
                .build()])
            .collect::<Result<_, _>>()
            .map_err(built)?,
        ))
        .key_schema(key(PK, KeyType::Hash).map_err(built)?)
        .key_schema(key(SK, KeyType::Range).map_err(built)?)
        // The sequencer reads inserted activities from the stream (README, "Streaming").
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewImage)
                .build()
                .map_err(built)?,
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(keys::BY_TIME_INDEX)
                .key_schema(key(PK, KeyType::Hash).map_err(built)?)
                .key_schema(key(TIME_SK, KeyType::Range).map_err(built)?)
                .projection(all.clone())
                .build()
                .map_err(built)?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::BY_PARTNER_TIME_INDEX)
                .key_schema(key(PARTNER_PK, KeyType::Hash).map_err(built)?)
                .key_schema(key(PARTNER_SK, KeyType::Range).map_err(built)?)
                .projection(all)
                .build()
                .map_err(built)?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::BY_SEQUENCE_INDEX)
                .key_schema(key(PK, KeyType::Hash).map_err(built)?)
                .key_schema(key(keys::SEQUENCE, KeyType::Range).map_err(built)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("hash")
                        .non_key_attributes("previousHash")
                        .build(),
                )
                .build()
                .map_err(built)?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::BY_HEAD_MOVED_INDEX)
                .key_schema(key(keys::HEAD_SHARD, KeyType::Hash).map_err(built)?)
                .key_schema(key("recordedAt", KeyType::Range).map_err(built)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("partnerId")
                        .non_key_attributes("customerId")
                        .non_key_attributes("sequence")
                        .non_key_attributes("hash")
                        .build(),
                )
                .build()
                .map_err(built)?,
        )
        .send()
        .await;
    if let Err(e) = result {
        if e.as_service_error()
            .is_some_and(|s| s.is_resource_in_use_exception())
        {
            return Ok(());
        }
        return Err(classify(e));
    }

    // The SDK waiter polls no faster than every 20 s; poll DescribeTable directly.
    let deadline = std::time::Instant::now() + TABLE_ACTIVE_DEADLINE;
    while std::time::Instant::now() < deadline {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(classify)?;
        let active = out
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE");
        if active {
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(TTL)
                        .enabled(true)
                        .build()
                        .map_err(built)?,
                )
                .send()
                .await
                .map_err(classify)?;
            return Ok(());
        }
        tokio::time::sleep(TABLE_POLL).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {table} did not become active"
    )))
}

/// Creates the bucket if it does not exist (local stack and tests; in AWS the template does).
pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), StoreError> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(classify(e)),
    }
}

/// Creates the anchor bucket as `template.yaml` declares it, unless it exists: Object Lock on,
/// every new object kept in compliance mode for `days` (local stack and tests).
pub async fn create_anchor_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    days: i32,
) -> Result<(), StoreError> {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    match client
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) =>
        {
            return Ok(());
        }
        Err(e) => return Err(classify(e)),
    }
    client
        .put_object_lock_configuration()
        .bucket(bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(days)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(classify)?;
    Ok(())
}

/// The signing key as `template.yaml` declares it (ECC_NIST_P256, SIGN_VERIFY) under `alias`
/// (`alias/…`), created unless the alias exists (local stack and tests). Returns the key's ARN.
pub async fn create_signing_key(
    client: &aws_sdk_kms::Client,
    alias: &str,
) -> Result<String, StoreError> {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};

    if let Ok(found) = client.describe_key().key_id(alias).send().await
        && let Some(arn) = found.key_metadata().and_then(|m| m.arn())
    {
        return Ok(arn.to_owned());
    }
    let created = client
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .description("activity-log checkpoints and export manifests (local)")
        .send()
        .await
        .map_err(classify)?;
    let Some(meta) = created.key_metadata() else {
        return Err(StoreError::Other("CreateKey returned no key".into()));
    };
    client
        .create_alias()
        .alias_name(alias)
        .target_key_id(meta.key_id())
        .send()
        .await
        .map_err(classify)?;
    Ok(meta.arn().unwrap_or(meta.key_id()).to_owned())
}
