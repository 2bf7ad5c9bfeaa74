//! Session tickets with rotating keys, shared-nothing across cores.
//!
//! A connection resuming with a ticket may land on any core (SO_REUSEPORT),
//! so every core must open every core's tickets, yet cores share no state.
//! Each bind gets one random master secret at load; every core derives the
//! key of a period from it (HKDF over the period number) and so computes
//! the same keys without talking to the others. Keys rotate every
//! [`KEY_PERIOD`]; a ticket opens during its own period and the next.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

/// How long one ticket key is used to issue tickets.
pub const KEY_PERIOD_SECS: u64 = 3600;

const EPOCH_LEN: usize = 8;

/// The per-bind secret every core derives its ticket keys from.
#[derive(Clone)]
pub struct TicketSecret([u8; 32]);

impl std::fmt::Debug for TicketSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketSecret(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no randomness available for the session ticket secret")]
pub struct NoRandomness;

impl TicketSecret {
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| NoRandomness)?;
        Ok(TicketSecret(secret))
    }

    /// The secret of the bind on `addr`: derived from one random secret
    /// made once per process, so a reload (which loads the configuration
    /// again) gives a kept bind (by its `addr` as written) the same secret and tickets issued before
    /// it still open after it, while two binds never share keys.
    pub fn for_bind(addr: &str) -> Result<Self, NoRandomness> {
        static PROCESS: std::sync::OnceLock<Option<TicketSecret>> = std::sync::OnceLock::new();
        let process = PROCESS
            .get_or_init(|| TicketSecret::generate().ok())
            .as_ref()
            .ok_or(NoRandomness)?;
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"percore bind ticket secret");
        let info = [addr.as_bytes()];
        let mut secret = [0u8; 32];
        salt.extract(&process.0)
            .expand(&info, Len32)
            .and_then(|okm| okm.fill(&mut secret))
            .map_err(|_| NoRandomness)?;
        Ok(TicketSecret(secret))
    }

    fn key_for(&self, epoch: u64) -> Option<LessSafeKey> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"percore session ticket key");
        let info = epoch.to_be_bytes();
        let info = [info.as_slice()];
        let prk = salt.extract(&self.0);
        let okm = prk.expand(&info, &CHACHA20_POLY1305).ok()?;
        Some(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

/// One core's ticket producer.
pub struct RotatingTicketer {
    secret: TicketSecret,
    random: SystemRandom,
}

impl std::fmt::Debug for RotatingTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotatingTicketer")
    }
}

impl RotatingTicketer {
    pub fn new(secret: TicketSecret) -> Self {
        RotatingTicketer {
            secret,
            random: SystemRandom::new(),
        }
    }

    fn current_epoch() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / KEY_PERIOD_SECS)
    }

    fn seal(&self, epoch: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let key = self.secret.key_for(epoch)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let header = epoch.to_be_bytes();
        let mut ticket = Vec::with_capacity(EPOCH_LEN + NONCE_LEN + plain.len() + 16);
        ticket.extend_from_slice(&header);
        ticket.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut body,
        )
        .ok()?;
        ticket.extend_from_slice(&body);
        Some(ticket)
    }

    fn open(&self, now_epoch: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < EPOCH_LEN + NONCE_LEN + aead::MAX_TAG_LEN {
            return None;
        }
        let (header, rest) = ticket.split_at(EPOCH_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let epoch = u64::from_be_bytes(header.try_into().ok()?);
        if epoch != now_epoch && epoch.checked_add(1) != Some(now_epoch) {
            return None;
        }
        let key = self.secret.key_for(epoch)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(header), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

impl ProducesTickets for RotatingTicketer {
    fn enabled(&self) -> bool {
        true
    }

    /// The hint sent to clients: a ticket is certain to open for one period.
    fn lifetime(&self) -> u32 {
        KEY_PERIOD_SECS as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(Self::current_epoch(), plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open(Self::current_epoch(), cipher)
    }
}

/// HKDF output length of a 32-byte secret.
struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_core_opens_the_ticket_within_two_periods() {
        let secret = TicketSecret::generate().unwrap();
        let issuing = RotatingTicketer::new(secret.clone());
        let other_core = RotatingTicketer::new(secret);
        let ticket = issuing.seal(100, b"session state").unwrap();
        assert_eq!(other_core.open(100, &ticket).unwrap(), b"session state");
        assert_eq!(other_core.open(101, &ticket).unwrap(), b"session state");
        assert!(other_core.open(102, &ticket).is_none(), "rotated out");
        assert!(other_core.open(99, &ticket).is_none(), "from the future");
    }

    #[test]
    fn another_bind_or_a_tampered_ticket_does_not_open() {
        let issuing = RotatingTicketer::new(TicketSecret::generate().unwrap());
        let stranger = RotatingTicketer::new(TicketSecret::generate().unwrap());
        let mut ticket = issuing.seal(7, b"state").unwrap();
        assert!(stranger.open(7, &ticket).is_none());
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert!(issuing.open(7, &ticket).is_none());
        assert!(issuing.open(7, &ticket[..10]).is_none());
        // The period number is authenticated too.
        let mut moved = issuing.seal(7, b"state").unwrap();
        moved[7] = 8;
        assert!(issuing.open(8, &moved).is_none());
    }
}
