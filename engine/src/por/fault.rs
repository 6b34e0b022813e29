//! Named reasons: every check a verifier makes fails with one of these words, the same in the
//! Rust code, the CLI's message, the test vectors and the independent verifier.

/// Why a proof, a root, a reserves file or an audit does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The file is empty (or only white space).
    EmptyInput,
    /// Not JSON, truncated, or not an object / array where one is required.
    Malformed,
    /// The `format` field names another format.
    UnknownFormat,
    /// A required field is absent.
    MissingField,
    /// A field the format does not have (a verifier never ignores input).
    UnknownField,
    /// A value that is not the canonical decimal string or JSON integer it must be.
    NotANumber,
    /// A negative value where only `0 ≤ v` is allowed.
    NegativeValue,
    /// A value at or beyond its range (`2^64` for balances and sums, `2^53` for JSON integers).
    OutOfRange,
    /// A hash, key, salt or signature that is not lower-case hex of its exact length.
    BadHex,
    /// An asset symbol that is not a valid symbol.
    BadSymbol,
    /// A proof's salt is absent or all zeros.
    MissingSalt,
    /// The proof's assets (names or counts) differ from the root's.
    AssetMismatch,
    /// The proof belongs to another cycle (another seq or root).
    WrongCycle,
    /// The path's length is not the tree's height, or the height is not the one for its
    /// leaf count.
    WrongDepth,
    /// The leaf position is not below the leaf count.
    BadPosition,
    /// A sum overflows `2^64` (a field or a wrapping integer would hide liabilities here).
    SumOverflow,
    /// The hashes computed up the path do not give the published root.
    RootMismatch,
    /// The sums computed up the path do not give the published totals.
    TotalsMismatch,
    /// The proof is for another account than the one asked about.
    AccountMismatch,
    /// Signed by a key other than the expected one.
    WrongSigner,
    /// The signature does not verify under the project's rule.
    BadSignature,
    /// A published liability is not `Σequity − Σdebt`.
    LiabilityMismatch,
    /// Two files name different cycles, journals or states (audit, solvency).
    CycleMismatch,
    /// The journal's digest or state at the seq is not the one the root names (audit).
    StateMismatch,
    /// The salt seed is not the one the root commits to (audit).
    SeedMismatch,
    /// The rebuilt tree's leaf count differs: an account was omitted or added (audit).
    LeafCountMismatch,
    /// Reserves are below liabilities in some asset (solvency).
    Short,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Self; 27] = [
        Self::EmptyInput,
        Self::Malformed,
        Self::UnknownFormat,
        Self::MissingField,
        Self::UnknownField,
        Self::NotANumber,
        Self::NegativeValue,
        Self::OutOfRange,
        Self::BadHex,
        Self::BadSymbol,
        Self::MissingSalt,
        Self::AssetMismatch,
        Self::WrongCycle,
        Self::WrongDepth,
        Self::BadPosition,
        Self::SumOverflow,
        Self::RootMismatch,
        Self::TotalsMismatch,
        Self::AccountMismatch,
        Self::WrongSigner,
        Self::BadSignature,
        Self::LiabilityMismatch,
        Self::CycleMismatch,
        Self::StateMismatch,
        Self::SeedMismatch,
        Self::LeafCountMismatch,
        Self::Short,
    ];

    /// The snake_case word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyInput => "empty_input",
            Self::Malformed => "malformed",
            Self::UnknownFormat => "unknown_format",
            Self::MissingField => "missing_field",
            Self::UnknownField => "unknown_field",
            Self::NotANumber => "not_a_number",
            Self::NegativeValue => "negative_value",
            Self::OutOfRange => "out_of_range",
            Self::BadHex => "bad_hex",
            Self::BadSymbol => "bad_symbol",
            Self::MissingSalt => "missing_salt",
            Self::AssetMismatch => "asset_mismatch",
            Self::WrongCycle => "wrong_cycle",
            Self::WrongDepth => "wrong_depth",
            Self::BadPosition => "bad_position",
            Self::SumOverflow => "sum_overflow",
            Self::RootMismatch => "root_mismatch",
            Self::TotalsMismatch => "totals_mismatch",
            Self::AccountMismatch => "account_mismatch",
            Self::WrongSigner => "wrong_signer",
            Self::BadSignature => "bad_signature",
            Self::LiabilityMismatch => "liability_mismatch",
            Self::CycleMismatch => "cycle_mismatch",
            Self::StateMismatch => "state_mismatch",
            Self::SeedMismatch => "seed_mismatch",
            Self::LeafCountMismatch => "leaf_count_mismatch",
            Self::Short => "short",
        }
    }

    /// The fault named `word`.
    #[must_use]
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == word)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault and what exactly failed (field, level, values).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{fault}: {detail}")]
pub struct PorError {
    /// The named reason.
    pub fault: Fault,
    /// The specifics.
    pub detail: String,
}

impl PorError {
    /// A fault with its specifics.
    pub fn new(fault: Fault, detail: impl Into<String>) -> Self {
        Self { fault, detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_distinct_and_parses_back() {
        let words: std::collections::BTreeSet<&str> = Fault::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(words.len(), Fault::ALL.len());
        assert!(Fault::ALL.iter().all(|f| Fault::from_word(f.as_str()) == Some(*f)));
    }
}
