//! The integrity checks a request asks for on its body: `Content-MD5`
//! and the `x-amz-checksum-*` values, sent as headers or, after an
//! aws-chunked body, as trailers. Each is computed as the body streams in
//! and compared when it ends; a mismatch refuses the request with
//! `BadDigest` before anything is stored, as S3 does.

use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::{S3Result, TrailingHeaders, s3_error};

/// The checksum headers S3 defines, in the order they are checked.
const NAMES: [&str; 5] = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

/// A request's declared checksums, computed over its body as it streams.
pub(crate) struct BodyCheck {
    hasher: ChecksumHasher,
    md5: Option<(Md5, String)>,
    /// Each declared checksum: its header name and its value, `None`
    /// when it comes in a trailer.
    want: Vec<(&'static str, Option<String>)>,
    trailers: Option<TrailingHeaders>,
}

impl BodyCheck {
    /// The checks `headers` ask for. A malformed header refuses the
    /// request before its body is read.
    pub(crate) fn new(headers: &HeaderMap, trailers: Option<TrailingHeaders>) -> S3Result<Self> {
        let text = |name: &str| -> S3Result<Option<String>> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(|s| Some(s.trim().to_string()))
                    .map_err(|_| s3_error!(InvalidDigest, "{name} is not ASCII")),
            }
        };
        let announced: Vec<String> = headers
            .get_all("x-amz-trailer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        let mut check = BodyCheck {
            hasher: ChecksumHasher::default(),
            md5: None,
            want: Vec::new(),
            trailers,
        };
        for name in NAMES {
            let value = text(name)?;
            if value.is_none() && !announced.iter().any(|a| a == name) {
                continue;
            }
            match name {
                "x-amz-checksum-crc32" => check.hasher.crc32 = Some(Crc32::new()),
                "x-amz-checksum-crc32c" => check.hasher.crc32c = Some(Crc32c::new()),
                "x-amz-checksum-crc64nvme" => check.hasher.crc64nvme = Some(Crc64Nvme::new()),
                "x-amz-checksum-sha1" => check.hasher.sha1 = Some(Sha1::new()),
                _ => check.hasher.sha256 = Some(Sha256::new()),
            }
            check.want.push((name, value));
        }
        if let Some(md5) = text("content-md5")? {
            check.md5 = Some((Md5::new(), md5));
        }
        Ok(check)
    }

    /// Hash the next bytes of the body.
    pub(crate) fn update(&mut self, data: &[u8]) {
        if !self.want.is_empty() {
            self.hasher.update(data);
        }
        if let Some((md5, _)) = &mut self.md5 {
            md5.update(data);
        }
    }

    /// Compare what the body hashed to with what was declared.
    pub(crate) fn finish(self) -> S3Result<()> {
        if let Some((md5, want)) = self.md5 {
            let got = base64_simd::STANDARD.encode_to_string(md5.finalize());
            if got != want {
                return Err(s3_error!(
                    BadDigest,
                    "the Content-MD5 sent, {want}, does not match the body's, {got}"
                ));
            }
        }
        if self.want.is_empty() {
            return Ok(());
        }
        let trailers = self.trailers.and_then(|t| t.take());
        let got = self.hasher.finalize();
        for (name, want) in self.want {
            let want = match want {
                Some(v) => v,
                None => trailers
                    .as_ref()
                    .and_then(|t| t.get(name))
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string())
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidRequest,
                            "x-amz-trailer announced {name} but no such trailer came"
                        )
                    })?,
            };
            let got = match name {
                "x-amz-checksum-crc32" => got.checksum_crc32.as_deref(),
                "x-amz-checksum-crc32c" => got.checksum_crc32c.as_deref(),
                "x-amz-checksum-crc64nvme" => got.checksum_crc64nvme.as_deref(),
                "x-amz-checksum-sha1" => got.checksum_sha1.as_deref(),
                _ => got.checksum_sha256.as_deref(),
            }
            .unwrap_or_default();
            if got != want {
                return Err(s3_error!(
                    BadDigest,
                    "the {name} sent, {want}, does not match the body's, {got}"
                ));
            }
        }
        Ok(())
    }
}
