//! wire (placeholder being written)
