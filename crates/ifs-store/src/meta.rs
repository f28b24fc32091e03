//! Small keyed state in the local table: this node's receipts for the chunks
//! it holds, and the node's own tables (DHT records, node table, reputation)
//! so that all of a node's durable state lives in one redb file.

use crate::engine::Engine;
use crate::error::{StoreError, StoreResult};
use crate::tables::{MetaTable, RECEIPTS};
use ifs_core::ChunkId;
use redb::ReadableDatabase;

impl Engine {
    pub fn set_receipt(&self, chunk: &ChunkId, receipt: &[u8]) -> StoreResult<()> {
        if self.chunk_row(chunk)?.is_none() {
            return Err(StoreError::Missing { chunk: *chunk });
        }
        self.write(|txn| {
            let mut t = txn.open_table(RECEIPTS).map_err(self.dbe())?;
            t.insert(&chunk.0, receipt).map_err(self.dbe())?;
            Ok(())
        })
    }

    pub fn receipt(&self, chunk: &ChunkId) -> StoreResult<Option<Vec<u8>>> {
        self.get_bytes(RECEIPTS, &chunk.0)
    }

    pub fn meta_put(&self, table: MetaTable, key: &[u8], value: &[u8]) -> StoreResult<()> {
        self.write(|txn| {
            let mut t = txn.open_table(table.definition()).map_err(self.dbe())?;
            t.insert(key, value).map_err(self.dbe())?;
            Ok(())
        })
    }

    pub fn meta_get(&self, table: MetaTable, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.get_bytes(table.definition(), key)
    }

    pub fn meta_delete(&self, table: MetaTable, key: &[u8]) -> StoreResult<bool> {
        self.write(|txn| {
            let mut t = txn.open_table(table.definition()).map_err(self.dbe())?;
            let old = t.remove(key).map_err(self.dbe())?;
            Ok(old.is_some())
        })
    }

    pub fn meta_list(
        &self,
        table: MetaTable,
        prefix: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(self.dbe())?;
        let t = txn.open_table(table.definition()).map_err(self.dbe())?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(self.dbe())? {
            let (k, v) = row.map_err(self.dbe())?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn get_bytes<'a, K: redb::Key + 'static>(
        &self,
        def: redb::TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'a>>,
    ) -> StoreResult<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(self.dbe())?;
        let t = txn.open_table(def).map_err(self.dbe())?;
        Ok(t.get(key).map_err(self.dbe())?.map(|v| v.value().to_vec()))
    }
}
