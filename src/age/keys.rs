//! Recipients and identities of either native public-key type, X25519 ([`super::x25519`]) or
//! hybrid post-quantum ([`super::hybrid`]), behind one interface.
//!
//! The encryption and decryption functions take `&[R]` for any [`Recipient`] and `&[I]` for any
//! [`Identity`], so code that holds only X25519 keys keeps passing them as before, and code
//! that reads keys from users (a card, a key file, `-r`) holds [`AnyRecipient`] and
//! [`AnyIdentity`]. The traits are sealed: the set of types is the spec's, not extensible.

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;

use super::{hybrid, x25519, AgeError};

/// A borrowed recipient of one of the native public-key types.
#[derive(Clone, Copy, Debug)]
pub enum RecipientRef<'a> {
    /// A classic X25519 recipient (`age1...`).
    X25519(&'a x25519::Recipient),
    /// A hybrid ML-KEM-768 + X25519 recipient (`age1pq1...`).
    Hybrid(&'a hybrid::Recipient),
}

/// A borrowed identity of one of the native public-key types.
#[derive(Clone, Copy, Debug)]
pub enum IdentityRef<'a> {
    /// A classic X25519 identity.
    X25519(&'a x25519::Identity),
    /// A hybrid ML-KEM-768 + X25519 identity.
    Hybrid(&'a hybrid::Identity),
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::x25519::Recipient {}
    impl Sealed for super::hybrid::Recipient {}
    impl Sealed for super::AnyRecipient {}
    impl Sealed for super::x25519::Identity {}
    impl Sealed for super::hybrid::Identity {}
    impl Sealed for super::AnyIdentity {}
    impl<T: Sealed + ?Sized> Sealed for &T {}
}

/// Something files can be encrypted to.
pub trait Recipient: sealed::Sealed {
    /// Which native type this is.
    fn as_ref_any(&self) -> RecipientRef<'_>;

    /// True for a post-quantum recipient, which must not be mixed with classic ones.
    fn is_post_quantum(&self) -> bool {
        matches!(self.as_ref_any(), RecipientRef::Hybrid(_))
    }
}

/// Something files can be decrypted with.
pub trait Identity: sealed::Sealed {
    /// Which native type this is.
    fn as_ref_any(&self) -> IdentityRef<'_>;
}

impl Recipient for x25519::Recipient {
    fn as_ref_any(&self) -> RecipientRef<'_> {
        RecipientRef::X25519(self)
    }
}
impl Recipient for hybrid::Recipient {
    fn as_ref_any(&self) -> RecipientRef<'_> {
        RecipientRef::Hybrid(self)
    }
}
impl<T: Recipient + ?Sized> Recipient for &T {
    fn as_ref_any(&self) -> RecipientRef<'_> {
        (**self).as_ref_any()
    }
}
impl Identity for x25519::Identity {
    fn as_ref_any(&self) -> IdentityRef<'_> {
        IdentityRef::X25519(self)
    }
}
impl Identity for hybrid::Identity {
    fn as_ref_any(&self) -> IdentityRef<'_> {
        IdentityRef::Hybrid(self)
    }
}
impl<T: Identity + ?Sized> Identity for &T {
    fn as_ref_any(&self) -> IdentityRef<'_> {
        (**self).as_ref_any()
    }
}

/// An owned recipient of either native type, parsed from `age1...` or `age1pq1...`.
#[derive(Clone, PartialEq, Eq)]
pub enum AnyRecipient {
    /// `age1...`
    X25519(x25519::Recipient),
    /// `age1pq1...` (boxed: 1216 bytes of key against 32).
    Hybrid(Box<hybrid::Recipient>),
}

impl AnyRecipient {
    /// The public-key bytes: 32 for X25519, 1216 for hybrid.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            AnyRecipient::X25519(r) => r.to_bytes().to_vec(),
            AnyRecipient::Hybrid(r) => r.to_bytes(),
        }
    }

    /// True for a hybrid post-quantum recipient.
    pub fn is_post_quantum(&self) -> bool {
        matches!(self, AnyRecipient::Hybrid(_))
    }
}

impl Recipient for AnyRecipient {
    fn as_ref_any(&self) -> RecipientRef<'_> {
        match self {
            AnyRecipient::X25519(r) => RecipientRef::X25519(r),
            AnyRecipient::Hybrid(r) => RecipientRef::Hybrid(r),
        }
    }
}

impl From<x25519::Recipient> for AnyRecipient {
    fn from(r: x25519::Recipient) -> Self {
        AnyRecipient::X25519(r)
    }
}
impl From<hybrid::Recipient> for AnyRecipient {
    fn from(r: hybrid::Recipient) -> Self {
        AnyRecipient::Hybrid(Box::new(r))
    }
}

impl FromStr for AnyRecipient {
    type Err = AgeError;

    fn from_str(s: &str) -> Result<Self, AgeError> {
        if s.starts_with("age1pq1") {
            s.parse::<hybrid::Recipient>().map(Into::into)
        } else {
            s.parse().map(AnyRecipient::X25519)
        }
    }
}

impl fmt::Display for AnyRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyRecipient::X25519(r) => r.fmt(f),
            AnyRecipient::Hybrid(r) => r.fmt(f),
        }
    }
}

impl fmt::Debug for AnyRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyRecipient::X25519(r) => r.fmt(f),
            AnyRecipient::Hybrid(r) => r.fmt(f),
        }
    }
}

/// An owned identity of either native type, parsed from `AGE-SECRET-KEY-1...` or
/// `AGE-SECRET-KEY-PQ-1...`.
#[derive(Debug)]
pub enum AnyIdentity {
    /// `AGE-SECRET-KEY-1...`
    X25519(x25519::Identity),
    /// `AGE-SECRET-KEY-PQ-1...` (boxed: the expanded ML-KEM key is kilobytes).
    Hybrid(Box<hybrid::Identity>),
}

impl AnyIdentity {
    /// The recipient that encrypts to this identity.
    pub fn to_public(&self) -> AnyRecipient {
        match self {
            AnyIdentity::X25519(i) => AnyRecipient::X25519(i.to_public()),
            AnyIdentity::Hybrid(i) => i.to_public().into(),
        }
    }

    /// The secret string encoding, kept in a [`SecretString`].
    pub fn to_string_secret(&self) -> SecretString {
        match self {
            AnyIdentity::X25519(i) => i.to_string_secret(),
            AnyIdentity::Hybrid(i) => i.to_string_secret(),
        }
    }
}

impl Identity for AnyIdentity {
    fn as_ref_any(&self) -> IdentityRef<'_> {
        match self {
            AnyIdentity::X25519(i) => IdentityRef::X25519(i),
            AnyIdentity::Hybrid(i) => IdentityRef::Hybrid(i),
        }
    }
}

impl From<x25519::Identity> for AnyIdentity {
    fn from(i: x25519::Identity) -> Self {
        AnyIdentity::X25519(i)
    }
}
impl From<hybrid::Identity> for AnyIdentity {
    fn from(i: hybrid::Identity) -> Self {
        AnyIdentity::Hybrid(Box::new(i))
    }
}

impl FromStr for AnyIdentity {
    type Err = AgeError;

    fn from_str(s: &str) -> Result<Self, AgeError> {
        if s.starts_with("AGE-SECRET-KEY-PQ-") {
            s.parse::<hybrid::Identity>().map(Into::into)
        } else {
            s.parse().map(AnyIdentity::X25519)
        }
    }
}

/// Checks that `recipients` are all post-quantum or all classic (the spec: a file encrypted to
/// both is only as strong as the classic ones).
pub(crate) fn check_not_mixed<R: Recipient>(recipients: &[R]) -> Result<(), AgeError> {
    let pq = recipients.iter().filter(|r| r.is_post_quantum()).count();
    if pq != 0 && pq != recipients.len() {
        return Err(AgeError::MixedPostQuantum);
    }
    Ok(())
}
