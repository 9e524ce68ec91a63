//! Bounds-checked access to a guest's linear memory.
//!
//! Every pointer a guest hands the host goes through here. Pointers are the
//! guest's `i32`s read as unsigned; ranges are computed in `usize` (64-bit
//! hosts), so `ptr + len` cannot wrap. A range outside memory is `None`,
//! which the WASI functions turn into `EFAULT`: never a host panic.

/// `len` bytes at `ptr`.
pub(super) fn bytes(mem: &[u8], ptr: u32, len: usize) -> Option<&[u8]> {
    let start = ptr as usize;
    mem.get(start..start.checked_add(len)?)
}

/// `len` writable bytes at `ptr`.
pub(super) fn bytes_mut(mem: &mut [u8], ptr: u32, len: usize) -> Option<&mut [u8]> {
    let start = ptr as usize;
    mem.get_mut(start..start.checked_add(len)?)
}

/// The little-endian `u32` at `ptr`.
pub(super) fn read_u32(mem: &[u8], ptr: u32) -> Option<u32> {
    Some(u32::from_le_bytes(bytes(mem, ptr, 4)?.try_into().ok()?))
}

/// Writes `data` at `ptr`.
pub(super) fn write(mem: &mut [u8], ptr: u32, data: &[u8]) -> Option<()> {
    bytes_mut(mem, ptr, data.len())?.copy_from_slice(data);
    Some(())
}

/// Writes a little-endian `u32` at `ptr`.
pub(super) fn write_u32(mem: &mut [u8], ptr: u32, value: u32) -> Option<()> {
    write(mem, ptr, &value.to_le_bytes())
}

/// Writes a little-endian `u64` at `ptr`.
pub(super) fn write_u64(mem: &mut [u8], ptr: u32, value: u64) -> Option<()> {
    write(mem, ptr, &value.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_past_the_end_are_refused() {
        let mut mem = vec![0u8; 16];
        assert_eq!(bytes(&mem, 12, 4).map(<[u8]>::len), Some(4));
        assert!(bytes(&mem, 13, 4).is_none());
        assert!(bytes(&mem, u32::MAX, usize::MAX).is_none());
        assert_eq!(bytes(&mem, 16, 0).map(<[u8]>::len), Some(0));
        assert!(write_u64(&mut mem, 9, 1).is_none());
        assert!(write_u32(&mut mem, 12, 0x0403_0201).is_some());
        assert_eq!(&mem[12..], &[1, 2, 3, 4]);
        assert_eq!(read_u32(&mem, 12), Some(0x0403_0201));
        assert_eq!(read_u32(&mem, 13), None);
    }
}
