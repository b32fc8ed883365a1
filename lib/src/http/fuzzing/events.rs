//! What may happen around one HTTP session, in any order the loop allows, and
//! how a fuzzer's bytes become such events.

/// Requests, parts of requests and bodies a client sends (whole messages make
/// the interesting states reachable; raw bytes cover the rest).
pub const CLIENT_SENDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: other.com\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: example.com\r\nCookie: SLUICEID=b2\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 34\r\n\r\nGET / HTTP/1.1\r\nHost:other.com\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: other.com\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"PUT / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    b"PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100000\r\n\r\n",
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET /deny HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: nowhere.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: exa",
    b"hello",
    b"abc",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"\r\n",
];

/// Responses, parts of responses and bodies a backend sends.
pub const BACKEND_SENDS: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 204 \r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nCont",
    b"hello",
    b"2\r\nhi\r\n",
    b"0\r\n\r\n",
];

/// Sticky ids a connected backend may have.
const STICKY_IDS: [Option<&str>; 3] = [None, Some("b1"), Some("b2")];

/// How a connection the session asked for turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// A fresh connection is up; the backend has this sticky id.
    Connected(Option<&'static str>),
    /// A kept idle connection was taken (only where the session allowed it;
    /// elsewhere the loop connects afresh).
    Reused(Option<&'static str>),
    /// Every attempt failed.
    Failed,
    /// The cluster has no backend to try.
    Unavailable,
}

/// One thing that happens to the session's sockets or timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The client writes these bytes (read by the loop later).
    ClientSends(Vec<u8>),
    /// The client shuts its writing side down (EOF after what it sent).
    ClientCloses,
    /// The client socket is readable: the loop reads at most `max` bytes.
    FrontReadable {
        /// Most bytes one read returns.
        max: usize,
    },
    /// The client socket is writable: the loop writes at most `max` bytes.
    FrontWritable {
        /// Most bytes one write takes.
        max: usize,
    },
    /// The loop drops the session (client socket error, a timer of the loop's
    /// own, a drain): it gives every buffer back.
    Dropped,
    /// The backend writes these bytes.
    BackendSends(Vec<u8>),
    /// The backend shuts its writing side down.
    BackendCloses,
    /// The backend socket is readable: the loop reads at most `max` bytes.
    BackReadable {
        /// Most bytes one read returns.
        max: usize,
    },
    /// The backend socket is writable: the loop writes at most `max` bytes.
    BackWritable {
        /// Most bytes one write takes.
        max: usize,
    },
    /// The backend connection broke (reset, error).
    BackendBroken,
    /// The connection asked for is ready or failed.
    Connect(ConnectOutcome),
    /// The session's timer fires (the kind it expects now).
    TimerFires,
}

/// Reads events from a fuzzer's bytes, one opcode byte and its operands each;
/// bytes missing at the end read as zero.
#[derive(Debug)]
pub struct EventReader<'a> {
    data: &'a [u8],
}

impl<'a> EventReader<'a> {
    /// Events from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        EventReader { data }
    }

    fn byte(&mut self) -> u8 {
        let (first, rest) = self
            .data
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.data = rest;
        first
    }

    /// A palette entry, or up to 64 raw bytes when the high bit is set.
    fn bytes(&mut self, palette: &[&[u8]]) -> Vec<u8> {
        let selector = self.byte();
        if selector & 0x80 == 0 {
            return palette[usize::from(selector) % palette.len()].to_vec();
        }
        let len = usize::from(selector & 0x3f) + 1;
        let (raw, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        raw.to_vec()
    }

    /// A read or write size: 1 to 127 bytes, or as much as possible.
    fn size(&mut self) -> usize {
        match self.byte() {
            b if b >= 128 => usize::MAX,
            b => usize::from(b).max(1),
        }
    }

    fn sticky(&mut self) -> Option<&'static str> {
        STICKY_IDS[usize::from(self.byte()) % STICKY_IDS.len()]
    }
}

impl Iterator for EventReader<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.data.is_empty() {
            return None;
        }
        Some(match self.byte() % 32 {
            0..=3 => Event::ClientSends(self.bytes(CLIENT_SENDS)),
            4 => Event::ClientCloses,
            5..=7 => Event::FrontReadable { max: self.size() },
            8..=10 => Event::FrontWritable { max: self.size() },
            11 => Event::Dropped,
            12..=15 => Event::BackendSends(self.bytes(BACKEND_SENDS)),
            16 => Event::BackendCloses,
            17..=19 => Event::BackReadable { max: self.size() },
            20..=22 => Event::BackWritable { max: self.size() },
            23 => Event::BackendBroken,
            24..=26 => Event::Connect(match self.byte() % 4 {
                0 => ConnectOutcome::Connected(self.sticky()),
                1 => ConnectOutcome::Reused(self.sticky()),
                2 => ConnectOutcome::Failed,
                _ => ConnectOutcome::Unavailable,
            }),
            27 | 28 => Event::TimerFires,
            // Whole reads and writes, to move bytes along quickly.
            29 => Event::FrontReadable { max: usize::MAX },
            30 => Event::BackWritable { max: usize::MAX },
            _ => Event::FrontWritable { max: usize::MAX },
        })
    }
}
