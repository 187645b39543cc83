//! Random record IDs: version-4 UUIDs drawn in bulk from the OS.

/// Random version-4 UUIDs, drawn from a pool of OS randomness so that a
/// record costs no system call.
pub struct UuidPool {
    pool: Vec<u8>,
    used: usize,
}

impl Default for UuidPool {
    fn default() -> Self {
        UuidPool::new()
    }
}

impl UuidPool {
    const POOL_BYTES: usize = 16 * 256;

    /// An empty pool, filled on first use.
    pub fn new() -> UuidPool {
        UuidPool {
            pool: vec![0; Self::POOL_BYTES],
            used: Self::POOL_BYTES,
        }
    }

    /// The next random UUID, hyphenated, into `out` (cleared first).
    pub fn next_into(&mut self, out: &mut String) {
        if self.used + 16 > self.pool.len() {
            if getrandom::fill(&mut self.pool).is_err() {
                // No OS randomness: fall back to uuid's own source for this batch.
                for chunk in self.pool.chunks_mut(16) {
                    chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                }
            }
            self.used = 0;
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&self.pool[self.used..self.used + 16]);
        self.used += 16;
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        out.clear();
        let mut buf = uuid::Uuid::encode_buffer();
        out.push_str(id.hyphenated().encode_lower(&mut buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_random_v4() {
        let mut pool = UuidPool::new();
        let mut seen = std::collections::HashSet::new();
        let mut s = String::new();
        for _ in 0..1000 {
            pool.next_into(&mut s);
            let id = uuid::Uuid::parse_str(&s).unwrap();
            assert_eq!(id.get_version_num(), 4);
            assert!(seen.insert(s.clone()));
        }
    }
}
