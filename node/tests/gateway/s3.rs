//! The S3 gateway with real clients: rclone's s3 backend copies a tree in,
//! `rclone check --download` compares it byte for byte, then files and a
//! folder are moved and deleted; boto3 pages through 2,500 keys, reads
//! ranges byte for byte, and is refused without a valid signature or with
//! a body unlike the checksum it came with.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Cluster, random_bytes};
use crate::tool;
use crate::webdav::{Gateway, rclone, start};

/// A running `ifsnode serve --s3` and the key it accepts; killed on drop.
pub struct S3Gateway {
    _serve: Gateway,
    pub url: String,
    pub key_id: String,
    pub secret: String,
}

/// `ifsnode s3-key ARGS` with the cluster's user home (no node needed).
fn s3_key(c: &Cluster, args: &[&str]) -> std::process::Output {
    let out = Command::new(crate::support::bin())
        .arg("s3-key")
        .args(args)
        .env("IFS_HOME", c.home())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "s3-key {args:?}: {}",
        crate::support::stderr(&out)
    );
    out
}

/// Make an access key and start `serve --s3` through node 0.
pub fn serve_s3(c: &Cluster) -> S3Gateway {
    let made = s3_key(c, &["create", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let serve = start(c, "--s3");
    S3Gateway {
        url: serve.url.trim_end_matches('/').to_string(),
        _serve: serve,
        key_id: v["access_key_id"].as_str().unwrap().to_string(),
        secret: v["secret_access_key"].as_str().unwrap().to_string(),
    }
}

/// Run a Python script with boto3 against the gateway; its stdout.
pub fn boto3(gw: &S3Gateway, dir: &Path, script: &str, args: &[&str]) -> String {
    let path = dir.join("s3test.py");
    let prelude = r#"
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"],
    aws_access_key_id=os.environ["S3_KEY"], aws_secret_access_key=os.environ["S3_SECRET"],
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
"#;
    std::fs::write(&path, format!("{prelude}\n{script}")).unwrap();
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .env("S3_URL", &gw.url)
        .env("S3_KEY", &gw.key_id)
        .env("S3_SECRET", &gw.secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Whether boto3 can be imported (under CI it must).
pub fn have_boto3() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "boto3 is missing and CI is set: pip install boto3 (.ci/run does)"
        );
        eprintln!("SKIPPED: python3 -c 'import boto3' failed; CI is not set");
    }
    ok
}

#[test]
fn rclone_s3_copies_checks_moves_and_deletes_a_tree() {
    if tool("rclone", "rclone").is_none() {
        return;
    }
    let c = Cluster::start(3);
    let gw = serve_s3(&c);
    let src = c.dir.path().join("src");
    for i in 0..30 {
        let p = src.join(format!("d{}/sub/f{i:02}", i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, random_bytes(i * 131)).unwrap();
    }
    std::fs::write(src.join("big.bin"), random_bytes(9 << 20)).unwrap();
    let conf = c.dir.path().join("rclone.conf");
    std::fs::write(
        &conf,
        format!(
            "[ifs]\ntype = s3\nprovider = Other\nendpoint = {}\naccess_key_id = {}\n\
             secret_access_key = {}\nforce_path_style = true\nregion = us-east-1\n",
            gw.url, gw.key_id, gw.secret
        ),
    )
    .unwrap();
    let s = src.to_str().unwrap();
    rclone(&conf, &["mkdir", "ifs:drive"]);
    rclone(&conf, &["copy", s, "ifs:drive/tree"]);
    let check = rclone(&conf, &["check", "--download", s, "ifs:drive/tree"]);
    assert!(check.contains("0 differences found"), "{check}");
    assert!(check.contains("31 matching files"), "{check}");
    // The bucket is a folder of the user's: the CLI sees the same files.
    let ls = c.ok(1, &["ls", "-r", "drive/tree/d0"]);
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("drive/tree/d0/sub/f00"),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );

    rclone(
        &conf,
        &[
            "moveto",
            "ifs:drive/tree/big.bin",
            "ifs:drive/tree/d0/big-moved.bin",
        ],
    );
    rclone(&conf, &["move", "ifs:drive/tree/d1", "ifs:drive/tree/d9"]);
    rclone(&conf, &["delete", "ifs:drive/tree/d2/sub/f02"]);
    let listed = rclone(&conf, &["lsf", "-R", "--files-only", "ifs:drive/tree"]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    assert!(names.contains(&"d0/big-moved.bin"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("d1/") || *n == "big.bin"),
        "{names:?}"
    );
    assert!(names.contains(&"d9/sub/f01"), "{names:?}");
    assert!(!names.contains(&"d2/sub/f02"), "{names:?}");
    assert_eq!(names.len(), 30, "{names:?}");
    let back = c.dir.path().join("back.bin");
    rclone(
        &conf,
        &[
            "copyto",
            "ifs:drive/tree/d0/big-moved.bin",
            back.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&back).unwrap() == std::fs::read(src.join("big.bin")).unwrap());
    rclone(&conf, &["purge", "ifs:drive/tree/d9"]);
    let listed = rclone(&conf, &["lsf", "-R", "ifs:drive/tree"]);
    assert!(!listed.lines().any(|l| l.starts_with("d9/")), "{listed}");
}

#[test]
fn boto3_pages_through_2500_keys_and_reads_ranges_byte_for_byte() {
    if !have_boto3() {
        return;
    }
    let c = Cluster::start(3);
    // 2,500 keys in five folders, stored by one tree put.
    let tree = c.dir.path().join("tree");
    for i in 0..2_500 {
        let p = tree.join(format!("k{}/obj-{i:05}", i % 5));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{i}")).unwrap();
    }
    c.ok(0, &["put", "-r", tree.to_str().unwrap(), "pages"]);
    let gw = serve_s3(&c);
    let big = c.dir.path().join("big.bin");
    std::fs::write(&big, random_bytes(20 << 20)).unwrap();
    let out = boto3(
        &gw,
        c.dir.path(),
        r#"
big = open(sys.argv[1], "rb").read()
# Pagination over 2,500 keys, 1,000 at most per page.
pages, keys, token = 0, [], None
while True:
    kw = {"Bucket": "pages", "MaxKeys": 1000}
    if token:
        kw["ContinuationToken"] = token
    r = s3.list_objects_v2(**kw)
    pages += 1
    keys += [o["Key"] for o in r.get("Contents", [])]
    assert r["KeyCount"] == len(r.get("Contents", [])), r["KeyCount"]
    if not r["IsTruncated"]:
        break
    token = r["NextContinuationToken"]
assert pages == 3, pages
assert len(keys) == 2500 and len(set(keys)) == 2500, len(keys)
assert keys == sorted(keys)
want = sorted("k%d/obj-%05d" % (i % 5, i) for i in range(2500))
assert keys == want
# The paginator of the client library, with a delimiter and a prefix.
pg = s3.get_paginator("list_objects_v2")
n = sum(len(p.get("Contents", [])) for p in pg.paginate(Bucket="pages", Prefix="k3/obj-01", PaginationConfig={"PageSize": 100}))
assert n == 200, n
r = s3.list_objects_v2(Bucket="pages", Delimiter="/")
assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["k0/", "k1/", "k2/", "k3/", "k4/"], r
assert "Contents" not in r or not r["Contents"], r
# v1 listing with markers.
r = s3.list_objects(Bucket="pages", Prefix="k1/", MaxKeys=300)
assert len(r["Contents"]) == 300 and r["IsTruncated"], r["IsTruncated"]
r2 = s3.list_objects(Bucket="pages", Prefix="k1/", Marker=r["NextMarker"])
assert len(r2["Contents"]) == 200 and not r2["IsTruncated"]
# One object's bytes.
assert s3.get_object(Bucket="pages", Key="k2/obj-00007")["Body"].read() == b"7"
# A small object is copied by naming its bytes again; both read back.
s3.copy_object(Bucket="pages", Key="copies/obj-7", CopySource={"Bucket": "pages", "Key": "k2/obj-00007"})
assert s3.get_object(Bucket="pages", Key="copies/obj-7")["Body"].read() == b"7"
assert s3.get_object(Bucket="pages", Key="k2/obj-00007")["Body"].read() == b"7"
# Folder keys: PutObject of "made/" makes a folder; HEAD finds it (and a
# folder its objects made), empty; a folder that is not there is a 404.
s3.put_object(Bucket="pages", Key="made/", Body=b"")
assert s3.head_object(Bucket="pages", Key="made/")["ContentLength"] == 0
assert s3.head_object(Bucket="pages", Key="k1/")["ContentLength"] == 0
try:
    s3.head_object(Bucket="pages", Key="none/")
    raise SystemExit("a folder that is not there was found")
except s3.exceptions.ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
# A 20 MiB object, then ranges across and within chunks.
s3.create_bucket(Bucket="ranges")
s3.put_object(Bucket="ranges", Key="a/big.bin", Body=big)
h = s3.head_object(Bucket="ranges", Key="a/big.bin")
assert h["ContentLength"] == len(big), h
M = 8 << 20
for spec, lo, hi in [("0-0", 0, 1), ("100-%d" % (M + 99), 100, M + 100),
                     ("%d-%d" % (M - 1, M), M - 1, M + 1), ("%d-" % (2 * M + 5), 2 * M + 5, len(big)),
                     ("-1000", len(big) - 1000, len(big)), ("0-", 0, len(big))]:
    r = s3.get_object(Bucket="ranges", Key="a/big.bin", Range="bytes=" + spec)
    body = r["Body"].read()
    assert body == big[lo:hi], (spec, len(body))
    assert r["ContentRange"] == "bytes %d-%d/%d" % (lo, hi - 1, len(big)), r["ContentRange"]
try:
    s3.get_object(Bucket="ranges", Key="a/big.bin", Range="bytes=%d-" % len(big))
    raise SystemExit("a range past the end was served")
except s3.exceptions.ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 416, e.response
# Copy, then delete many at once.
s3.copy_object(Bucket="ranges", Key="b/copy.bin", CopySource={"Bucket": "ranges", "Key": "a/big.bin"})
assert s3.get_object(Bucket="ranges", Key="b/copy.bin")["Body"].read() == big
r = s3.delete_objects(Bucket="ranges", Delete={"Objects": [{"Key": "a/big.bin"}, {"Key": "b/copy.bin"}, {"Key": "never/was"}]})
assert sorted(d["Key"] for d in r["Deleted"]) == ["a/big.bin", "b/copy.bin", "never/was"], r
assert not s3.list_objects_v2(Bucket="ranges").get("Contents")
try:
    s3.head_object(Bucket="ranges", Key="a/big.bin")
    raise SystemExit("a deleted object is still there")
except s3.exceptions.ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
print("ok")
"#,
        &[big.to_str().unwrap()],
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn forged_or_corrupt_requests_are_refused_and_change_nothing() {
    if !have_boto3() {
        return;
    }
    let c = Cluster::start(3);
    let gw = serve_s3(&c);
    let out = boto3(
        &gw,
        c.dir.path(),
        r#"
import botocore
s3.create_bucket(Bucket="vault")
s3.put_object(Bucket="vault", Key="secret.txt", Body=b"mine")
def refused(client, what):
    try:
        what(client)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise SystemExit("served without a valid signature")
bad_secret = boto3.client("s3", endpoint_url=os.environ["S3_URL"],
    aws_access_key_id=os.environ["S3_KEY"], aws_secret_access_key="x" * 40,
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
unknown = boto3.client("s3", endpoint_url=os.environ["S3_URL"],
    aws_access_key_id="IFSAAAAAAAAAAAAAAAAA", aws_secret_access_key="x" * 40,
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
anon = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, signature_version=botocore.UNSIGNED))
for client in (bad_secret, unknown, anon):
    print(refused(client, lambda c: c.get_object(Bucket="vault", Key="secret.txt")))
    print(refused(client, lambda c: c.delete_object(Bucket="vault", Key="secret.txt")))
    print(refused(client, lambda c: c.put_object(Bucket="vault", Key="secret.txt", Body=b"theirs")))
    print(refused(client, lambda c: c.list_objects_v2(Bucket="vault")))
assert s3.get_object(Bucket="vault", Key="secret.txt")["Body"].read() == b"mine"
# A body unlike the checksum it came with is refused, whether the payload
# is signed or not (S3's payload_signing_enabled = false), whole or as a
# part; the object keeps its bytes.
import base64, hashlib, zlib
unsigned = boto3.client("s3", endpoint_url=os.environ["S3_URL"],
    aws_access_key_id=os.environ["S3_KEY"], aws_secret_access_key=os.environ["S3_SECRET"],
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                  retries={"max_attempts": 1}))
def digest_refused(what):
    try:
        what()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise SystemExit("a body unlike its checksum was stored")
b64 = lambda b: base64.b64encode(b).decode()
crc_of = lambda d: b64(zlib.crc32(d).to_bytes(4, "big"))
part = os.urandom(1 << 20)
for c in (s3, unsigned):
    print("digest", digest_refused(lambda: c.put_object(Bucket="vault", Key="secret.txt",
        Body=b"theirs", ChecksumCRC32=crc_of(b"their"))))
    print("digest", digest_refused(lambda: c.put_object(Bucket="vault", Key="secret.txt",
        Body=b"theirs", ContentMD5=b64(hashlib.md5(b"their").digest()))))
    print("digest", digest_refused(lambda: c.put_object(Bucket="vault", Key="secret.txt",
        Body=b"theirs", ChecksumSHA256=b64(hashlib.sha256(b"their").digest()))))
    up = c.create_multipart_upload(Bucket="vault", Key="secret.txt")["UploadId"]
    print("digest", digest_refused(lambda: c.upload_part(Bucket="vault", Key="secret.txt",
        UploadId=up, PartNumber=1, Body=part, ChecksumCRC32=crc_of(part[1:]))))
    assert not c.list_parts(Bucket="vault", Key="secret.txt", UploadId=up).get("Parts")
    c.abort_multipart_upload(Bucket="vault", Key="secret.txt", UploadId=up)
    assert s3.get_object(Bucket="vault", Key="secret.txt")["Body"].read() == b"mine"
# The right checksums, signed payload or not, store the bytes.
unsigned.put_object(Bucket="vault", Key="unsigned.bin", Body=part, ChecksumCRC32=crc_of(part))
assert s3.get_object(Bucket="vault", Key="unsigned.bin")["Body"].read() == part
s3.put_object(Bucket="vault", Key="md5.bin", Body=part, ContentMD5=b64(hashlib.md5(part).digest()))
assert unsigned.get_object(Bucket="vault", Key="md5.bin")["Body"].read() == part
print("ok")
"#,
        &[],
    );
    assert!(out.trim_end().ends_with("ok"), "{out}");
    let digests: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("digest "))
        .collect();
    assert_eq!(digests, ["BadDigest"; 8], "{out}");
    let codes: Vec<&str> = out
        .lines()
        .filter(|l| *l != "ok" && !l.starts_with("digest "))
        .collect();
    assert_eq!(codes.len(), 12, "{out}");
    assert!(
        codes.iter().all(|c| [
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AccessDenied"
        ]
        .contains(c)),
        "{codes:?}"
    );
    // A deleted key is refused at once, without restarting the gateway.
    s3_key(&c, &["delete", &gw.key_id]);
    let out = Command::new("python3")
        .args([
            "-c",
            "import os,boto3; from botocore.config import Config; \
             s3=boto3.client('s3',endpoint_url=os.environ['S3_URL'],aws_access_key_id=os.environ['S3_KEY'],\
             aws_secret_access_key=os.environ['S3_SECRET'],region_name='us-east-1',\
             config=Config(s3={'addressing_style':'path'})); s3.list_buckets()",
        ])
        .env("S3_URL", &gw.url)
        .env("S3_KEY", &gw.key_id)
        .env("S3_SECRET", &gw.secret)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidAccessKeyId"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_multipart_upload_cut_mid_way_resumes_from_the_parts_uploaded() {
    if !have_boto3() {
        return;
    }
    const REPLICAS: u64 = 3;
    const PART: u64 = 8 << 20;
    let c = Cluster::start_with(3, &["--admin-listen", "127.0.0.1:0"]);
    let admin: Vec<String> = (0..3)
        .map(|i| crate::http::admin_addr(&c.data_dir(i)))
        .collect();
    let gw = serve_s3(&c);
    let big = c.dir.path().join("big.bin");
    let data = random_bytes(200 << 20);
    std::fs::write(&big, &data).unwrap();
    boto3(&gw, c.dir.path(), "s3.create_bucket(Bucket='backups')", &[]);
    let before = crate::http::chunk_bytes_received(&admin);

    // The first client uploads parts one after another and is killed
    // after part 12 of 25.
    let script = c.dir.path().join("first.py");
    std::fs::write(
        &script,
        r#"
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"],
    aws_access_key_id=os.environ["S3_KEY"], aws_secret_access_key=os.environ["S3_SECRET"],
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
up = s3.create_multipart_upload(Bucket="backups", Key="disk/big.bin")["UploadId"]
print("upload", up, flush=True)
M = 8 << 20
with open(sys.argv[1], "rb") as f:
    n = 1
    while True:
        chunk = f.read(M)
        if not chunk:
            break
        s3.upload_part(Bucket="backups", Key="disk/big.bin", UploadId=up, PartNumber=n, Body=chunk)
        print("part", n, flush=True)
        n += 1
"#,
    )
    .unwrap();
    let mut first = Command::new("python3")
        .arg(&script)
        .arg(&big)
        .env("S3_URL", &gw.url)
        .env("S3_KEY", &gw.key_id)
        .env("S3_SECRET", &gw.secret)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut upload_id = String::new();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(first.stdout.take().unwrap()));
    for line in lines {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("upload ") {
            upload_id = id.to_string();
        }
        if line == "part 12" {
            break;
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!upload_id.is_empty());

    // A second client finds the parts already uploaded, sends the rest and
    // completes; the object reads back whole and by ranges across parts.
    let out = boto3(
        &gw,
        c.dir.path(),
        r#"
import hashlib
up, path = sys.argv[1], sys.argv[2]
done = {p["PartNumber"]: p for p in s3.list_parts(Bucket="backups", Key="disk/big.bin", UploadId=up)["Parts"]}
print("already", len(done))
assert set(done) == set(range(1, len(done) + 1)), sorted(done)
M = 8 << 20
parts = []
with open(path, "rb") as f:
    n = 1
    while True:
        chunk = f.read(M)
        if not chunk:
            break
        if n in done:
            etag = done[n]["ETag"]
        else:
            etag = s3.upload_part(Bucket="backups", Key="disk/big.bin", UploadId=up, PartNumber=n, Body=chunk)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
        n += 1
first = s3.complete_multipart_upload(Bucket="backups", Key="disk/big.bin", UploadId=up, MultipartUpload={"Parts": parts})
# A Complete retried after it succeeded (its answer lost) gets the same answer.
again = s3.complete_multipart_upload(Bucket="backups", Key="disk/big.bin", UploadId=up, MultipartUpload={"Parts": parts})
assert again["ETag"] == first["ETag"], (first, again)
assert not s3.list_multipart_uploads(Bucket="backups").get("Uploads")
data = open(path, "rb").read()
got = s3.get_object(Bucket="backups", Key="disk/big.bin")["Body"].read()
assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), len(got)
for lo, hi in [(M - 10, M + 10), (5 * M + 3, 9 * M), (len(data) - M - 1, len(data) - 1)]:
    r = s3.get_object(Bucket="backups", Key="disk/big.bin", Range="bytes=%d-%d" % (lo, hi))
    assert r["Body"].read() == data[lo:hi + 1], (lo, hi)
print("ok")
"#,
        &[&upload_id, big.to_str().unwrap()],
    );
    assert!(out.trim_end().ends_with("ok"), "{out}");
    let already: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("already "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((12..=13).contains(&already), "{out}");

    // What the nodes received: every byte R times, plus at most the part
    // in flight when the first client died and the final chunk sealed
    // again as the file's last (the last part was a full one), plus the
    // chunks' tags.
    let got = crate::http::chunk_bytes_received(&admin) - before;
    let size = data.len() as u64;
    let slack = 2 * PART * REPLICAS + 25 * 1024 * REPLICAS;
    eprintln!(
        "a 200 MiB multipart upload resumed after {already} parts: nodes received {got} bytes"
    );
    assert!(got >= size * REPLICAS, "{got}: some copy was never stored");
    assert!(
        got <= size * REPLICAS + slack,
        "sent {} bytes again, more than a part in flight and a resealed chunk",
        got - size * REPLICAS
    );
    // The same file through the CLI and another node.
    let back = c.dir.path().join("back.bin");
    c.ok(2, &["get", "backups/disk/big.bin", back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == data);
}
