//! age v1 (placeholder being written)
