//! An encoder's output: a buffer its writer appends to and the caller drains part by part.

use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    /// What a drained buffer is allocated with again when the next bytes come (0: grow).
    capacity: usize,
}

/// A handle to the buffer: one is given to the writer, one kept to drain it.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Output>>);

impl SharedBuffer {
    /// A buffer holding `bytes` already (a file's first bytes).
    pub fn starting_with(bytes: Vec<u8>) -> Self {
        Self(Arc::new(Mutex::new(Output {
            buf: bytes,
            capacity: 0,
        })))
    }

    /// Sizes each drained buffer once, at `bytes`, instead of growing it by doubling. The next
    /// buffer is only allocated when the next bytes come.
    pub fn set_capacity(&self, bytes: usize) {
        if let Ok(mut out) = self.0.lock() {
            out.capacity = bytes;
            let more = bytes.saturating_sub(out.buf.len());
            out.buf.reserve_exact(more);
        }
    }

    /// Bytes written and not yet taken.
    pub fn len(&self) -> usize {
        self.0.lock().map(|o| o.buf.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes what was written so far.
    pub fn take(&self) -> std::io::Result<Vec<u8>> {
        let mut out = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned buffer"))?;
        Ok(std::mem::take(&mut out.buf))
    }
}

impl std::io::Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut out = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned buffer"))?;
        if out.buf.capacity() == 0 {
            let capacity = out.capacity;
            out.buf.reserve_exact(capacity);
        }
        out.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
