use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use prost::Message;

use super::*;
use crate::proto::CustomAnswer;

type Answers = Channel<CustomAnswer, CustomAnswer>;

fn answer(status: u32, content_len: usize) -> CustomAnswer {
    CustomAnswer {
        status,
        content: "x".repeat(content_len),
    }
}

fn frame(message: &CustomAnswer) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&body);
    bytes
}

/// A channel reading what the returned raw stream writes.
fn raw_writer() -> (UnixStream, Answers) {
    let (writer, reader) = UnixStream::pair().expect("socket pair");
    (writer, Channel::new(reader))
}

#[test]
fn round_trip_in_blocking_mode() {
    let (mut left, mut right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    let sent = answer(503, 20);
    left.write_message(&sent).expect("write");
    assert_eq!(right.read_message().expect("read"), sent);
    right.write_message(&answer(404, 3)).expect("write back");
    assert_eq!(left.read_message().expect("read back"), answer(404, 3));
}

#[test]
fn several_frames_in_one_write_are_all_delivered() {
    let (mut writer, mut reader) = raw_writer();
    let messages: Vec<_> = (0..5).map(|i| answer(i, i as usize * 7)).collect();
    let bytes: Vec<u8> = messages.iter().flat_map(frame).collect();
    writer.write_all(&bytes).expect("write");
    assert_eq!(reader.read_message().expect("first"), messages[0]);
    reader.set_nonblocking(true).expect("nonblocking");
    assert_eq!(reader.read_available().expect("rest"), messages[1..]);
    assert!(reader.read_available().expect("nothing more").is_empty());
}

#[test]
fn frame_split_byte_by_byte_is_reassembled() {
    let (mut writer, mut reader) = raw_writer();
    reader.set_nonblocking(true).expect("nonblocking");
    let message = answer(200, 40);
    let bytes = frame(&message);
    let (last, head) = bytes.split_last().expect("non-empty frame");
    for byte in head {
        writer.write_all(&[*byte]).expect("write byte");
        assert!(reader.read_available().expect("partial").is_empty());
        assert!(matches!(
            reader.read_message(),
            Err(ChannelError::WouldBlock)
        ));
    }
    writer.write_all(&[*last]).expect("last byte");
    assert_eq!(reader.read_available().expect("complete"), vec![message]);
}

#[test]
fn blocking_read_waits_for_a_split_frame() {
    let (mut writer, mut reader) = raw_writer();
    let message = answer(200, 300);
    let bytes = frame(&message);
    let sender = std::thread::spawn(move || {
        for chunk in bytes.chunks(7) {
            writer.write_all(chunk).expect("write chunk");
        }
    });
    assert_eq!(reader.read_message().expect("read"), message);
    sender.join().expect("sender thread");
}

#[test]
fn oversized_prefix_is_refused_before_allocating() {
    let (mut writer, mut reader) = raw_writer();
    // A 4 GiB announcement: buffering it would exhaust memory.
    writer
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2])
        .expect("write");
    match reader.read_message() {
        Err(ChannelError::FrameTooLarge { size, max }) => {
            assert_eq!(size, u32::MAX as usize);
            assert_eq!(max, DEFAULT_MAX_FRAME_SIZE);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert!(reader.read_buffer.allocated() <= 4096);
}

#[test]
fn custom_max_frame_size_applies_to_both_directions() {
    let (left, right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    let mut left = left.with_max_frame_size(64);
    let mut right = right.with_max_frame_size(16);
    assert!(matches!(
        left.write_message(&answer(200, 100)),
        Err(ChannelError::FrameTooLarge { max: 64, .. })
    ));
    assert!(!left.has_pending_writes());
    left.write_message(&answer(200, 30))
        .expect("fits the sender");
    assert!(matches!(
        right.read_message(),
        Err(ChannelError::FrameTooLarge { max: 16, .. })
    ));
}

#[test]
fn read_buffer_never_exceeds_max_frame_plus_prefix() {
    let max = 256 * 1024;
    let (left, right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    let (mut left, mut right) = (
        left.with_max_frame_size(max),
        right.with_max_frame_size(max),
    );
    let big = answer(200, max - 16);
    assert!(big.encoded_len() <= max);
    let sender = std::thread::spawn(move || {
        for _ in 0..3 {
            left.write_message(&big).expect("write big");
        }
    });
    for _ in 0..3 {
        let received = right.read_message().expect("read big");
        assert_eq!(received.content.len(), max - 16);
        assert!(right.read_buffer.allocated() <= max + FRAME_PREFIX_SIZE);
    }
    sender.join().expect("sender thread");
}

#[test]
fn a_large_frame_is_given_room_for_all_of_it_once_its_size_is_read() {
    let size = 1024 * 1024;
    let mut buffer = super::read_buffer::ReadBuffer::new(4 * size);
    let mut prefix = (size as u32).to_be_bytes().to_vec();
    prefix.resize(4096, 7);
    let read = buffer
        .read_with(|room| {
            room[..prefix.len()].copy_from_slice(&prefix);
            Ok(prefix.len())
        })
        .expect("first read");
    assert_eq!(read, 4096);
    assert!(buffer.allocated() <= 4096);
    buffer
        .read_with(|room| Ok(room.len()))
        .expect("second read");
    assert_eq!(buffer.allocated(), size + FRAME_PREFIX_SIZE);
    assert!(buffer.next_frame(4 * size).expect("frame").is_some());
}

#[test]
fn an_oversized_announcement_never_sizes_the_buffer() {
    let mut buffer = super::read_buffer::ReadBuffer::new(64 * 1024);
    buffer
        .read_with(|room| {
            room[..4].copy_from_slice(&u32::MAX.to_be_bytes());
            Ok(room.len())
        })
        .expect("first read");
    buffer
        .read_with(|room| Ok(room.len()))
        .expect("second read");
    assert_eq!(buffer.allocated(), 8 * 1024);
}

#[test]
fn clean_close_between_frames_is_eof() {
    let (writer, mut reader) = raw_writer();
    drop(writer);
    assert!(matches!(reader.read_message(), Err(ChannelError::Eof)));
}

#[test]
fn close_inside_a_frame_is_truncated() {
    let (mut writer, mut reader) = raw_writer();
    writer.write_all(&[0, 0, 0, 10, 1, 2, 3]).expect("write");
    drop(writer);
    match reader.read_message() {
        Err(ChannelError::Truncated { expected, received }) => {
            assert_eq!((expected, received), (14, 7));
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn close_inside_the_prefix_is_truncated() {
    let (mut writer, mut reader) = raw_writer();
    writer.write_all(&[0, 0]).expect("write");
    drop(writer);
    assert!(matches!(
        reader.read_message(),
        Err(ChannelError::Truncated {
            expected: 4,
            received: 2
        })
    ));
}

#[test]
fn garbage_frame_is_a_decode_error_and_the_stream_goes_on() {
    let (mut writer, mut reader) = raw_writer();
    let mut bytes = frame(&answer(1, 1));
    bytes.extend_from_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
    bytes.extend_from_slice(&frame(&answer(3, 3)));
    writer.write_all(&bytes).expect("write");
    reader.set_nonblocking(true).expect("nonblocking");
    assert_eq!(reader.read_available().expect("first"), vec![answer(1, 1)]);
    assert!(matches!(
        reader.read_available(),
        Err(ChannelError::Decode(_))
    ));
    assert_eq!(reader.read_available().expect("third"), vec![answer(3, 3)]);
}

#[test]
fn frames_before_eof_are_returned_then_eof() {
    let (mut writer, mut reader) = raw_writer();
    reader.set_nonblocking(true).expect("nonblocking");
    let bytes: Vec<u8> = [answer(1, 1), answer(2, 2)]
        .iter()
        .flat_map(frame)
        .collect();
    writer.write_all(&bytes).expect("write");
    drop(writer);
    assert_eq!(reader.read_available().expect("frames").len(), 2);
    assert!(matches!(reader.read_available(), Err(ChannelError::Eof)));
    assert!(matches!(reader.read_available(), Err(ChannelError::Eof)));
}

#[test]
fn read_timeout_expires_then_a_later_message_is_read() {
    let (mut left, mut right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    let started = Instant::now();
    assert!(matches!(
        right.read_message_timeout(Duration::from_millis(50)),
        Err(ChannelError::Timeout)
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    left.write_message(&answer(200, 5)).expect("write");
    let received = right
        .read_message_timeout(Duration::from_secs(5))
        .expect("read");
    assert_eq!(received, answer(200, 5));
}

#[test]
fn nonblocking_partial_write_is_resumed_by_flush() {
    let (mut writer, mut reader) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    writer.set_nonblocking(true).expect("writer nonblocking");
    reader.set_nonblocking(true).expect("reader nonblocking");
    // Larger than a Unix socket's buffer, so the first write cannot finish.
    let big = answer(200, 900 * 1024);
    writer.write_message(&big).expect("queue");
    assert!(writer.has_pending_writes());
    let mut received = Vec::new();
    for _ in 0..10_000 {
        let flushed = writer.flush().expect("flush");
        received.extend(reader.read_available().expect("read"));
        if flushed && !received.is_empty() {
            break;
        }
    }
    assert_eq!(received, vec![big]);
    assert!(!writer.has_pending_writes());
}

#[test]
fn ten_thousand_frames_stream_in_order_in_nonblocking_mode() {
    const COUNT: u32 = 10_000;
    let (mut writer, mut reader) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    writer.set_nonblocking(true).expect("writer nonblocking");
    reader.set_nonblocking(true).expect("reader nonblocking");
    let mut received = Vec::with_capacity(COUNT as usize);
    for status in 0..COUNT {
        writer
            .write_message(&answer(status, (status % 97) as usize))
            .expect("write");
        if status % 64 == 0 {
            received.extend(reader.read_available().expect("read"));
        }
    }
    for _ in 0..100_000 {
        if received.len() == COUNT as usize {
            break;
        }
        writer.flush().expect("flush");
        received.extend(reader.read_available().expect("read"));
    }
    assert_eq!(received.len(), COUNT as usize);
    for (expected, message) in (0..COUNT).zip(&received) {
        assert_eq!(message, &answer(expected, (expected % 97) as usize));
    }
}

#[test]
fn a_frame_encoded_once_is_read_the_same_on_every_channel() {
    let sent = answer(200, 300);
    let encoded = EncodedFrame::new(&sent).expect("encode");
    assert_eq!(encoded.message_len(), sent.encoded_len());
    for _ in 0..2 {
        let (mut left, mut right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
        left.write_encoded_with_fds(&encoded, &[]).expect("write");
        assert_eq!(right.read_message().expect("read"), sent);
    }
}

#[test]
fn an_encoded_frame_too_large_for_the_channel_is_refused_and_nothing_is_queued() {
    let encoded = EncodedFrame::new(&answer(200, 100)).expect("encode");
    let (left, _right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    let mut left = left.with_max_frame_size(64);
    assert!(matches!(
        left.write_encoded_with_fds(&encoded, &[]),
        Err(ChannelError::FrameTooLarge { max: 64, .. })
    ));
    assert!(!left.has_pending_writes());
}

#[test]
fn an_encoded_frame_carries_its_descriptors() {
    use std::os::fd::AsFd;
    let (mut left, right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    let mut right = right.accepting_fds();
    let (carried, _other_end) = UnixStream::pair().expect("socket pair");
    let sent = answer(201, 5);
    let encoded = EncodedFrame::new(&sent).expect("encode");
    left.write_encoded_with_fds(&encoded, &[carried.as_fd()])
        .expect("write");
    assert_eq!(right.read_message().expect("read"), sent);
    assert_eq!(right.received_fd_count(), 1);
}

#[test]
fn a_large_frame_once_written_does_not_pin_its_room() {
    let (left, right) = channel_pair::<CustomAnswer, CustomAnswer>().expect("pair");
    let mut left = left.with_max_frame_size(4 << 20);
    let mut right = right.with_max_frame_size(4 << 20);
    let large = answer(200, 1 << 20);
    let reader = std::thread::spawn(move || {
        let read = right.read_message().expect("read");
        (read, right)
    });
    left.write_message(&large).expect("write");
    let (read, mut right) = reader.join().expect("reader");
    assert_eq!(read, large);
    assert!(left.write_queue.capacity() <= WRITE_SHRINK_ABOVE);
    left.write_message(&answer(200, 10)).expect("a small one");
    assert!(left.write_queue.capacity() <= WRITE_SHRINK_ABOVE);
    assert_eq!(right.read_message().expect("read"), answer(200, 10));
}
