//! The record layer of an established TLS connection: records decrypted in place in the
//! connection's buffer and encrypted in place into it, with the traffic keys rustls
//! negotiated (its kernel connection API) and the AEAD of the crypto provider.
//!
//! rustls keeps the handshake, and the key schedule afterwards: a TLS 1.3 `KeyUpdate`
//! from the client takes new receiving keys from it (and, when the client asks, our own
//! `KeyUpdate` goes out and new sending keys are taken). Everything the record layer of
//! rustls refuses after a handshake is refused here too: records over the size limits,
//! records that do not authenticate, unexpected content or handshake messages,
//! renegotiation, fatal alerts. Sending keys are renewed (TLS 1.3) or the connection
//! refused (TLS 1.2) before the suite's confidentiality limit is reached.

use aws_lc_rs::aead::{
    Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305,
};
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion, SupportedCipherSuite};
use thiserror::Error;

/// Bytes of a record header: content type, legacy version, length.
pub(super) const HEADER: usize = 5;
/// Bytes of an AEAD tag (every suite rustls offers).
const TAG: usize = 16;
/// The largest plaintext a record carries.
pub(super) const MAX_PLAINTEXT: usize = 16 * 1024;
/// The largest protected record body (RFC 8446 §5.2; TLS 1.2's AEAD suites add less).
pub(super) const MAX_BODY: usize = MAX_PLAINTEXT + 256;
/// Bytes of TLS 1.2 AES-GCM's explicit nonce.
const EXPLICIT_NONCE: usize = 8;
/// Bytes a record adds to its plaintext at most: header, explicit nonce, TLS 1.3's
/// content type, tag.
pub(super) const MAX_OVERHEAD: usize = HEADER + EXPLICIT_NONCE + 1 + TAG;
/// Records received with one key at most (the sequence number's hard limit).
const RECEIVE_LIMIT: u64 = u64::MAX - 1;
/// Records kept in reserve under the sending limit for the `KeyUpdate` itself.
const UPDATE_MARGIN: u64 = 16;
/// Records that cost work and carry nothing a client may send, like rustls (and
/// BoringSSL): warning alerts in all, key updates and empty records in a row.
const ALLOWED_WARNINGS: u8 = 4;
const ALLOWED_KEY_UPDATES: u8 = 32;
const ALLOWED_EMPTY_RECORDS: u8 = 32;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const KEY_UPDATE: u8 = 24;
const CLOSE_NOTIFY: u8 = 0;
const USER_CANCELED: u8 = 90;
const WARNING: u8 = 1;
const FATAL: u8 = 2;

/// Alert descriptions sent when a record is refused.
pub(super) const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const UNEXPECTED_MESSAGE: u8 = 10;
const DECODE_ERROR: u8 = 50;

/// Why a record was refused, or why no record can be sent.
#[derive(Debug, Error)]
pub(crate) enum RecordError {
    /// The record does not authenticate with the connection's keys.
    #[error("a record does not authenticate")]
    BadRecordMac,
    /// A record over the size limits.
    #[error("a record of {0} bytes is over the limit")]
    Overflow(usize),
    /// A record or message that has no place after the handshake.
    #[error("unexpected {0} after the handshake")]
    Unexpected(&'static str),
    /// A malformed alert or handshake message.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The client sent more warnings, key updates or empty records than allowed.
    #[error("too many {0}")]
    TooMany(&'static str),
    /// The client sent a fatal alert.
    #[error("the client sent alert {0}")]
    PeerAlert(u8),
    /// TLS 1.2 keys reached their limit: the connection must end.
    #[error("the traffic keys reached their limit")]
    Exhausted,
    /// rustls refused to derive new keys, or gave keys of an unknown AEAD.
    #[error("traffic keys: {0}")]
    Keys(rustls::Error),
}

impl RecordError {
    /// The alert to send for this error, if any.
    pub(super) fn alert(&self) -> Option<u8> {
        match self {
            RecordError::BadRecordMac => Some(BAD_RECORD_MAC),
            RecordError::Overflow(_) => Some(RECORD_OVERFLOW),
            RecordError::Unexpected(_) => Some(UNEXPECTED_MESSAGE),
            RecordError::Malformed(_) => Some(DECODE_ERROR),
            RecordError::TooMany(_) => Some(UNEXPECTED_MESSAGE),
            RecordError::PeerAlert(_) | RecordError::Exhausted | RecordError::Keys(_) => None,
        }
    }
}

/// What a record received held.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Opened {
    /// Application data at `start..end` of the record's bytes.
    Data { start: usize, end: usize },
    /// The client's `close_notify`.
    CloseNotify,
    /// Nothing for the application (a key update, a warning alert, an empty record).
    Nothing,
}

/// One direction's key, IV and sequence number.
struct Direction {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl std::fmt::Debug for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direction")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Direction {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> Result<Self, RecordError> {
        let (algorithm, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&CHACHA20_POLY1305, key, iv),
            _ => {
                return Err(RecordError::Keys(rustls::Error::General(
                    "traffic keys of an unknown AEAD".into(),
                )))
            }
        };
        let key = UnboundKey::new(algorithm, key.as_ref())
            .map_err(|_| RecordError::Keys(rustls::Error::General("bad traffic key".into())))?;
        let iv = iv
            .as_ref()
            .try_into()
            .map_err(|_| RecordError::Keys(rustls::Error::General("bad traffic IV".into())))?;
        Ok(Direction {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The IV with the sequence number XORed into its last 8 bytes.
    fn nonce(&self) -> [u8; 12] {
        let mut nonce = self.iv;
        for (byte, seq) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *byte ^= seq;
        }
        nonce
    }
}

/// One less of what `left` counts, or an error when none is left.
fn countdown(left: u8, what: &'static str) -> Result<u8, RecordError> {
    left.checked_sub(1).ok_or(RecordError::TooMany(what))
}

/// TLS 1.2's additional data: sequence number, type, version, plaintext length.
fn tls12_aad(seq: u64, content_type: u8, length: usize) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = content_type;
    aad[9] = 3;
    aad[10] = 3;
    aad[11..].copy_from_slice(&(length as u16).to_be_bytes());
    aad
}

/// The keys of an established connection and what renews them.
pub(super) struct RecordLayer {
    tls13: bool,
    /// TLS 1.2 with AES-GCM: an explicit nonce leads each record body.
    explicit_nonce: bool,
    receive: Direction,
    send: Direction,
    /// Records sent with one key at most.
    send_limit: u64,
    kernel: KernelConnection<ServerConnectionData>,
    /// The client asked for a key update: ours goes out before the next record.
    update_requested: bool,
    /// What the client may still send of what carries nothing (see [`ALLOWED_WARNINGS`]).
    warnings_left: u8,
    key_updates_left: u8,
    empty_records_left: u8,
}

impl std::fmt::Debug for RecordLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordLayer")
            .field("tls13", &self.tls13)
            .field("receive", &self.receive)
            .field("send", &self.send)
            .finish_non_exhaustive()
    }
}

impl RecordLayer {
    /// The record layer of a connection whose handshake rustls finished.
    pub(super) fn new(
        secrets: ExtractedSecrets,
        kernel: KernelConnection<ServerConnectionData>,
    ) -> Result<Self, RecordError> {
        let suite = kernel.negotiated_cipher_suite();
        let tls13 = kernel.protocol_version() == ProtocolVersion::TLSv1_3;
        let (explicit_nonce, send_limit) = match suite {
            SupportedCipherSuite::Tls12(suite) => (
                !matches!(
                    secrets.tx.1,
                    ConnectionTrafficSecrets::Chacha20Poly1305 { .. }
                ),
                suite.common.confidentiality_limit,
            ),
            SupportedCipherSuite::Tls13(suite) => (false, suite.common.confidentiality_limit),
        };
        Ok(RecordLayer {
            tls13,
            explicit_nonce: explicit_nonce && !tls13,
            receive: Direction::new(secrets.rx)?,
            send: Direction::new(secrets.tx)?,
            send_limit: send_limit.min(RECEIVE_LIMIT),
            kernel,
            update_requested: false,
            warnings_left: ALLOWED_WARNINGS,
            key_updates_left: ALLOWED_KEY_UPDATES,
            empty_records_left: ALLOWED_EMPTY_RECORDS,
        })
    }

    /// Records sent with the current sending keys.
    #[cfg(test)]
    pub(super) fn records_sent(&self) -> u64 {
        self.send.seq
    }

    /// The bytes of a record's body that are not its plaintext, in front of it.
    fn prefix(&self) -> usize {
        if self.explicit_nonce {
            EXPLICIT_NONCE
        } else {
            0
        }
    }

    /// The length of the record whose header starts `bytes`, once the header is there.
    pub(super) fn record_length(bytes: &[u8]) -> Result<Option<usize>, RecordError> {
        if bytes.len() < HEADER {
            return Ok(None);
        }
        let body = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        if body > MAX_BODY {
            return Err(RecordError::Overflow(body));
        }
        Ok(Some(HEADER + body))
    }

    /// Decrypts one whole record (header included) in place.
    pub(super) fn open(&mut self, record: &mut [u8]) -> Result<Opened, RecordError> {
        if self.receive.seq >= RECEIVE_LIMIT {
            return Err(RecordError::Exhausted);
        }
        let (header, body) = record.split_at_mut(HEADER);
        let outer_type = header[0];
        let nonce = self.receive.nonce();
        let (content_type, start, length) = if self.tls13 {
            if outer_type != APPLICATION_DATA {
                return Err(RecordError::Unexpected("plaintext record"));
            }
            let aad = [header[0], header[1], header[2], header[3], header[4]];
            let plain = self
                .receive
                .key
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
                .map_err(|_| RecordError::BadRecordMac)?;
            // The inner plaintext: content, its type, then zeros.
            let Some(type_at) = plain.iter().rposition(|&byte| byte != 0) else {
                return Err(RecordError::Unexpected("record without a content type"));
            };
            (plain[type_at], HEADER, type_at)
        } else {
            let prefix = self.prefix();
            if body.len() < prefix + TAG {
                return Err(RecordError::BadRecordMac);
            }
            let length = body.len() - prefix - TAG;
            let nonce = if self.explicit_nonce {
                let mut explicit = self.receive.iv;
                explicit[4..].copy_from_slice(&body[..EXPLICIT_NONCE]);
                explicit
            } else {
                nonce
            };
            let aad = tls12_aad(self.receive.seq, outer_type, length);
            self.receive
                .key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut body[prefix..],
                )
                .map_err(|_| RecordError::BadRecordMac)?;
            (outer_type, HEADER + prefix, length)
        };
        self.receive.seq += 1;
        if length > MAX_PLAINTEXT {
            return Err(RecordError::Overflow(length));
        }
        let content = &record[start..start + length];
        match content_type {
            APPLICATION_DATA if length == 0 => {
                self.empty_records_left = countdown(self.empty_records_left, "empty records")?;
                Ok(Opened::Nothing)
            }
            APPLICATION_DATA => {
                self.empty_records_left = ALLOWED_EMPTY_RECORDS;
                self.key_updates_left = ALLOWED_KEY_UPDATES;
                Ok(Opened::Data {
                    start,
                    end: start + length,
                })
            }
            ALERT => match *content {
                [_, CLOSE_NOTIFY] => Ok(Opened::CloseNotify),
                // TLS 1.3 knows one warning, user_canceled; TLS 1.2 ignores warnings.
                [WARNING, description] if description == USER_CANCELED || !self.tls13 => {
                    self.warnings_left = countdown(self.warnings_left, "warning alerts")?;
                    Ok(Opened::Nothing)
                }
                [WARNING | FATAL, description] => Err(RecordError::PeerAlert(description)),
                _ => Err(RecordError::Malformed("alert")),
            },
            HANDSHAKE if self.tls13 => self.key_updates(start, length, record),
            HANDSHAKE => Err(RecordError::Unexpected("renegotiation")),
            CHANGE_CIPHER_SPEC => Err(RecordError::Unexpected("change_cipher_spec")),
            _ => Err(RecordError::Unexpected("content type")),
        }
    }

    /// The handshake messages a TLS 1.3 client may send after the handshake: key updates.
    fn key_updates(
        &mut self,
        start: usize,
        length: usize,
        record: &[u8],
    ) -> Result<Opened, RecordError> {
        let mut messages = &record[start..start + length];
        while !messages.is_empty() {
            match *messages {
                [KEY_UPDATE, 0, 0, 1, request, ref rest @ ..] if request <= 1 => {
                    if !rest.is_empty() {
                        // New keys apply from the next record: nothing may follow.
                        return Err(RecordError::Unexpected("data after a key update"));
                    }
                    self.key_updates_left = countdown(self.key_updates_left, "key updates")?;
                    self.receive =
                        Direction::new(self.kernel.update_rx_secret().map_err(RecordError::Keys)?)?;
                    self.update_requested |= request == 1;
                    messages = rest;
                }
                [KEY_UPDATE, ..] => return Err(RecordError::Malformed("key update")),
                _ => return Err(RecordError::Unexpected("handshake message")),
            }
        }
        Ok(Opened::Nothing)
    }

    /// Where the plaintext of a record sealed by [`RecordLayer::seal`] goes in its
    /// buffer.
    pub(super) fn plaintext_offset(&self) -> usize {
        HEADER + self.prefix()
    }

    /// Whether a `KeyUpdate` must go out before the next record.
    pub(super) fn wants_key_update(&self) -> bool {
        self.tls13
            && (self.update_requested
                || self.send.seq >= self.send_limit.saturating_sub(UPDATE_MARGIN))
    }

    /// Seals our `KeyUpdate` into `out` and takes new sending keys; the record's length.
    pub(super) fn seal_key_update(&mut self, out: &mut [u8]) -> Result<usize, RecordError> {
        let offset = self.plaintext_offset();
        out[offset..offset + 5].copy_from_slice(&[KEY_UPDATE, 0, 0, 1, 0]);
        let length = self.seal(HANDSHAKE, out, 5)?;
        self.send = Direction::new(self.kernel.update_tx_secret().map_err(RecordError::Keys)?)?;
        self.update_requested = false;
        Ok(length)
    }

    /// Seals an alert into `out`; the record's length.
    pub(super) fn seal_alert(
        &mut self,
        description: u8,
        out: &mut [u8],
    ) -> Result<usize, RecordError> {
        let offset = self.plaintext_offset();
        let level = if description == CLOSE_NOTIFY {
            WARNING
        } else {
            FATAL
        };
        out[offset..offset + 2].copy_from_slice(&[level, description]);
        self.seal(ALERT, out, 2)
    }

    /// Seals the `close_notify` alert into `out`; the record's length.
    pub(super) fn seal_close_notify(&mut self, out: &mut [u8]) -> Result<usize, RecordError> {
        self.seal_alert(CLOSE_NOTIFY, out)
    }

    /// Seals `length` bytes of application data, already at
    /// [`RecordLayer::plaintext_offset`] in `out`, into a record that starts `out`;
    /// the record's length. `out` has room for [`MAX_OVERHEAD`] bytes more.
    pub(super) fn seal_data(
        &mut self,
        out: &mut [u8],
        length: usize,
    ) -> Result<usize, RecordError> {
        self.seal(APPLICATION_DATA, out, length)
    }

    fn seal(
        &mut self,
        content_type: u8,
        out: &mut [u8],
        length: usize,
    ) -> Result<usize, RecordError> {
        if self.send.seq >= self.send_limit {
            return Err(RecordError::Exhausted);
        }
        let prefix = self.prefix();
        let nonce = self.send.nonce();
        let (outer_type, sealed) = if self.tls13 {
            out[HEADER + length] = content_type;
            (APPLICATION_DATA, length + 1)
        } else {
            (content_type, length)
        };
        let body = prefix + sealed + TAG;
        let header = [outer_type, 3, 3, (body >> 8) as u8, body as u8];
        out[..HEADER].copy_from_slice(&header);
        if self.explicit_nonce {
            out[HEADER..HEADER + EXPLICIT_NONCE].copy_from_slice(&nonce[4..]);
        }
        let plain = &mut out[HEADER + prefix..HEADER + prefix + sealed];
        let tag = if self.tls13 {
            self.send.key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                plain,
            )
        } else {
            let aad = tls12_aad(self.send.seq, content_type, length);
            self.send.key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                plain,
            )
        }
        .map_err(|_| RecordError::Exhausted)?;
        let tag_at = HEADER + prefix + sealed;
        out[tag_at..tag_at + TAG].copy_from_slice(tag.as_ref());
        self.send.seq += 1;
        Ok(HEADER + body)
    }
}
