//! Integration tests of the placement driver crate (one test binary, one
//! module per area).

mod storage_conformance;
