//! The file a dumped [`Graph`] is written to, and read back from. One file:
//!
//! ```text
//! magic "VXGRAPH\0" | version u32 | dimension u32 | nodes u64
//! vectors: nodes × dimension f32
//! per node: top layer u8, then per layer 0..=top: count u16, count × u32 links
//! checksum u64 of every byte before it
//! ```
//!
//! All integers and floats are little-endian. The checksum is a 64-bit
//! multiply-xorshift hash over 8-byte words. It catches a torn or bit-rotted
//! file; it is not a cryptographic seal. Writing goes through a buffered
//! writer; the caller fsyncs and renames (see [`super::disk`]). Reading
//! checks the magic, version, sizes, checksum and every link's bounds
//! before it builds anything, so a bad file is an error, never a panic.

use std::io::{self, Write};

use super::graph::{Graph, MAX_LAYERS};
use super::segment::HnswParams;
use super::vectors::VectorStore;
use super::walk::WalkDistance;

const MAGIC: &[u8; 8] = b"VXGRAPH\0";
const VERSION: u32 = 1;

/// A streaming checksum over 8-byte little-endian words; a short last word
/// is zero-padded and the total length mixed in.
#[derive(Default)]
struct Checksum {
    state: u64,
    carry: [u8; 8],
    carried: usize,
    total: u64,
}

impl Checksum {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.state ^= self.state >> 29;
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.carried > 0 {
            let take = (8 - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.carry));
            self.carried = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    fn finish(mut self) -> u64 {
        if self.carried > 0 {
            self.carry[self.carried..].fill(0);
            self.mix(u64::from_le_bytes(self.carry));
        }
        let total = self.total;
        self.mix(total);
        self.state
    }
}

/// A writer that checksums what passes through it.
struct Summed<W: Write> {
    inner: W,
    sum: Checksum,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sum.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// Writes the first `len` nodes of `graph` (links past them left out).
pub fn write(graph: &Graph, len: usize, out: impl Write) -> io::Result<()> {
    let mut out = Summed {
        inner: io::BufWriter::with_capacity(1 << 20, out),
        sum: Checksum::default(),
    };
    let len = len.min(graph.len());
    let dimension = graph.with_vectors(VectorStore::dimension);
    out.put(MAGIC)?;
    out.put(&VERSION.to_le_bytes())?;
    out.put(&(dimension as u32).to_le_bytes())?;
    out.put(&(len as u64).to_le_bytes())?;
    graph.with_vectors(|vectors| -> io::Result<()> {
        let mut row = Vec::with_capacity(dimension * 4);
        for offset in 0..len {
            row.clear();
            row.extend(vectors.get(offset).iter().flat_map(|x| x.to_le_bytes()));
            out.put(&row)?;
        }
        Ok(())
    })?;
    let mut failed = None;
    let mut bytes = Vec::new();
    graph.read_prefix(len, |_, node| {
        if failed.is_some() {
            return;
        }
        bytes.clear();
        bytes.push(node.level as u8);
        for layer in node.links {
            bytes.extend_from_slice(&(layer.len() as u16).to_le_bytes());
            bytes.extend(layer.iter().flat_map(|n| n.to_le_bytes()));
        }
        if let Err(e) = out.put(&bytes) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let sum = std::mem::take(&mut out.sum).finish();
    out.inner.write_all(&sum.to_le_bytes())?;
    out.inner.flush()
}

/// A cursor over the file's bytes that names what it found missing.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("file ends inside {what} at byte {}", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        Ok(u64::from_le_bytes(w))
    }
}

/// Reads a graph written by [`write`]; the error says what is wrong.
pub fn read(
    bytes: &[u8],
    distance: WalkDistance,
    params: HnswParams,
    seed: u64,
) -> Result<Graph, String> {
    let Some(body_len) = bytes.len().checked_sub(8) else {
        return Err(format!(
            "{} bytes is too short for a graph file",
            bytes.len()
        ));
    };
    let (body, stored) = bytes.split_at(body_len);
    let mut sum = Checksum::default();
    sum.update(body);
    let mut word = [0u8; 8];
    word.copy_from_slice(stored);
    if sum.finish() != u64::from_le_bytes(word) {
        return Err("checksum mismatch: the file is torn or corrupt".into());
    }
    let mut cursor = Cursor { bytes: body, at: 0 };
    if cursor.take(8, "the magic")? != MAGIC {
        return Err("not a Vectron graph file (bad magic)".into());
    }
    let version = cursor.u32("the version")?;
    if version != VERSION {
        return Err(format!("graph file version {version} (expected {VERSION})"));
    }
    let dimension = cursor.u32("the dimension")? as usize;
    let nodes = usize::try_from(cursor.u64("the node count")?)
        .map_err(|_| "node count does not fit this machine".to_string())?;
    let vector_bytes = nodes
        .checked_mul(dimension)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| format!("{nodes} × {dimension} vectors overflow"))?;
    let raw = cursor.take(vector_bytes, "the vectors")?;
    let mut vectors = VectorStore::new();
    let mut row = Vec::with_capacity(dimension);
    for chunk in raw.chunks_exact((dimension * 4).max(1)).take(nodes) {
        row.clear();
        row.extend(
            chunk
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        vectors.push(&row);
    }
    let mut links = Vec::with_capacity(nodes);
    for node in 0..nodes {
        let level = cursor.u8("a node's layer")? as usize;
        if level >= MAX_LAYERS {
            return Err(format!(
                "node {node} on layer {level} (at most {MAX_LAYERS})"
            ));
        }
        let mut layers = Vec::with_capacity(level + 1);
        for _ in 0..=level {
            let count = cursor.u16("a link count")? as usize;
            let mut list = Vec::with_capacity(count);
            for _ in 0..count {
                let link = cursor.u32("a link")?;
                if link as usize >= nodes {
                    return Err(format!("node {node} links to {link}, past {nodes} nodes"));
                }
                list.push(link);
            }
            layers.push(list);
        }
        links.push(layers);
    }
    if cursor.at != body.len() {
        return Err(format!(
            "{} bytes after the last node",
            body.len() - cursor.at
        ));
    }
    Ok(Graph::from_parts(distance, params, seed, vectors, links))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        let graph = Graph::new(
            WalkDistance::NegatedDot,
            HnswParams {
                m: 6,
                ef_construction: 24,
            },
            5,
        );
        let vectors: Vec<Vec<f32>> = (0..500)
            .map(|i| (0..12).map(|d| ((i * 7 + d * 13) % 29) as f32).collect())
            .collect();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        graph.insert_batch(&refs);
        graph
    }

    fn links(graph: &Graph, len: usize) -> Vec<Vec<Vec<u32>>> {
        let mut all = Vec::new();
        graph.read_prefix(len, |_, node| all.push(node.links.to_vec()));
        all
    }

    #[test]
    fn a_written_graph_reads_back_the_same() {
        let graph = graph();
        let mut bytes = Vec::new();
        write(&graph, 500, &mut bytes).expect("write");
        let back = read(&bytes, WalkDistance::NegatedDot, graph.params(), 5).expect("read");
        assert_eq!(links(&back, 500), links(&graph, 500));
        graph.with_vectors(|ours| {
            back.with_vectors(|theirs| {
                for o in 0..500 {
                    assert_eq!(ours.get(o), theirs.get(o), "vector {o}");
                }
            })
        });
    }

    #[test]
    fn a_prefix_is_written_without_links_past_it() {
        let graph = graph();
        let mut bytes = Vec::new();
        write(&graph, 200, &mut bytes).expect("write");
        let back = read(&bytes, WalkDistance::NegatedDot, graph.params(), 5).expect("read");
        assert_eq!(back.len(), 200);
        assert_eq!(links(&back, 200), links(&graph, 200));
    }

    #[test]
    fn every_damaged_file_is_refused_with_a_reason() {
        let graph = graph();
        let mut bytes = Vec::new();
        write(&graph, 500, &mut bytes).expect("write");
        let params = graph.params();
        let refused = |bytes: &[u8]| read(bytes, WalkDistance::NegatedDot, params, 5).err();
        // Every truncation, and a flipped bit anywhere.
        for cut in [
            0,
            7,
            8,
            20,
            24,
            bytes.len() / 2,
            bytes.len() - 9,
            bytes.len() - 1,
        ] {
            assert!(refused(&bytes[..cut]).is_some(), "cut at {cut} accepted");
        }
        for at in [
            0,
            9,
            13,
            30,
            bytes.len() / 3,
            bytes.len() - 12,
            bytes.len() - 3,
        ] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            let reason = refused(&flipped).unwrap_or_else(|| panic!("flip at {at} accepted"));
            assert!(!reason.is_empty());
        }
        assert!(refused(&bytes).is_none());
    }
}
