//! Errors of client operations.

use ifs_core::proto::CtlError;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The swarm could not start.
    #[error("network: {0}")]
    Net(ifs_net::NetError),
    /// The entry node could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A request failed in transport or returned garbage.
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{peer} refused: {error}")]
    Node {
        /// The peer that refused.
        peer: String,
        /// Its answer.
        error: CtlError,
    },
    /// The node answered with a message that does not fit the request.
    #[error("unexpected answer from {peer}: {what}")]
    Unexpected {
        /// The peer.
        peer: String,
        /// What arrived.
        what: String,
    },
}

/// Why a receipt handed back for a chunk was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The signature does not verify under the node it names.
    #[error("receipt from {node}: {reason}")]
    BadSignature {
        /// The node the receipt names.
        node: String,
        /// Why verification failed.
        reason: String,
    },
    /// The receipt is for another chunk.
    #[error("receipt from {node} is for another chunk")]
    WrongChunk {
        /// The node.
        node: String,
    },
    /// The receipt gives the chunk another length.
    #[error("receipt from {node} says {got} bytes, the chunk has {want}")]
    WrongLength {
        /// The node.
        node: String,
        /// Length in the receipt.
        got: u64,
        /// The chunk's length.
        want: u64,
    },
    /// The receipt names another owner.
    #[error("receipt from {node} names another owner")]
    WrongOwner {
        /// The node.
        node: String,
    },
    /// The receipt binds the chunk to another file record.
    #[error("receipt from {node} names another file record")]
    WrongRecord {
        /// The node.
        node: String,
    },
    /// The signer was not on the chunk's header chain.
    #[error("receipt from {node}, which is not on the chunk's chain")]
    NotInChain {
        /// The node.
        node: String,
    },
}

/// Errors of `put`.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// Talking to the entry node failed.
    #[error(transparent)]
    Session(#[from] ClientError),
    /// Encoding the input failed (reading it, or the codec).
    #[error("encoding failed: {0}")]
    Codec(#[from] ifs_core::CodecError),
    /// The file would have more chunks than any manifest, paged, can list;
    /// refused before anything is uploaded (or, for input of unknown size,
    /// as soon as it passes the limit).
    #[error(
        "the file needs {chunks} chunks of {segment} bytes, more than the {max} a file may have; \
         use a larger segment size"
    )]
    TooManyChunks {
        /// Chunks the file needs.
        chunks: u64,
        /// Most chunks a file may have.
        max: u64,
        /// Segment size in bytes.
        segment: u64,
    },
    /// Not enough usable nodes to place R replicas at all.
    #[error(
        "{usable} usable {}, {replicas} replicas asked{discarded}",
        if *usable == 1 { "node" } else { "nodes" }
    )]
    NotEnoughNodes {
        /// Nodes that passed probing and granted a reservation.
        usable: usize,
        /// The replication factor asked.
        replicas: usize,
        /// Why the others were dropped (", a: why; b: why").
        discarded: String,
    },
    /// A chunk could not reach R receipts from the preliminary table.
    #[error(
        "chunk {index} ({chunk}) has {have} of {replicas} replicas and no node left to try; \
         holders: [{holders}]; failed: [{failed}]"
    )]
    Replicas {
        /// Position of the chunk.
        index: u32,
        /// The chunk.
        chunk: String,
        /// Verified receipts.
        have: usize,
        /// Replicas asked.
        replicas: usize,
        /// Nodes holding it.
        holders: String,
        /// Nodes that failed it and why.
        failed: String,
    },
    /// A signed message could not be built (a name too long, too many chunks).
    #[error("cannot build the record: {0}")]
    Build(#[from] ifs_core::wire::WireError),
    /// The record could not be assembled.
    #[error("cannot build the record: {0}")]
    Record(#[from] ifs_core::crdt::RecordError),
    /// Wrapping the file key failed.
    #[error("cannot wrap the file key: {0}")]
    Key(#[from] ifs_core::keys::KeyError),
    /// The encoder thread stopped without a result.
    #[error("the encoder stopped unexpectedly")]
    EncoderGone,
    /// The folder records of a tree could not be read or written.
    #[error("cannot write the folders: {0}")]
    Folders(#[source] GetError),
    /// A commit found segments of the file that were never placed.
    #[error("the upload lacks chunks {}", shown(missing))]
    Incomplete {
        /// Their indices (all of them).
        missing: Vec<u32>,
    },
    /// A run of segments that does not end the file ended with a short one.
    #[error(
        "segment {index} holds {len} bytes: only the file's final segment may hold fewer than {segment}"
    )]
    NotWholeSegments {
        /// The short segment.
        index: u32,
        /// Its plaintext bytes.
        len: u64,
        /// The upload's segment size.
        segment: u64,
    },
    /// The size given to a commit is not what the placed chunks hold.
    #[error("the file was said to hold {size} bytes, its chunks hold {placed}")]
    SizeMismatch {
        /// The size asked.
        size: u64,
        /// What the chunks hold.
        placed: u64,
    },
    /// Chunks were placed too long ago to rely on nodes still keeping them
    /// (see `upload::RESUME_WINDOW`): they must be sent again.
    #[error(
        "chunks {} were placed too long ago and must be sent again",
        shown(indices)
    )]
    Stale {
        /// Their indices.
        indices: Vec<u32>,
    },
    /// The name got a version at or above the upload's since it began.
    #[error(
        "the upload was for version {version}, and version {newest} was written since; start over"
    )]
    Superseded {
        /// The upload's version.
        version: u64,
        /// The newest version signed for the name.
        newest: u64,
    },
    /// The final chunk could not be fetched back to seal it as last.
    #[error("cannot seal chunk {index} as the file's last: {reason}")]
    Reseal {
        /// The chunk.
        index: u32,
        /// What every holder answered.
        reason: String,
    },
    /// The upload's state file could not be read or written.
    #[error("upload state {}: {source}", path.display())]
    StateIo {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The upload's state file is damaged or from another build.
    #[error("upload state {} is unusable: {reason}", path.display())]
    StateCorrupt {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The upload's state belongs to another key or file.
    #[error("upload state does not match: {what}")]
    StateMismatch {
        /// What differs.
        what: &'static str,
    },
}

/// A list of chunk indices for an error line: the first few, then a count.
fn shown(indices: &[u32]) -> String {
    const SHOWN: usize = 8;
    let head: Vec<String> = indices.iter().take(SHOWN).map(u32::to_string).collect();
    match indices.len() {
        n if n <= SHOWN => head.join(", "),
        n => format!("{} and {} more", head.join(", "), n - SHOWN),
    }
}

/// Errors of `get`, `ls` and `rm`: reading and changing records.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// Talking to the entry node failed.
    #[error(transparent)]
    Session(#[from] ClientError),
    /// No such file (or it was deleted).
    #[error("no file named {0:?}")]
    NotFound(String),
    /// A packed file's entry names a pack that does not hold it.
    #[error("the pack holding {name:?} is unusable: {why}")]
    BadPack {
        /// The file.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// The record did not verify (owner signature, receipts, structure).
    #[error("the record of {name:?} is invalid: {source}")]
    BadRecord {
        /// The file.
        name: String,
        /// What failed.
        source: ifs_core::crdt::RecordError,
    },
    /// The record is not the one asked for (another owner or name).
    #[error("the record returned for {0:?} belongs to another owner or file")]
    ForeignRecord(String),
    /// A page of a paged manifest is missing, deleted, or not the one its
    /// root names (a concurrent put may be replacing the file).
    #[error(
        "page {page} of {name:?} is missing or does not match its root; if the file is being replaced, try again"
    )]
    BadPage {
        /// The file.
        name: String,
        /// The page number (1-based; the root is 0).
        page: usize,
    },
    /// The manifest carries no key wrap for this user key: the file is not
    /// shared with it (or no longer is).
    #[error("{name:?} of user {owner} is not shared with this key")]
    NotShared {
        /// The file.
        name: String,
        /// Its owner (user id).
        owner: String,
    },
    /// The manifest carries no key wrap this user key opens.
    #[error("cannot open the file key: {0}")]
    Key(#[from] ifs_core::keys::KeyError),
    /// Every holder of a chunk failed.
    #[error("chunk {index} ({chunk}) could not be fetched: {tried}")]
    ChunkUnavailable {
        /// Position of the chunk.
        index: u32,
        /// The chunk.
        chunk: String,
        /// Each holder tried and why it failed.
        tried: String,
    },
    /// Decrypting or decompressing failed, or writing the output.
    #[error("decoding failed: {0}")]
    Codec(#[from] ifs_core::CodecError),
    /// A signed message could not be built.
    #[error("cannot build the update: {0}")]
    Build(#[from] ifs_core::wire::WireError),
    /// The decoder thread stopped without a result.
    #[error("the decoder stopped unexpectedly")]
    DecoderGone,
    /// A range read asked for bytes from at or past the end of the file
    /// (HTTP 416, S3 `InvalidRange`). A range that starts inside the file
    /// and runs past its end is not an error: it is cut at the end.
    #[error("{name:?} has {size} bytes: no byte at offset {offset}")]
    RangeNotSatisfiable {
        /// The file.
        name: String,
        /// The first byte asked for.
        offset: u64,
        /// The file's size.
        size: u64,
    },
    /// Setting these properties would put more than
    /// [`ifs_core::folder_record::MAX_PROPS`] properties, or more than
    /// [`ifs_core::folder_record::MAX_PROPS_BYTES`] bytes of them, on one
    /// file or folder (or name one property twice).
    #[error(
        "the properties of {0:?} would exceed {max} properties or {bytes} bytes",
        max = ifs_core::folder_record::MAX_PROPS,
        bytes = ifs_core::folder_record::MAX_PROPS_BYTES
    )]
    TooManyProps(String),
    /// The manifest's chunk count or segment size does not fit its size,
    /// so no byte offset can be mapped to a chunk.
    #[error("the manifest of {name:?} lists {chunks} chunks of {segment} bytes for {size} bytes")]
    BadGeometry {
        /// The file.
        name: String,
        /// Its stated size.
        size: u64,
        /// Chunks it lists.
        chunks: u64,
        /// Its segment size.
        segment: u64,
    },
    /// A file's entry could not be written into its folder record.
    #[error("its folder entry was not written: {0}")]
    Folder(String),
    /// A local file or folder could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// The local path.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// Why one fetch of a chunk from one node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The stream could not be opened or broke.
    #[error("transport: {0}")]
    Transport(String),
    /// The node refused.
    #[error("refused: {0}")]
    Refused(CtlError),
    /// The node announced a length other than the manifest's.
    #[error("announced {got} bytes, the manifest says {want}")]
    WrongLength {
        /// Announced.
        got: u64,
        /// Expected.
        want: u64,
    },
    /// The bytes do not hash to the chunk id.
    #[error("bytes do not match the chunk id")]
    IdMismatch,
}

/// Why a share or a revoke failed.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// Reading the file (record, key or, on revoke, the old content) failed.
    #[error(transparent)]
    Get(#[from] GetError),
    /// Writing the re-keyed copy failed (revoke); the old version is untouched.
    #[error("re-putting the file under a new key failed: {0}")]
    Put(#[from] PutError),
    /// Talking to the entry node failed.
    #[error(transparent)]
    Session(#[from] ClientError),
    /// The user tried to share a file with, or revoke, themselves.
    #[error("that is your own key: the owner always reads its files")]
    OwnKey,
    /// Revoke named a key the file is not shared with.
    #[error("{name:?} is not shared with user {user}")]
    NotShared {
        /// The file.
        name: String,
        /// The user named.
        user: String,
    },
    /// Too many readers for one manifest.
    #[error("{name:?} already has the most readers a file may have ({max})")]
    TooManyReaders {
        /// The file.
        name: String,
        /// The cap.
        max: usize,
    },
    /// A key wrap could not be made (the grantee's x25519 key is unusable).
    #[error("cannot wrap the file key for the grantee: {0}")]
    Key(#[from] ifs_core::keys::KeyError),
    /// The new manifest could not be built.
    #[error("cannot build the new manifest: {0}")]
    Build(#[from] ifs_core::wire::WireError),
    /// The new manifest did not fit the record.
    #[error("cannot update the record: {0}")]
    Record(#[from] ifs_core::crdt::RecordError),
    /// The pipe between reading the old and putting the new copy failed.
    #[error("cannot set up the re-keying pipe: {0}")]
    Pipe(std::io::Error),
}
