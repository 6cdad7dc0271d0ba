//! Sizes between the units platforms speak and the KiB of the REST API.

/// Bytes rounded up to whole KiB.
pub fn kib_from_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

pub fn bytes_from_kib(kib: u64) -> u64 {
    kib.saturating_mul(1024)
}

/// GiB (what Cinder speaks) in KiB.
pub fn kib_from_gib(gib: u64) -> u64 {
    gib.saturating_mul(1024 * 1024)
}

/// KiB rounded up to whole GiB.
pub fn gib_from_kib(kib: u64) -> u64 {
    kib.div_ceil(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_up_and_never_overflow() {
        assert_eq!(kib_from_bytes(0), 0);
        assert_eq!(kib_from_bytes(1), 1);
        assert_eq!(kib_from_bytes(1024), 1);
        assert_eq!(kib_from_bytes(1025), 2);
        assert_eq!(bytes_from_kib(3), 3072);
        assert_eq!(bytes_from_kib(u64::MAX), u64::MAX);
        assert_eq!(kib_from_gib(2), 2 * 1024 * 1024);
        assert_eq!(kib_from_gib(u64::MAX), u64::MAX);
        assert_eq!(gib_from_kib(1), 1);
        assert_eq!(gib_from_kib(1024 * 1024), 1);
        assert_eq!(gib_from_kib(1024 * 1024 + 1), 2);
    }
}
