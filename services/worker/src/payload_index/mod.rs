//! The in-memory payload index of one shard: every short scalar of every
//! stored payload (strings up to [`MAX_INDEXED_KEYWORD_BYTES`], numbers,
//! booleans; at dotted paths up to [`MAX_INDEXED_DEPTH`] keys deep, through
//! arrays as filters see them) is indexed automatically, so a filter is
//! evaluated once per query into a [`Bitmap`] instead of reading and parsing
//! a payload per candidate.
//!
//! Each stored row gets a dense slot; per field the index keeps posting lists
//! of slots by keyword, by boolean, and by number in order (for ranges).
//! [`PayloadIndex::select`] answers a filter exactly — the same points as
//! [`PayloadFilter::matches`] over the stored JSON — or returns `None` when
//! some condition reaches past what is indexed (a longer keyword, a deeper
//! path); the caller then falls back to checking payloads one by one.
//!
//! Derived state, rebuilt from storage on open; only the state machine
//! changes it (under the shard index's write lock, like the row ids). No I/O.

pub mod bitmap;

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use serde_json::Value;

pub use bitmap::Bitmap;

use crate::filter::{Bounds, Condition, PayloadFilter, Scalar};

/// Strings longer than this are not indexed (a filter matching such a string
/// is answered by reading payloads).
pub const MAX_INDEXED_KEYWORD_BYTES: usize = 128;

/// Keys deeper than this many path segments are not indexed.
pub const MAX_INDEXED_DEPTH: usize = 8;

/// A number as an orderable key: the f64 bit pattern mapped so that integer
/// order is numeric order (`-0.0` folded into `0.0`; JSON has no NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct NumberKey(u64);

impl NumberKey {
    fn of(x: f64) -> Self {
        let x = if x == 0.0 { 0.0 } else { x };
        let bits = x.to_bits();
        Self(if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        })
    }

    fn value(self) -> f64 {
        let bits = if self.0 >> 63 == 1 {
            self.0 & !(1 << 63)
        } else {
            !self.0
        };
        f64::from_bits(bits)
    }
}

/// One indexed value of a payload.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Keyword(Box<str>),
    Bool(bool),
    Number(NumberKey),
}

/// The posting lists of one dotted path; each list is sorted and holds a
/// slot at most once.
#[derive(Debug, Default)]
struct Field {
    keywords: HashMap<Box<str>, Vec<u32>>,
    bools: [Vec<u32>; 2],
    numbers: BTreeMap<NumberKey, Vec<u32>>,
}

impl Field {
    fn postings_mut(&mut self, term: &Term) -> &mut Vec<u32> {
        match term {
            Term::Keyword(k) => self.keywords.entry(k.clone()).or_default(),
            Term::Bool(b) => &mut self.bools[usize::from(*b)],
            Term::Number(n) => self.numbers.entry(*n).or_default(),
        }
    }

    /// Drops an emptied list so the maps do not keep dead values.
    fn prune(&mut self, term: &Term) {
        match term {
            Term::Keyword(k) => {
                if self.keywords.get(k).is_some_and(Vec::is_empty) {
                    self.keywords.remove(k);
                }
            }
            Term::Number(n) => {
                if self.numbers.get(n).is_some_and(Vec::is_empty) {
                    self.numbers.remove(n);
                }
            }
            Term::Bool(_) => {}
        }
    }
}

/// What one slot holds: its row and the (field, term) pairs it was indexed
/// under, so removing it touches only its own postings.
#[derive(Debug)]
struct SlotEntry {
    row: u64,
    terms: Vec<(u32, Term)>,
}

/// The payload index of one shard (see the module docs).
#[derive(Debug, Default)]
pub struct PayloadIndex {
    field_ids: HashMap<String, u32>,
    fields: Vec<Field>,
    slot_of: crate::RowMap<u32>,
    slots: Vec<Option<SlotEntry>>,
    free: Vec<u32>,
    live: Bitmap,
}

/// The scalars of `value` under `path`, as filters reach them.
fn collect_terms(value: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Term)>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_terms(v, path, out)),
        Value::Object(map) if path.len() < MAX_INDEXED_DEPTH => {
            for (key, inner) in map {
                // A filter path can reach neither an empty key nor one with a dot.
                if key.is_empty() || key.contains('.') {
                    continue;
                }
                path.push(key.clone());
                collect_terms(inner, path, out);
                path.pop();
            }
        }
        _ if path.is_empty() => {}
        Value::String(s) if s.len() <= MAX_INDEXED_KEYWORD_BYTES => {
            out.push((path.join("."), Term::Keyword(s.as_str().into())));
        }
        Value::Bool(b) => out.push((path.join("."), Term::Bool(*b))),
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((path.join("."), Term::Number(NumberKey::of(x))));
            }
        }
        _ => {}
    }
}

impl PayloadIndex {
    /// An index of `rows` (row, payload JSON bytes; empty when none).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (u64, &'a [u8])>) -> Self {
        let mut index = Self::default();
        for (row, payload) in rows {
            index.insert(row, payload);
        }
        index
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// Whether no row is indexed.
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Indexes `row` with its payload (JSON bytes; empty or unreadable reads
    /// as no payload, as filters read it), replacing what it held.
    pub fn insert(&mut self, row: u64, payload: &[u8]) {
        self.remove(row);
        let value = if payload.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(payload).unwrap_or(Value::Null)
        };
        let mut found = Vec::new();
        collect_terms(&value, &mut Vec::new(), &mut found);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let mut terms = Vec::with_capacity(found.len());
        for (path, term) in found {
            let next_id = self.fields.len() as u32;
            let field_id = *self.field_ids.entry(path).or_insert(next_id);
            if field_id == next_id {
                self.fields.push(Field::default());
            }
            let postings = self.fields[field_id as usize].postings_mut(&term);
            if let Err(at) = postings.binary_search(&slot) {
                postings.insert(at, slot);
                terms.push((field_id, term));
            }
        }
        self.slots[slot as usize] = Some(SlotEntry { row, terms });
        self.slot_of.insert(row, slot);
        self.live.insert(slot);
    }

    /// Drops `row`; returns whether it was indexed.
    pub fn remove(&mut self, row: u64) -> bool {
        let Some(slot) = self.slot_of.remove(&row) else {
            return false;
        };
        if let Some(entry) = self.slots[slot as usize].take() {
            for (field_id, term) in entry.terms {
                let field = &mut self.fields[field_id as usize];
                let postings = field.postings_mut(&term);
                if let Ok(at) = postings.binary_search(&slot) {
                    postings.remove(at);
                }
                field.prune(&term);
            }
        }
        self.live.remove(slot);
        self.free.push(slot);
        true
    }

    /// Whether `row` is among `selection`'s slots.
    pub fn selects_row(&self, selection: &Bitmap, row: u64) -> bool {
        self.slot_of
            .get(&row)
            .is_some_and(|&slot| selection.contains(slot))
    }

    /// The rows of `selection`'s slots.
    pub fn rows<'a>(&'a self, selection: &'a Bitmap) -> impl Iterator<Item = u64> + 'a {
        selection.iter().filter_map(|slot| {
            self.slots
                .get(slot as usize)
                .and_then(Option::as_ref)
                .map(|entry| entry.row)
        })
    }

    /// The slots of the rows that meet `filter`, or `None` when the filter
    /// reaches past what is indexed (see the module docs).
    pub fn select(&self, filter: &PayloadFilter) -> Option<Bitmap> {
        let mut selected = match filter.must.split_first() {
            Some((first, rest)) => {
                let mut set = self.condition(first)?;
                for condition in rest {
                    set.intersect(&self.condition(condition)?);
                }
                set
            }
            None => self.live.clone(),
        };
        if !filter.should.is_empty() {
            let mut any = Bitmap::default();
            for condition in &filter.should {
                any.union(&self.condition(condition)?);
            }
            selected.intersect(&any);
        }
        for condition in &filter.must_not {
            selected.subtract(&self.condition(condition)?);
        }
        Some(selected)
    }

    fn field(&self, key: &[String]) -> Option<Option<&Field>> {
        if key.len() > MAX_INDEXED_DEPTH {
            return None;
        }
        Some(
            self.field_ids
                .get(&key.join("."))
                .map(|&id| &self.fields[id as usize]),
        )
    }

    fn condition(&self, condition: &Condition) -> Option<Bitmap> {
        let mut set = Bitmap::with_capacity(self.slots.len());
        match condition {
            Condition::Match { key, values } => {
                let field = self.field(key)?;
                for value in values {
                    if let Scalar::Keyword(k) = value
                        && k.len() > MAX_INDEXED_KEYWORD_BYTES
                    {
                        return None;
                    }
                    let Some(field) = field else { continue };
                    let postings = match value {
                        Scalar::Keyword(k) => field.keywords.get(k.as_str()),
                        Scalar::Boolean(b) => Some(&field.bools[usize::from(*b)]),
                        // A payload number matches an integer when their f64
                        // values are equal (see `Scalar::matches`).
                        Scalar::Integer(i) => field.numbers.get(&NumberKey::of(*i as f64)),
                    };
                    if let Some(postings) = postings {
                        set.extend(postings);
                    }
                }
            }
            Condition::Range { key, bounds } => {
                if let Some(field) = self.field(key)? {
                    for (number, postings) in field.numbers.range((lower(bounds), Bound::Unbounded))
                    {
                        if !within_upper(bounds, number.value()) {
                            break;
                        }
                        if within_lower(bounds, number.value()) {
                            set.extend(postings);
                        }
                    }
                }
            }
            Condition::Nested(filter) => return self.select(filter),
        }
        Some(set)
    }
}

/// Where a range scan may start: the looser of the lower bounds is safe, the
/// exact check is [`within_lower`].
fn lower(bounds: &Bounds) -> Bound<NumberKey> {
    match (bounds.gt, bounds.gte) {
        (None, None) => Bound::Unbounded,
        (Some(x), None) => Bound::Excluded(NumberKey::of(x)),
        (None, Some(x)) => Bound::Included(NumberKey::of(x)),
        (Some(a), Some(b)) => Bound::Included(NumberKey::of(a.min(b))),
    }
}

fn within_lower(bounds: &Bounds, x: f64) -> bool {
    bounds.gt.is_none_or(|b| x > b) && bounds.gte.is_none_or(|b| x >= b)
}

fn within_upper(bounds: &Bounds, x: f64) -> bool {
    bounds.lt.is_none_or(|b| x < b) && bounds.lte.is_none_or(|b| x <= b)
}

#[cfg(test)]
mod tests;
