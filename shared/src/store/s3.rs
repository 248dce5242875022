//! S3 adapter: details documents too large for a table item, export files, and the anchors of
//! signed heads (another bucket).

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::sdk_error::classify;
use super::{Anchors, DetailsBlobs, ExportObjects, PartSink, StoreError};
use crate::export::parts::MIN_PART_BYTES;

#[derive(Clone, Debug)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The SDK client (tests inspect the bucket with it).
    #[cfg(feature = "testing")]
    pub fn client(&self) -> &Client {
        &self.client
    }

    #[cfg(feature = "testing")]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl S3Blobs {
    async fn put_object(
        &self,
        key: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn get_object(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)?;
        Ok(out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .into_bytes()
            .to_vec())
    }

    async fn remove_object(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

impl DetailsBlobs for S3Blobs {
    /// Written once (`If-None-Match: *`, which the bucket's policy requires): the key is the
    /// content's hash, so an object already there is this one (a retry), and no one overwrites it.
    async fn put(&self, key: &str, json: &str) -> Result<(), StoreError> {
        self.put_new(key, json.as_bytes().to_vec()).await.map(drop)
    }

    async fn get(&self, key: &str) -> Result<String, StoreError> {
        String::from_utf8(self.get_object(key).await?)
            .map_err(|_| StoreError::Corrupt(format!("details object {key} is not UTF-8")))
    }
}

/// The anchor bucket ([`Anchors`]): the same adapter on the bucket under Object Lock.
impl Anchors for S3Blobs {
    async fn first_key(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(classify)?;
        Ok(out
            .contents()
            .first()
            .and_then(|o| o.key())
            .map(str::to_owned))
    }

    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            // 412: the object is there (409: a concurrent conditional write of the same key).
            Err(SdkError::ServiceError(e)) if matches!(e.raw().status().as_u16(), 409 | 412) => {
                Ok(false)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match got {
            Ok(out) => out
                .body
                .collect()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| StoreError::Unavailable(format!("reading {key}: {e}"))),
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }
}

/// A multipart upload of an export file.
pub struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl PartSink for S3Upload {
    fn upload_id(&self) -> &str {
        &self.upload_id
    }

    fn etags(&self) -> Vec<String> {
        self.parts
            .iter()
            .map(|p| p.e_tag().unwrap_or_default().to_owned())
            .collect()
    }

    async fn upload_part(&mut self, number: i32, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.send_part(number, ByteStream::from(bytes)).await
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn abort(&mut self) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

impl S3Upload {
    async fn send_part(&mut self, number: i32, body: ByteStream) -> Result<(), StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Sends the file at `path` as parts of `part_bytes`, each read from the disk as it goes.
    async fn send_file(
        &mut self,
        path: &Path,
        size: u64,
        part_bytes: u64,
    ) -> Result<(), StoreError> {
        let step = usize::try_from(part_bytes).unwrap_or(usize::MAX);
        for (number, offset) in (1..).zip((0..size).step_by(step)) {
            let length = part_bytes.min(size - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .map_err(|e| StoreError::Other(format!("reading {}: {e}", path.display())))?;
            self.send_part(number, body).await?;
        }
        Ok(())
    }
}

impl ExportObjects for S3Blobs {
    type Upload = S3Upload;

    async fn start_upload(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: &str,
    ) -> Result<S3Upload, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_disposition(content_disposition)
            .send()
            .await
            .map_err(classify)?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| StoreError::Other("CreateMultipartUpload returned no upload id".into()))?
            .to_owned();
        Ok(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id,
            parts: Vec::new(),
        })
    }

    fn resume_upload(&self, key: &str, upload_id: &str, etags: Vec<String>) -> S3Upload {
        S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            parts: (1..)
                .zip(etags)
                .map(|(number, etag)| {
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build()
                })
                .collect(),
        }
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.put_object(key, "application/octet-stream", bytes)
            .await
    }

    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.get_object(key).await
    }

    async fn delete_object(&self, key: &str) -> Result<(), StoreError> {
        self.remove_object(key).await
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
        content_disposition: &str,
        part_bytes: usize,
    ) -> Result<(), StoreError> {
        let reading = |e: &dyn std::fmt::Display| {
            StoreError::Other(format!("reading {}: {e}", path.display()))
        };
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| reading(&e))?
            .len();
        let part_bytes = u64::try_from(part_bytes.max(MIN_PART_BYTES)).unwrap_or(u64::MAX);
        if size <= part_bytes {
            let body = ByteStream::from_path(path).await.map_err(|e| reading(&e))?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .content_disposition(content_disposition)
                .body(body)
                .send()
                .await
                .map_err(classify)?;
            return Ok(());
        }
        let mut upload = self
            .start_upload(key, content_type, content_disposition)
            .await?;
        let sent = match upload.send_file(path, size, part_bytes).await {
            Ok(()) => upload.complete().await,
            Err(e) => Err(e),
        };
        if sent.is_err()
            && let Err(abort) = upload.abort().await
        {
            // The bucket's lifecycle rule removes incomplete uploads.
            tracing::warn!(error = %abort, "could not abort the multipart upload");
        }
        sent
    }

    async fn presign_get(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let config =
            PresigningConfig::expires_in(ttl).map_err(|e| StoreError::Other(e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(content_type)
            .response_content_disposition(content_disposition)
            .presigned(config)
            .await
            .map_err(classify)?;
        Ok(req.uri().to_owned())
    }
}
