//! The integrity checks a request asks for on its body: `Content-MD5`
//! and the `x-amz-checksum-*` values, sent as headers or, after an
//! aws-chunked body, as trailers. Each is computed as the body streams in
//! and compared when it ends; a mismatch refuses the request with
//! `BadDigest` before anything is stored, as S3 does.

use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::dto::Checksum;
use s3s::{S3Result, TrailingHeaders, s3_error};

/// One checksum S3 defines: its header, how to start computing it, and
/// where the computed value lands.
struct Algo {
    name: &'static str,
    start: fn(&mut ChecksumHasher),
    value: fn(&Checksum) -> Option<&str>,
}

/// The checksums S3 defines, in the order they are checked.
static ALGOS: [Algo; 5] = [
    Algo {
        name: "x-amz-checksum-crc32",
        start: |h| h.crc32 = Some(Crc32::new()),
        value: |c| c.checksum_crc32.as_deref(),
    },
    Algo {
        name: "x-amz-checksum-crc32c",
        start: |h| h.crc32c = Some(Crc32c::new()),
        value: |c| c.checksum_crc32c.as_deref(),
    },
    Algo {
        name: "x-amz-checksum-crc64nvme",
        start: |h| h.crc64nvme = Some(Crc64Nvme::new()),
        value: |c| c.checksum_crc64nvme.as_deref(),
    },
    Algo {
        name: "x-amz-checksum-sha1",
        start: |h| h.sha1 = Some(Sha1::new()),
        value: |c| c.checksum_sha1.as_deref(),
    },
    Algo {
        name: "x-amz-checksum-sha256",
        start: |h| h.sha256 = Some(Sha256::new()),
        value: |c| c.checksum_sha256.as_deref(),
    },
];

/// A request's declared checksums, computed over its body as it streams.
pub(crate) struct BodyCheck {
    hasher: ChecksumHasher,
    md5: Option<(Md5, String)>,
    /// Each declared checksum and its value, `None` when it comes in a
    /// trailer.
    want: Vec<(&'static Algo, Option<String>)>,
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
        for algo in &ALGOS {
            let value = text(algo.name)?;
            if value.is_none() && !announced.iter().any(|a| a == algo.name) {
                continue;
            }
            (algo.start)(&mut check.hasher);
            check.want.push((algo, value));
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
        for (algo, want) in self.want {
            let name = algo.name;
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
            let got = (algo.value)(&got).unwrap_or_default();
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
