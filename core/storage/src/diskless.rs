//! DISKLESS: a pool without storage, for resources that reach their data over the network.

use strata_model::kinds::ProviderKind;
use strata_model::observed::PoolState;

use crate::{BackingVolume, Provider, StorageError};

pub struct Diskless;

impl Provider for Diskless {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Diskless
    }

    fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn state(&self) -> Result<PoolState, StorageError> {
        Ok(PoolState {
            free_capacity_kib: i64::MAX as u64,
            total_capacity_kib: i64::MAX as u64,
            supports_snapshots: false,
            errors: Vec::new(),
        })
    }

    fn list(&self) -> Result<Vec<BackingVolume>, StorageError> {
        Ok(Vec::new())
    }

    fn ensure(
        &self,
        name: &str,
        _size_kib: u64,
        _current: Option<&BackingVolume>,
    ) -> Result<BackingVolume, StorageError> {
        Err(StorageError::Unsupported(format!(
            "volume '{name}' cannot be created in a diskless pool"
        )))
    }

    fn delete(&self, _name: &str, _current: Option<&BackingVolume>) -> Result<(), StorageError> {
        Ok(())
    }

    fn adopt(&self, _name: &str, _size_kib: u64) -> Result<Option<BackingVolume>, StorageError> {
        Ok(None)
    }
}
