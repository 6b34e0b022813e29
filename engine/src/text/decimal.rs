//! decimal
