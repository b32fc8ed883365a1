//! A test DNS server: UDP on 127.0.0.1 with a free port, answering A and AAAA
//! queries for the names a test sets, with the TTL it sets, changeable while it
//! runs. A name it does not know gets NXDOMAIN; a name set to fail gets SERVFAIL.
//! Messages are encoded with `hickory-proto`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

/// What the server answers for one name.
#[derive(Debug, Clone)]
enum Entry {
    Addresses(Vec<IpAddr>),
    Fail,
}

#[derive(Debug, Default)]
struct Zone {
    names: HashMap<String, Entry>,
    ttl: u32,
}

/// A running test DNS server; stopped on drop.
pub struct TestDnsServer {
    address: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestDnsServer {
    /// Starts a server on 127.0.0.1 with a free port, answering with `ttl` seconds.
    pub fn start(ttl: u32) -> io::Result<TestDnsServer> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let address = socket.local_addr()?;
        let zone = Arc::new(Mutex::new(Zone {
            names: HashMap::new(),
            ttl,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicU64::new(0));
        let thread = {
            let (zone, stop, queries) = (zone.clone(), stop.clone(), queries.clone());
            std::thread::Builder::new()
                .name("test-dns".into())
                .spawn(move || serve(&socket, &zone, &stop, &queries))?
        };
        Ok(TestDnsServer {
            address,
            zone,
            queries,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Answers `name` with `addresses` from now on.
    pub fn set(&self, name: &str, addresses: &[IpAddr]) {
        self.zone()
            .names
            .insert(normalize(name), Entry::Addresses(addresses.to_vec()));
    }

    /// Answers `name` with SERVFAIL from now on.
    pub fn fail(&self, name: &str) {
        self.zone().names.insert(normalize(name), Entry::Fail);
    }

    /// Forgets `name`: NXDOMAIN from now on.
    pub fn remove(&self, name: &str) {
        self.zone().names.remove(&normalize(name));
    }

    /// Queries received so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    fn zone(&self) -> std::sync::MutexGuard<'_, Zone> {
        self.zone.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn serve(socket: &UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool, queries: &AtomicU64) {
    let mut buffer = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        queries.fetch_add(1, Ordering::Relaxed);
        let zone = zone.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = answer(&buffer[..length], &zone) {
            let _ = socket.send_to(&answer, peer);
        }
    }
}

/// The response to one query message, encoded; `None` for what is not a query.
fn answer(query: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.message_type() != MessageType::Query {
        return None;
    }
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(true)
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .add_queries(request.queries().to_vec());
    for question in request.queries() {
        match zone.names.get(&normalize(&question.name().to_ascii())) {
            None => {
                response.set_response_code(ResponseCode::NXDomain);
            }
            Some(Entry::Fail) => {
                response.set_response_code(ResponseCode::ServFail);
            }
            Some(Entry::Addresses(addresses)) => {
                for address in addresses {
                    let rdata = match (question.query_type(), address) {
                        (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                        (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                        _ => continue,
                    };
                    response.add_answer(Record::from_rdata(
                        question.name().clone(),
                        zone.ttl,
                        rdata,
                    ));
                }
            }
        }
    }
    response.to_bytes().ok()
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    use super::*;

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut message = Message::new();
        message
            .set_id(7)
            .set_message_type(MessageType::Query)
            .add_query(Query::query(Name::from_str(name).unwrap(), kind));
        message.to_bytes().unwrap()
    }

    #[test]
    fn answers_the_addresses_set_with_their_ttl() {
        let mut zone = Zone {
            ttl: 30,
            ..Zone::default()
        };
        let addresses = vec!["127.0.0.2".parse().unwrap(), "::1".parse().unwrap()];
        zone.names
            .insert("api.test".into(), Entry::Addresses(addresses));
        let response =
            Message::from_vec(&answer(&query("API.test.", RecordType::A), &zone).unwrap()).unwrap();
        assert_eq!(response.id(), 7);
        assert_eq!(response.response_code(), ResponseCode::NoError);
        assert_eq!(response.answers().len(), 1);
        assert_eq!(response.answers()[0].ttl(), 30);
        assert_eq!(
            response.answers()[0].data(),
            &RData::A(A("127.0.0.2".parse().unwrap()))
        );
        let six = Message::from_vec(&answer(&query("api.test.", RecordType::AAAA), &zone).unwrap())
            .unwrap();
        assert_eq!(six.answers().len(), 1);
    }

    #[test]
    fn unknown_and_failing_names_get_errors() {
        let mut zone = Zone::default();
        let unknown =
            Message::from_vec(&answer(&query("x.test.", RecordType::A), &zone).unwrap()).unwrap();
        assert_eq!(unknown.response_code(), ResponseCode::NXDomain);
        zone.names.insert("x.test".into(), Entry::Fail);
        let failing =
            Message::from_vec(&answer(&query("x.test.", RecordType::A), &zone).unwrap()).unwrap();
        assert_eq!(failing.response_code(), ResponseCode::ServFail);
    }
}
