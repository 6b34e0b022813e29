//! Genesis configuration: the operator keys that sign admin, custody, oracle and attest ops.

use crate::signature_rule::{check_public_key, SignatureFault};
use crate::signing::{dev_role_key, Role};

/// The operator public keys named at genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// Lists assets and markets.
    pub admin: [u8; 32],
    /// Credits deposits.
    pub custody: [u8; 32],
    /// Publishes marks, funding and ticks.
    pub oracle: [u8; 32],
    /// Signs attestations.
    pub attest: [u8; 32],
}

impl Genesis {
    /// The development genesis: every role's key derived from its name. Never for production.
    #[must_use]
    pub fn dev() -> Self {
        Self {
            admin: dev_role_key(Role::Admin).verifying_key().to_bytes(),
            custody: dev_role_key(Role::Custody).verifying_key().to_bytes(),
            oracle: dev_role_key(Role::Oracle).verifying_key().to_bytes(),
            attest: dev_role_key(Role::Attest).verifying_key().to_bytes(),
        }
    }

    /// Checks that every role's key can sign under the rule (SPEC section 4: no small-order,
    /// non-canonical or off-curve key, for which a signature could verify for any message).
    ///
    /// # Errors
    /// The first refused role and why.
    pub fn validate(&self) -> Result<(), (Role, SignatureFault)> {
        for role in Role::ALL {
            check_public_key(self.key(role)).map_err(|fault| (role, fault))?;
        }
        Ok(())
    }

    /// The key of a role.
    #[must_use]
    pub fn key(&self, role: Role) -> &[u8; 32] {
        match role {
            Role::Admin => &self.admin,
            Role::Custody => &self.custody,
            Role::Oracle => &self.oracle,
            Role::Attest => &self.attest,
        }
    }

    /// Index of the first role holding the same key as `role`: roles that share a key share
    /// one nonce sequence ("nonces are per signer").
    #[must_use]
    pub(crate) fn nonce_slot(&self, role: Role) -> usize {
        let key = self.key(role);
        Role::ALL.iter().position(|r| self.key(*r) == key).unwrap_or(0)
    }
}
