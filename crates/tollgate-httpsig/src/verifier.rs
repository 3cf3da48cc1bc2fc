//! The gateway's entry point: pick the signature, apply the policy, resolve the key,
//! verify, and record the nonce.

use crate::policy::{NonceCache, NonceOutcome};
use crate::signature::verify_signature;
use crate::{
    Algorithm, ComponentId, Error, KeyResolver, MemoryNonceCache, Message, Policy, SignatureInput,
    Signatures, VerifyingKey,
};

/// Verifies messages under a [`Policy`], with optional replay protection. Build one per
/// configuration snapshot and share it across requests.
#[derive(Debug)]
pub struct Verifier<N = MemoryNonceCache> {
    policy: Policy,
    nonces: Option<N>,
}

impl Verifier<MemoryNonceCache> {
    /// A verifier without replay protection.
    pub fn new(policy: Policy) -> Self {
        Verifier {
            policy,
            nonces: None,
        }
    }
}

impl<N: NonceCache> Verifier<N> {
    /// A verifier that refuses a `nonce` it has seen for the same key within the
    /// policy's window.
    pub fn with_nonce_cache(policy: Policy, nonces: N) -> Self {
        Verifier {
            policy,
            nonces: Some(nonces),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Verifies `msg`'s signature at `now` (Unix seconds): the one labelled
    /// [`Policy::label`], else the first. In order: policy (cheap, before any
    /// cryptography), key lookup, `alg`, signature, body digest (when the view has the
    /// body), then the nonce (recorded only for a valid signature, so forgeries cannot
    /// burn nonces).
    pub fn verify<'s, 'h, 'k, K: KeyResolver + ?Sized>(
        &self,
        msg: &Message<'_>,
        sigs: &'s Signatures<'h>,
        keys: &'k K,
        now: i64,
    ) -> Result<Verified<'s, 'h, 'k>, Error> {
        let (input, signature) = match &self.policy.label {
            Some(label) => sigs.get(label)?,
            None => sigs.first()?,
        };
        self.policy.check(input, msg, now)?;
        let key = keys
            .resolve(input.keyid())
            .ok_or_else(|| match input.keyid() {
                Some(id) => Error::UnknownKeyId(id.to_owned()),
                None => Error::MissingKeyId,
            })?;
        verify_signature(msg, input, signature, key)?;
        if let (Some(cache), Some(nonce)) = (&self.nonces, input.nonce()) {
            let until = self.policy.replay_horizon(input, now);
            match cache.check_and_insert(input.keyid().unwrap_or(""), nonce, now, until) {
                NonceOutcome::Fresh => {}
                NonceOutcome::Replayed => {
                    return Err(Error::ReplayedNonce {
                        nonce: nonce.to_owned(),
                    });
                }
                NonceOutcome::Full => return Err(Error::NonceCacheFull),
            }
        }
        Ok(Verified {
            input,
            key,
            body_unchecked: input.covers("content-digest") && msg.body().is_none(),
        })
    }
}

/// A signature that passed [`Verifier::verify`].
#[derive(Debug, Clone, Copy)]
pub struct Verified<'s, 'h, 'k> {
    input: &'s SignatureInput<'h>,
    key: &'k VerifyingKey,
    body_unchecked: bool,
}

impl<'s, 'h, 'k> Verified<'s, 'h, 'k> {
    /// The signature's metadata.
    pub fn input(&self) -> &'s SignatureInput<'h> {
        self.input
    }

    /// The label.
    pub fn label(&self) -> &'s str {
        self.input.label()
    }

    /// The `keyid`, which names the caller.
    pub fn keyid(&self) -> Option<&'s str> {
        self.input.keyid()
    }

    /// The covered components.
    pub fn components(&self) -> &'s [ComponentId<'h>] {
        self.input.components()
    }

    /// The key that verified it.
    pub fn key(&self) -> &'k VerifyingKey {
        self.key
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// Whether the signature covers `content-digest` but the view had no body to check
    /// it against: the caller must stream the body through a
    /// [`ContentDigestCheck`](crate::ContentDigestCheck) and refuse it on mismatch.
    pub fn body_unchecked(&self) -> bool {
        self.body_unchecked
    }
}
