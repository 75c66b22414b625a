//! Property tests of the framing and the body encoding, for all three frame types: every frame
//! round-trips, frames concatenate, incomplete input is `Ok(None)`, damaged input is an error and
//! never a panic. The exact bytes `PROTOCOL.md` documents are pinned in `encoding.rs`.
//!
//! The case count is kept small for debug builds; search deeper with e.g.
//! `PROPTEST_CASES=5000 cargo test --release -p chatroom-protocol --test roundtrip`.

use std::fmt::Debug;

use bytes::{BufMut, BytesMut};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};

use chatroom_protocol::{
    Attributes, ClientFrame, DecodeError, ErrorCode, ErrorFrame, Frame, FrameDecoder, HEADER_LEN,
    Hello, JoinedRoom, LeaveReason, MAX_FRAME_LEN, MemberInfo, MemberPage, Priority,
    PrivateMessage, Request, RequestBody, Response, ResponseBody, ResumeRequest, Role, RoomFrame,
    RoomMessage, RoomPosition, ServerFrame, SessionLimits, Welcome, decode_body, encode,
    encode_into,
};

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Cases per property: small by default so the file runs in seconds in debug builds.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128);
    ProptestConfig::with_cases(cases)
}

/// Strings of every shape: empty, id-like, any Unicode scalar values (control characters
/// included), and ASCII strings around the 251-byte point where a length needs three bytes.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => Just(String::new()),
        3 => "[a-zA-Z0-9_.:@-]{1,12}",
        4 => vec(any::<char>(), 0..16).prop_map(String::from_iter),
        1 => "[ -~]{248,254}",
    ]
    .boxed()
}

/// `u64` values at every varint boundary, small values and anything at all.
fn int64() -> BoxedStrategy<u64> {
    prop_oneof![
        select(vec![
            0,
            1,
            250,
            251,
            252,
            253,
            255,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX - 1,
            u64::MAX,
        ]),
        0u64..1000,
        any::<u64>(),
    ]
    .boxed()
}

/// `u32` values at every varint boundary, small values and anything at all.
fn int32() -> BoxedStrategy<u32> {
    prop_oneof![
        select(vec![0, 1, 250, 251, 0xffff, 0x1_0000, u32::MAX - 1, u32::MAX]),
        0u32..1000,
        any::<u32>(),
    ]
    .boxed()
}

fn attributes() -> BoxedStrategy<Attributes> {
    btree_map(text(), text(), 0..5).boxed()
}

fn role() -> impl Strategy<Value = Role> {
    select(vec![Role::Member, Role::Admin, Role::Owner])
}

fn priority() -> impl Strategy<Value = Priority> {
    select(vec![Priority::Low, Priority::Normal, Priority::High])
}

fn leave_reason() -> impl Strategy<Value = LeaveReason> {
    select(vec![LeaveReason::Requested, LeaveReason::Kicked, LeaveReason::ServerShutdown])
}

/// Every known code, and any `u16` at all (mostly `Unknown`). `from_u16` keeps the value
/// canonical: `Unknown(1)` would decode as `BadRequest`, which is not a round-trip failure.
fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![select(ErrorCode::ALL.to_vec()), any::<u16>().prop_map(ErrorCode::from_u16)]
}

fn error_frame() -> impl Strategy<Value = ErrorFrame> {
    (error_code(), text()).prop_map(|(code, message)| ErrorFrame { code, message })
}

fn room_position() -> impl Strategy<Value = RoomPosition> {
    (text(), int64(), int64()).prop_map(|(room, last_seq, last_private_seq)| RoomPosition {
        room,
        last_seq,
        last_private_seq,
    })
}

fn resume_request() -> impl Strategy<Value = ResumeRequest> {
    (text(), vec(room_position(), 0..4)).prop_map(|(token, rooms)| ResumeRequest { token, rooms })
}

fn hello() -> impl Strategy<Value = Hello> {
    (int32(), text(), option::of(text()), text(), option::of(resume_request())).prop_map(
        |(version, user, token, agent, resume)| Hello { version, user, token, agent, resume },
    )
}

fn request_body() -> BoxedStrategy<RequestBody> {
    prop_oneof![
        option::of(text()).prop_map(|room| RequestBody::CreateRoom { room }),
        text().prop_map(|room| RequestBody::Join { room }),
        text().prop_map(|room| RequestBody::Leave { room }),
        (text(), text(), option::of(text()), priority()).prop_map(
            |(room, text, kind, priority)| RequestBody::Send { room, text, kind, priority }
        ),
        (text(), text(), text(), option::of(text()))
            .prop_map(|(room, to, text, kind)| RequestBody::Private { room, to, text, kind }),
        (text(), text(), role()).prop_map(|(room, user, role)| RequestBody::SetRole {
            room,
            user,
            role
        }),
        (text(), text(), option::of(int64())).prop_map(|(room, user, seconds)| RequestBody::Mute {
            room,
            user,
            seconds
        }),
        (text(), text()).prop_map(|(room, user)| RequestBody::Unmute { room, user }),
        (text(), text()).prop_map(|(room, user)| RequestBody::Kick { room, user }),
        (text(), attributes(), vec(text(), 0..4))
            .prop_map(|(room, set, remove)| RequestBody::SetAttributes { room, set, remove }),
        (text(), text()).prop_map(|(room, user)| RequestBody::GetAttributes { room, user }),
        text().prop_map(|room| RequestBody::MemberCount { room }),
        (text(), option::of(text()), int32())
            .prop_map(|(room, after, limit)| RequestBody::Members { room, after, limit }),
    ]
    .boxed()
}

fn client_frame() -> BoxedStrategy<ClientFrame> {
    prop_oneof![
        hello().prop_map(ClientFrame::Hello),
        (int64(), request_body()).prop_map(|(id, body)| ClientFrame::Request(Request { id, body })),
    ]
    .boxed()
}

fn session_limits() -> impl Strategy<Value = SessionLimits> {
    (int32(), int32(), int32(), int32(), int32(), int32()).prop_map(|(a, b, c, d, e, f)| {
        SessionLimits {
            max_frame_len: a,
            max_message_len: b,
            max_attribute_keys: c,
            max_attributes_len: d,
            max_rooms_per_connection: e,
            max_members_page: f,
        }
    })
}

fn member_info() -> impl Strategy<Value = MemberInfo> {
    (text(), role(), attributes()).prop_map(|(user, role, attributes)| MemberInfo {
        user,
        role,
        attributes,
    })
}

fn joined_room() -> impl Strategy<Value = JoinedRoom> {
    (text(), role(), int64(), int64(), int64(), int64()).prop_map(
        |(room, role, members, next_seq, stream_id, epoch)| JoinedRoom {
            room,
            role,
            members,
            next_seq,
            stream_id,
            epoch,
        },
    )
}

fn response_body() -> BoxedStrategy<ResponseBody> {
    prop_oneof![
        Just(ResponseBody::Done),
        text().prop_map(|room| ResponseBody::RoomCreated { room }),
        joined_room().prop_map(ResponseBody::Joined),
        (text(), int64()).prop_map(|(room, seq)| ResponseBody::Sent { room, seq }),
        (text(), text(), attributes()).prop_map(|(room, user, attributes)| {
            ResponseBody::Attributes { room, user, attributes }
        }),
        (text(), int64()).prop_map(|(room, count)| ResponseBody::MemberCount { room, count }),
        (text(), int64(), vec(member_info(), 0..4), option::of(text())).prop_map(
            |(room, count, members, next)| {
                ResponseBody::Members(MemberPage { room, count, members, next })
            }
        ),
    ]
    .boxed()
}

/// A welcome of every kind: fresh, resumed (with rooms), refused (with a reason), and
/// combinations no server sends but every decoder must still round-trip.
fn welcome() -> impl Strategy<Value = Welcome> {
    let session = (int32(), text(), text(), text(), session_limits());
    let resume =
        (text(), int64(), any::<bool>(), option::of(error_frame()), vec(joined_room(), 0..4));
    (session, resume).prop_map(
        |(
            (version, user, region, session_id, limits),
            (resume_token, resume_window_ms, resumed, resume_refused, rooms),
        )| Welcome {
            version,
            user,
            region,
            session_id,
            limits,
            resume_token,
            resume_window_ms,
            resumed,
            resume_refused,
            rooms,
        },
    )
}

fn server_frame() -> BoxedStrategy<ServerFrame> {
    let result = prop_oneof![response_body().prop_map(Ok), error_frame().prop_map(Err)];
    prop_oneof![
        welcome().prop_map(ServerFrame::Welcome),
        error_frame().prop_map(ServerFrame::Rejected),
        (int64(), result).prop_map(|(id, result)| ServerFrame::Response(Response { id, result })),
        text().prop_map(|reason| ServerFrame::GoingAway { reason }),
    ]
    .boxed()
}

fn room_frame() -> BoxedStrategy<RoomFrame> {
    prop_oneof![
        (text(), int64()).prop_map(|(room, stream_id)| RoomFrame::Open { room, stream_id }),
        (int64(), text(), int64(), option::of(text()), priority(), text()).prop_map(
            |(seq, from, timestamp_ms, kind, priority, text)| {
                RoomFrame::Message(RoomMessage { seq, from, timestamp_ms, kind, priority, text })
            }
        ),
        (int64(), text(), int64(), option::of(text()), text()).prop_map(
            |(seq, from, timestamp_ms, kind, text)| {
                RoomFrame::Private(PrivateMessage { seq, from, timestamp_ms, kind, text })
            }
        ),
        (text(), role()).prop_map(|(user, role)| RoomFrame::MemberJoined { user, role }),
        text().prop_map(|user| RoomFrame::MemberLeft { user }),
        (text(), role(), text()).prop_map(|(user, role, by)| RoomFrame::RoleChanged {
            user,
            role,
            by
        }),
        (text(), text(), option::of(int64())).prop_map(|(user, by, seconds)| RoomFrame::Muted {
            user,
            by,
            seconds
        }),
        (text(), text()).prop_map(|(user, by)| RoomFrame::Unmuted { user, by }),
        (text(), text()).prop_map(|(user, by)| RoomFrame::Kicked { user, by }),
        (text(), attributes())
            .prop_map(|(user, attributes)| RoomFrame::AttributesChanged { user, attributes }),
        int64().prop_map(|count| RoomFrame::MemberCount { count }),
        leave_reason().prop_map(|reason| RoomFrame::Left { reason }),
        (int64(), int64()).prop_map(|(from, to)| RoomFrame::Gap { from, to }),
        (int64(), int64()).prop_map(|(from, to)| RoomFrame::PrivateGap { from, to }),
    ]
    .boxed()
}

/// One edit of an encoded frame.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit { at: Index, bit: u8 },
    SetByte { at: Index, byte: u8 },
    Insert { at: Index, byte: u8 },
    Delete { at: Index },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<Index>().prop_map(|at| Mutation::Delete { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    match *mutation {
        Mutation::Insert { ref at, byte } => {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
        }
        _ if bytes.is_empty() => {}
        Mutation::FlipBit { ref at, bit } => *at.get_mut(bytes) ^= 1 << bit,
        Mutation::SetByte { ref at, byte } => *at.get_mut(bytes) = byte,
        Mutation::Delete { ref at } => {
            bytes.remove(at.index(bytes.len()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the three frame types
// ---------------------------------------------------------------------------------------------

fn header(len: usize) -> [u8; HEADER_LEN] {
    u32::try_from(len).expect("test bodies are small").to_be_bytes()
}

fn body_of(bytes: &[u8]) -> &[u8] {
    &bytes[HEADER_LEN..]
}

/// Encodes, decodes, and checks every way the decoder can see one whole frame.
fn check_round_trip<F: Frame + Debug + PartialEq + Clone>(frame: &F) -> Result<(), TestCaseError> {
    let bytes = encode(frame).expect("every generated frame is small enough to encode");
    let body_len = bytes.len() - HEADER_LEN;
    prop_assert_eq!(&bytes[..HEADER_LEN], &header(body_len)[..], "length prefix");

    let decoder = FrameDecoder::new(MAX_FRAME_LEN);
    prop_assert_eq!(decoder.frame_len(&bytes), Ok(Some(bytes.len())));
    let mut buf = BytesMut::from(&bytes[..]);
    prop_assert_eq!(decoder.decode::<F>(&mut buf), Ok(Some(frame.clone())));
    prop_assert!(buf.is_empty(), "the frame must consume the buffer exactly");
    prop_assert_eq!(decoder.finish(&buf), Ok(()));
    prop_assert_eq!(decode_body::<F>(body_of(&bytes)), Ok(frame.clone()));

    // A decoder whose maximum is exactly the body length accepts it; one byte less does not.
    let mut buf = BytesMut::from(&bytes[..]);
    prop_assert_eq!(FrameDecoder::new(body_len).decode::<F>(&mut buf), Ok(Some(frame.clone())));
    let tight = FrameDecoder::new(body_len - 1);
    let mut buf = BytesMut::from(&bytes[..]);
    prop_assert_eq!(
        tight.decode::<F>(&mut buf),
        Err(DecodeError::TooLarge { len: body_len, max: body_len - 1 })
    );

    // `encode_into` appends the same bytes after whatever the buffer held.
    let mut out = BytesMut::from(&b"xyz"[..]);
    encode_into(frame, &mut out).expect("encodes");
    prop_assert_eq!(&out[..3], b"xyz");
    prop_assert_eq!(&out[3..], &bytes[..]);
    Ok(())
}

/// Every strict prefix is "not yet": `Ok(None)`, buffer untouched; at stream end it is
/// `Truncated` (except the empty prefix, which is a clean end).
fn check_prefixes<F: Frame + Debug + PartialEq>(frame: &F) -> Result<(), TestCaseError> {
    let bytes = encode(frame).expect("encodes");
    let decoder = FrameDecoder::new(MAX_FRAME_LEN);
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        prop_assert_eq!(decoder.decode::<F>(&mut buf), Ok(None), "cut at {}", cut);
        prop_assert_eq!(&buf[..], &bytes[..cut], "the buffer must be untouched");
        let expected =
            if cut == 0 { Ok(()) } else { Err(DecodeError::Truncated { buffered: cut }) };
        prop_assert_eq!(decoder.finish(&buf), expected);
    }
    Ok(())
}

/// A valid body followed by extra bytes, with the length prefix covering both.
fn check_trailing_bytes<F: Frame + Debug + PartialEq>(
    frame: &F,
    extra: &[u8],
) -> Result<(), TestCaseError> {
    let bytes = encode(frame).expect("encodes");
    let body = body_of(&bytes);
    let mut buf = BytesMut::new();
    buf.put_slice(&header(body.len() + extra.len()));
    buf.put_slice(body);
    buf.put_slice(extra);
    let expected = DecodeError::TrailingBytes { used: body.len(), extra: extra.len() };
    prop_assert_eq!(FrameDecoder::new(MAX_FRAME_LEN).decode::<F>(&mut buf), Err(expected.clone()));
    let mut long_body = body.to_vec();
    long_body.extend_from_slice(extra);
    prop_assert_eq!(decode_body::<F>(&long_body), Err(expected));
    Ok(())
}

/// Frames back to back decode in order, whether the bytes arrive at once or in chunks; a
/// partial frame at the end is `Truncated` when the stream ends.
fn check_stream<F: Frame + Debug + PartialEq + Clone>(
    frames: &[F],
    chunks: &[Index],
    partial: Option<(&F, Index)>,
) -> Result<(), TestCaseError> {
    let mut stream = BytesMut::new();
    for frame in frames {
        encode_into(frame, &mut stream).expect("encodes");
    }
    let mut partial_len = 0;
    if let Some((frame, cut)) = partial {
        let bytes = encode(frame).expect("encodes");
        partial_len = 1 + cut.index(bytes.len() - 1);
        stream.put_slice(&bytes[..partial_len]);
    }
    let decoder = FrameDecoder::new(MAX_FRAME_LEN);

    // All at once.
    let mut buf = stream.clone();
    for frame in frames {
        prop_assert_eq!(decoder.decode::<F>(&mut buf), Ok(Some(frame.clone())));
    }
    prop_assert_eq!(decoder.decode::<F>(&mut buf), Ok(None));
    prop_assert_eq!(buf.len(), partial_len);

    // In chunks, as a QUIC stream delivers them, draining the buffer after each arrival.
    let mut cuts: Vec<usize> = chunks.iter().map(|c| c.index(stream.len() + 1)).collect();
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    let mut from = 0;
    for to in cuts {
        buf.put_slice(&stream[from..to]);
        from = to;
        while let Some(frame) = decoder.decode::<F>(&mut buf).expect("valid stream") {
            decoded.push(frame);
        }
    }
    prop_assert_eq!(&decoded[..], frames);
    let expected = match partial_len {
        0 => Ok(()),
        buffered => Err(DecodeError::Truncated { buffered }),
    };
    prop_assert_eq!(decoder.finish(&buf), expected);
    Ok(())
}

/// Feeds arbitrary bytes to the decoder until it stops. Whatever decodes must itself
/// round-trip (it may not re-encode to the same bytes: decoding is lenient about varint width
/// and map key order).
fn check_never_panics<F: Frame + Debug + PartialEq + Clone>(
    bytes: &[u8],
    max: usize,
) -> Result<(), TestCaseError> {
    let decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.len();
        match decoder.decode::<F>(&mut buf) {
            Ok(Some(frame)) => {
                prop_assert!(buf.len() < before, "a decoded frame must consume bytes");
                check_round_trip(&frame)?;
            }
            Ok(None) => {
                prop_assert_eq!(buf.len(), before);
                let _ = decoder.finish(&buf);
                break;
            }
            Err(_) => break,
        }
    }
    if let Ok(frame) = decode_body::<F>(bytes) {
        check_round_trip(&frame)?;
    }
    Ok(())
}

/// Applies `mutations` to the encoding of `frame` (to the body only, with the length prefix
/// fixed up, when `fix_len`) and decodes the result.
fn check_mutated<F: Frame + Debug + PartialEq + Clone>(
    frame: &F,
    mutations: &[Mutation],
    fix_len: bool,
) -> Result<(), TestCaseError> {
    let bytes = encode(frame).expect("encodes");
    let damaged = if fix_len {
        let mut body = body_of(&bytes).to_vec();
        mutations.iter().for_each(|m| apply(&mut body, m));
        let mut out = header(body.len()).to_vec();
        out.extend_from_slice(&body);
        out
    } else {
        let mut out = bytes.to_vec();
        mutations.iter().for_each(|m| apply(&mut out, m));
        out
    };
    check_never_panics::<F>(&damaged, MAX_FRAME_LEN)
}

/// A length prefix above the decoder's maximum is refused from the header alone.
fn check_too_large<F: Frame + Debug>(
    max: usize,
    len: u32,
    tail: &[u8],
) -> Result<(), TestCaseError> {
    let decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
    buf.put_slice(tail);
    let expected = DecodeError::TooLarge { len: len as usize, max };
    prop_assert_eq!(decoder.frame_len(&buf), Err(expected.clone()));
    prop_assert_eq!(decoder.decode::<F>(&mut buf).unwrap_err(), expected);
    Ok(())
}

/// A body (with a correct length prefix) that starts like a frame of this type: a small variant
/// index, then anything. Gets further into the body decoder than uniform noise.
fn plausible_frames() -> impl Strategy<Value = Vec<u8>> {
    vec((0u8..16, vec(any::<u8>(), 0..48)), 1..4).prop_map(|frames| {
        let mut out = Vec::new();
        for (index, rest) in frames {
            out.extend_from_slice(&header(rest.len() + 1));
            out.push(index);
            out.extend_from_slice(&rest);
        }
        out
    })
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        check_round_trip(&frame)?;
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        check_round_trip(&frame)?;
    }

    #[test]
    fn room_frames_round_trip(frame in room_frame()) {
        check_round_trip(&frame)?;
    }

    #[test]
    fn client_prefixes_are_incomplete(frame in client_frame()) {
        check_prefixes(&frame)?;
    }

    #[test]
    fn server_prefixes_are_incomplete(frame in server_frame()) {
        check_prefixes(&frame)?;
    }

    #[test]
    fn room_prefixes_are_incomplete(frame in room_frame()) {
        check_prefixes(&frame)?;
    }

    #[test]
    fn trailing_bytes_are_rejected(
        client in client_frame(),
        server in server_frame(),
        room in room_frame(),
        extra in vec(any::<u8>(), 1..16),
    ) {
        check_trailing_bytes(&client, &extra)?;
        check_trailing_bytes(&server, &extra)?;
        check_trailing_bytes(&room, &extra)?;
    }

    #[test]
    fn client_streams_decode_in_order(
        frames in vec(client_frame(), 0..5),
        chunks in vec(any::<Index>(), 0..6),
        partial in option::of((client_frame(), any::<Index>())),
    ) {
        check_stream(&frames, &chunks, partial.as_ref().map(|(f, i)| (f, *i)))?;
    }

    #[test]
    fn server_streams_decode_in_order(
        frames in vec(server_frame(), 0..5),
        chunks in vec(any::<Index>(), 0..6),
        partial in option::of((server_frame(), any::<Index>())),
    ) {
        check_stream(&frames, &chunks, partial.as_ref().map(|(f, i)| (f, *i)))?;
    }

    #[test]
    fn room_streams_decode_in_order(
        frames in vec(room_frame(), 0..5),
        chunks in vec(any::<Index>(), 0..6),
        partial in option::of((room_frame(), any::<Index>())),
    ) {
        check_stream(&frames, &chunks, partial.as_ref().map(|(f, i)| (f, *i)))?;
    }

    #[test]
    fn oversized_length_is_rejected_without_a_body(
        (max, len) in (0..=MAX_FRAME_LEN)
            .prop_flat_map(|max| (Just(max), (max as u32 + 1)..=u32::MAX)),
        tail in vec(any::<u8>(), 0..8),
    ) {
        check_too_large::<ClientFrame>(max, len, &tail)?;
        check_too_large::<ServerFrame>(max, len, &tail)?;
        check_too_large::<RoomFrame>(max, len, &tail)?;
    }

    #[test]
    fn random_bytes_never_panic(
        bytes in prop_oneof![vec(any::<u8>(), 0..256), plausible_frames()],
        max in prop_oneof![Just(MAX_FRAME_LEN), 0..64usize],
    ) {
        check_never_panics::<ClientFrame>(&bytes, max)?;
        check_never_panics::<ServerFrame>(&bytes, max)?;
        check_never_panics::<RoomFrame>(&bytes, max)?;
    }

    #[test]
    fn mutated_client_frames_never_panic(
        frame in client_frame(),
        mutations in vec(mutation(), 1..4),
        fix_len in any::<bool>(),
    ) {
        check_mutated(&frame, &mutations, fix_len)?;
    }

    #[test]
    fn mutated_server_frames_never_panic(
        frame in server_frame(),
        mutations in vec(mutation(), 1..4),
        fix_len in any::<bool>(),
    ) {
        check_mutated(&frame, &mutations, fix_len)?;
    }

    #[test]
    fn mutated_room_frames_never_panic(
        frame in room_frame(),
        mutations in vec(mutation(), 1..4),
        fix_len in any::<bool>(),
    ) {
        check_mutated(&frame, &mutations, fix_len)?;
    }
}
