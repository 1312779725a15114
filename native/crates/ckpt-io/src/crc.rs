//! CRC-32 (the zip checksum) of many buffers at once, spread over the cores.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The CRC-32 of each buffer, computed in parallel; results in input order.
pub fn crc32_many(buffers: &[&[u8]]) -> Vec<u32> {
    let results: Vec<AtomicUsize> = buffers.iter().map(|_| AtomicUsize::new(0)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(buffers.len()).max(1);
    // Biggest first, so one large buffer does not end up last on a single core.
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(buffers[i].len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    results[i].store(crc32fast::hash(buffers[i]) as usize, Ordering::Relaxed);
                }
            });
        }
    });
    results.into_iter().map(|r| r.into_inner() as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_in_order() {
        let empty: &[u8] = b"";
        let check: &[u8] = b"123456789";
        let big = vec![7u8; 5_000_000];
        assert_eq!(crc32_many(&[check, empty, &big, check]), vec![0xcbf43926, 0, crc32fast::hash(&big), 0xcbf43926]);
        assert_eq!(crc32_many(&[]), Vec::<u32>::new());
    }
}
