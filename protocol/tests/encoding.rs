//! The byte-level rules `PROTOCOL.md` states, checked one by one: integer, bool, string, option,
//! map, sequence and result encodings, every variant index of its tables, the framing limits,
//! and the worked examples byte for byte. The document is checked against the code too: every
//! variant, error code and close code has its table row, every field table lists the struct's
//! fields in wire order, and the examples appear verbatim, so the document and the code cannot
//! drift apart silently.

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::BytesMut;

use chatroom_protocol::{
    ALPN, Attributes, ClientFrame, CloseCode, DecodeError, ErrorCode, ErrorFrame, Frame,
    FrameDecoder, HEADER_LEN, Hello, JoinedRoom, LeaveReason, MAX_FRAME_LEN, MemberInfo,
    MemberPage, Priority, PrivateMessage, Request, RequestBody, Response, ResponseBody,
    ResumeRequest, Role, RoomFrame, RoomMessage, RoomPosition, ServerFrame, SessionLimits, Welcome,
    decode_body, encode,
};

/// The document whose tables and examples the code must match.
const PROTOCOL_MD: &str = include_str!("../PROTOCOL.md");

fn header(len: usize) -> [u8; HEADER_LEN] {
    u32::try_from(len).expect("test bodies are small").to_be_bytes()
}

// ---------------------------------------------------------------------------------------------
// Encoding rules, byte by byte (each one is stated in PROTOCOL.md)
// ---------------------------------------------------------------------------------------------

/// The body of `frame` (without the length prefix), checked to round-trip.
fn body<F: Frame + Debug + PartialEq>(frame: &F) -> Vec<u8> {
    let bytes = encode(frame).expect("encodes");
    let body = &bytes[HEADER_LEN..];
    assert_eq!(decode_body::<F>(body).as_ref(), Ok(frame));
    body.to_vec()
}

fn member_count(count: u64) -> Vec<u8> {
    body(&RoomFrame::MemberCount { count })
}

#[test]
fn integers_are_varints() {
    // RoomFrame::MemberCount is variant 10 with one u64 field.
    let cases: &[(u64, &[u8])] = &[
        (0, &[0]),
        (250, &[250]),
        (251, &[251, 251, 0]),
        (0x1234, &[251, 0x34, 0x12]),
        (0xffff, &[251, 0xff, 0xff]),
        (0x1_0000, &[252, 0, 0, 1, 0]),
        (0xffff_ffff, &[252, 0xff, 0xff, 0xff, 0xff]),
        (0x1_0000_0000, &[253, 0, 0, 0, 0, 1, 0, 0, 0]),
        (u64::MAX, &[253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ];
    for &(value, encoded) in cases {
        let mut expected = vec![10];
        expected.extend_from_slice(encoded);
        assert_eq!(member_count(value), expected, "{value}");
    }
    // u32 (Hello::version) and u16 (ErrorCode) use the same scheme, with fewer widths.
    let hello = |version| {
        ClientFrame::Hello(Hello {
            version,
            user: String::new(),
            token: None,
            agent: String::new(),
            resume: None,
        })
    };
    assert_eq!(body(&hello(u32::MAX)), [0, 252, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(body(&hello(300)), [0, 251, 0x2c, 0x01, 0, 0, 0, 0]);
    let rejected =
        |n| ServerFrame::Rejected(ErrorFrame::new(ErrorCode::from_u16(n), String::new()));
    assert_eq!(body(&rejected(250)), [1, 250, 0]);
    assert_eq!(body(&rejected(u16::MAX)), [1, 251, 0xff, 0xff, 0]);
}

#[test]
fn varint_decoding_is_lenient_about_width_but_not_about_range() {
    // Member count 5 in a wider form than needed: accepted (encoders must still use the
    // shortest form).
    for wide in [&[251, 5, 0][..], &[252, 5, 0, 0, 0], &[253, 5, 0, 0, 0, 0, 0, 0, 0]] {
        let mut frame = vec![10];
        frame.extend_from_slice(wide);
        assert_eq!(decode_body::<RoomFrame>(&frame), Ok(RoomFrame::MemberCount { count: 5 }));
    }
    // Markers 254 (u128) and 255 (reserved) are never valid for a u64.
    for marker in [254u8, 255] {
        let mut frame = vec![10, marker];
        frame.extend_from_slice(&[0; 16]);
        assert!(matches!(decode_body::<RoomFrame>(&frame), Err(DecodeError::Malformed(_))));
    }
    // A u32 (Hello::version) cannot take the 8-byte form, a u16 (an error code) not the 4-byte.
    let version = [0, 253, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(decode_body::<ClientFrame>(&version), Err(DecodeError::Malformed(_))));
    let code = [1, 252, 1, 0, 0, 0, 0];
    assert!(matches!(decode_body::<ServerFrame>(&code), Err(DecodeError::Malformed(_))));
}

#[test]
fn strings_are_a_byte_length_then_utf8() {
    // RoomFrame::MemberLeft is variant 4 with one String field.
    let left = |user: &str| body(&RoomFrame::MemberLeft { user: user.into() });
    assert_eq!(left(""), [4, 0]);
    assert_eq!(left("é"), [4, 2, 0xc3, 0xa9], "the length counts bytes, not characters");
    let long = "a".repeat(251);
    let mut expected = vec![4, 251, 251, 0];
    expected.extend_from_slice(long.as_bytes());
    assert_eq!(left(&long), expected);
    // Invalid UTF-8 is malformed, and so is a length running past the body.
    assert!(matches!(decode_body::<RoomFrame>(&[4, 1, 0xff]), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_body::<RoomFrame>(&[4, 3, b'a']), Err(DecodeError::Malformed(_))));
}

#[test]
fn options_are_a_tag_byte_then_the_value() {
    // RoomFrame::Muted is variant 6: user, by, seconds: Option<u64>.
    let muted = |seconds| body(&RoomFrame::Muted { user: "u".into(), by: "b".into(), seconds });
    assert_eq!(muted(None), [6, 1, b'u', 1, b'b', 0]);
    assert_eq!(muted(Some(300)), [6, 1, b'u', 1, b'b', 1, 251, 0x2c, 0x01]);
    assert!(matches!(
        decode_body::<RoomFrame>(&[6, 1, b'u', 1, b'b', 2, 5]),
        Err(DecodeError::Malformed(_))
    ));
}

/// A `Welcome` whose every string is empty and every number 0: its body is one byte per field.
fn bare_welcome() -> Welcome {
    Welcome {
        version: 0,
        user: String::new(),
        region: String::new(),
        session_id: String::new(),
        limits: SessionLimits {
            max_frame_len: 0,
            max_message_len: 0,
            max_attribute_keys: 0,
            max_attributes_len: 0,
            max_rooms_per_connection: 0,
            max_members_page: 0,
        },
        resume_token: String::new(),
        resume_window_ms: 0,
        resumed: false,
        resume_refused: None,
        rooms: vec![],
    }
}

/// The body of a bare welcome: variant 0, then version, user, region, session id, the six
/// limits, resume token and resume window; the three resume fields follow.
const BARE_WELCOME_HEAD: [u8; 13] = [0; 13];

#[test]
fn options_of_structs_are_a_tag_byte_then_the_fields() {
    // Welcome::resume_refused: Option<ErrorFrame>, then rooms: an empty list.
    let refused = ErrorFrame::new(ErrorCode::SessionExpired, "x");
    let welcome = ServerFrame::Welcome(Welcome { resume_refused: Some(refused), ..bare_welcome() });
    let mut expected = BARE_WELCOME_HEAD.to_vec();
    expected.extend_from_slice(&[0, 1, 17, 1, b'x', 0]);
    assert_eq!(body(&welcome), expected);
    // Hello::resume: Option<ResumeRequest>, the last field of a Hello.
    let resume = ResumeRequest { token: "t".into(), rooms: vec![] };
    let hello = ClientFrame::Hello(Hello {
        version: 1,
        user: String::new(),
        token: None,
        agent: String::new(),
        resume: Some(resume),
    });
    assert_eq!(body(&hello), [0, 1, 0, 0, 0, 1, 1, b't', 0]);
}

#[test]
fn bools_are_one_byte_0_or_1() {
    // Welcome::resumed, followed by resume_refused (none) and rooms (empty).
    for (resumed, byte) in [(false, 0), (true, 1)] {
        let welcome = ServerFrame::Welcome(Welcome { resumed, ..bare_welcome() });
        let mut expected = BARE_WELCOME_HEAD.to_vec();
        expected.extend_from_slice(&[byte, 0, 0]);
        assert_eq!(body(&welcome), expected);
    }
    for invalid in [2u8, 0xff] {
        let mut bytes = BARE_WELCOME_HEAD.to_vec();
        bytes.extend_from_slice(&[invalid, 0, 0]);
        assert!(matches!(decode_body::<ServerFrame>(&bytes), Err(DecodeError::Malformed(_))));
    }
}

#[test]
fn maps_are_a_count_then_pairs_in_key_order() {
    // Keys are sorted by their UTF-8 bytes, whatever order they were inserted in.
    let attributes: Attributes = [("é", "3"), ("b", "2"), ("Z", ""), ("a", "1")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let frame = RoomFrame::AttributesChanged { user: "u".into(), attributes };
    let expected = [
        9, 1, b'u', // variant 9, user "u"
        4,    // four pairs
        1, b'Z', 0, // "Z" => ""
        1, b'a', 1, b'1', // "a" => "1"
        1, b'b', 1, b'2', // "b" => "2"
        2, 0xc3, 0xa9, 1, b'3', // "é" => "3"
    ];
    assert_eq!(body(&frame), expected);
    // Decoding accepts any key order, and a repeated key keeps its last value.
    let unsorted = [9, 1, b'u', 3, 1, b'b', 0, 1, b'a', 0, 1, b'b', 1, b'x'];
    let expected: BTreeMap<String, String> =
        [("a".to_owned(), String::new()), ("b".to_owned(), "x".to_owned())].into();
    assert_eq!(
        decode_body::<RoomFrame>(&unsorted),
        Ok(RoomFrame::AttributesChanged { user: "u".into(), attributes: expected })
    );
}

#[test]
fn sequences_are_a_count_then_items() {
    let frame = ClientFrame::Request(Request {
        id: 0,
        body: RequestBody::SetAttributes {
            room: "r".into(),
            set: Attributes::new(),
            remove: vec!["x".into(), String::new(), "yz".into()],
        },
    });
    assert_eq!(body(&frame), [1, 0, 9, 1, b'r', 0, 3, 1, b'x', 0, 2, b'y', b'z']);
    // A list of structs: each item's fields in order, nothing in between.
    let rooms = vec![
        RoomPosition { room: "a".into(), last_seq: 7, last_private_seq: 0 },
        RoomPosition { room: "bc".into(), last_seq: 300, last_private_seq: 1 },
    ];
    let hello = ClientFrame::Hello(Hello {
        version: 1,
        user: String::new(),
        token: None,
        agent: String::new(),
        resume: Some(ResumeRequest { token: String::new(), rooms }),
    });
    assert_eq!(
        body(&hello),
        [0, 1, 0, 0, 0, 1, 0, 2, 1, b'a', 7, 0, 2, b'b', b'c', 251, 0x2c, 0x01, 1]
    );
}

#[test]
fn results_are_ok_0_and_err_1() {
    let response = |result| ServerFrame::Response(Response { id: 5, result });
    assert_eq!(body(&response(Ok(ResponseBody::Done))), [2, 5, 0, 0]);
    let err = ErrorFrame::new(ErrorCode::Muted, "m");
    assert_eq!(body(&response(Err(err))), [2, 5, 1, 6, 1, b'm']);
}

#[test]
fn unknown_variants_are_malformed() {
    assert!(matches!(decode_body::<ClientFrame>(&[2]), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_body::<ServerFrame>(&[4]), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_body::<RoomFrame>(&[14]), Err(DecodeError::Malformed(_))));
    // Request with body variant 13, response body variant 7, Role 3, Priority 3, LeaveReason 3.
    assert!(matches!(decode_body::<ClientFrame>(&[1, 0, 13]), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_body::<ServerFrame>(&[2, 0, 0, 7]), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_body::<RoomFrame>(&[3, 0, 3]), Err(DecodeError::Malformed(_))));
    assert!(matches!(decode_body::<RoomFrame>(&[11, 3]), Err(DecodeError::Malformed(_))));
    let send_priority_3 = [1, 0, 3, 0, 0, 0, 3];
    assert!(matches!(decode_body::<ClientFrame>(&send_priority_3), Err(DecodeError::Malformed(_))));
    // Result has two variants only.
    assert!(matches!(decode_body::<ServerFrame>(&[2, 0, 2]), Err(DecodeError::Malformed(_))));
    // An empty body is not a frame.
    assert!(matches!(decode_body::<RoomFrame>(&[]), Err(DecodeError::Malformed(_))));
}

#[test]
fn decoder_max_is_clamped_and_inclusive() {
    assert_eq!(FrameDecoder::new(usize::MAX).max_frame_len(), MAX_FRAME_LEN);
    let decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let at_max = header(MAX_FRAME_LEN);
    assert_eq!(decoder.frame_len(&at_max), Ok(Some(HEADER_LEN + MAX_FRAME_LEN)));
    let mut buf = BytesMut::from(&at_max[..]);
    assert_eq!(decoder.decode::<RoomFrame>(&mut buf), Ok(None));
    let mut buf = BytesMut::from(&header(MAX_FRAME_LEN + 1)[..]);
    assert_eq!(
        decoder.decode::<RoomFrame>(&mut buf),
        Err(DecodeError::TooLarge { len: MAX_FRAME_LEN + 1, max: MAX_FRAME_LEN })
    );
}

// ---------------------------------------------------------------------------------------------
// Variant indices (the tables of PROTOCOL.md)
// ---------------------------------------------------------------------------------------------

/// The variant name of an enum value, from its `Debug` form (`Gap { .. }` → `Gap`).
fn variant_name(value: &impl Debug) -> String {
    format!("{value:?}").chars().take_while(char::is_ascii_alphanumeric).collect()
}

/// Checks that one of PROTOCOL.md's index tables has the row `| index | `name` | ...`.
fn documented(index: usize, name: &str) {
    let row = format!("| {index} | `{name}` |");
    assert!(
        PROTOCOL_MD.lines().any(|line| line.starts_with(&row)),
        "PROTOCOL.md has no table row starting with {row}"
    );
}

#[test]
fn every_variant_has_its_documented_index() {
    let s = String::new;
    let client = |frame: ClientFrame| body(&frame);
    let request = |body: RequestBody| client(ClientFrame::Request(Request { id: 0, body }))[2];
    let server = |frame: ServerFrame| body(&frame);
    let ok =
        |body: ResponseBody| server(ServerFrame::Response(Response { id: 0, result: Ok(body) }));
    let room = |frame: RoomFrame| body(&frame)[0];

    let hello = Hello { version: 0, user: s(), token: None, agent: s(), resume: None };
    let clients = [
        ClientFrame::Hello(hello),
        ClientFrame::Request(Request { id: 0, body: RequestBody::Join { room: s() } }),
    ];
    for (index, frame) in clients.into_iter().enumerate() {
        assert_eq!(usize::from(client(frame.clone())[0]), index, "{frame:?}");
        documented(index, &variant_name(&frame));
    }

    let requests = [
        RequestBody::CreateRoom { room: None },
        RequestBody::Join { room: s() },
        RequestBody::Leave { room: s() },
        RequestBody::Send { room: s(), text: s(), kind: None, priority: Priority::Normal },
        RequestBody::Private { room: s(), to: s(), text: s(), kind: None },
        RequestBody::SetRole { room: s(), user: s(), role: Role::Admin },
        RequestBody::Mute { room: s(), user: s(), seconds: None },
        RequestBody::Unmute { room: s(), user: s() },
        RequestBody::Kick { room: s(), user: s() },
        RequestBody::SetAttributes { room: s(), set: Attributes::new(), remove: vec![] },
        RequestBody::GetAttributes { room: s(), user: s() },
        RequestBody::MemberCount { room: s() },
        RequestBody::Members { room: s(), after: None, limit: 0 },
    ];
    for (index, body) in requests.into_iter().enumerate() {
        assert_eq!(usize::from(request(body.clone())), index, "{body:?}");
        documented(index, &variant_name(&body));
    }

    let servers = [
        ServerFrame::Welcome(bare_welcome()),
        ServerFrame::Rejected(ErrorFrame::new(ErrorCode::BadRequest, "")),
        ServerFrame::Response(Response { id: 0, result: Ok(ResponseBody::Done) }),
        ServerFrame::GoingAway { reason: s() },
    ];
    for (index, frame) in servers.into_iter().enumerate() {
        assert_eq!(usize::from(server(frame.clone())[0]), index, "{frame:?}");
        documented(index, &variant_name(&frame));
    }

    let responses = [
        ResponseBody::Done,
        ResponseBody::RoomCreated { room: s() },
        ResponseBody::Joined(JoinedRoom {
            room: s(),
            role: Role::Member,
            members: 0,
            next_seq: 0,
            stream_id: 0,
            epoch: 0,
        }),
        ResponseBody::Sent { room: s(), seq: 0 },
        ResponseBody::Attributes { room: s(), user: s(), attributes: Attributes::new() },
        ResponseBody::MemberCount { room: s(), count: 0 },
        ResponseBody::Members(MemberPage { room: s(), count: 0, members: vec![], next: None }),
    ];
    for (index, body) in responses.into_iter().enumerate() {
        // Response (2), id 0, Ok (0), then the body's index.
        assert_eq!(ok(body.clone())[..4], [2, 0, 0, index as u8], "{body:?}");
        documented(index, &variant_name(&body));
    }

    for &code in ErrorCode::ALL {
        let frame =
            ServerFrame::Response(Response { id: 0, result: Err(ErrorFrame::new(code, "")) });
        // Response (2), id 0, Err (1), the code (all known codes fit in one byte), message "".
        assert_eq!(server(frame), [2, 0, 1, code.to_u16() as u8, 0], "{code}");
    }
    let unknown = ServerFrame::Rejected(ErrorFrame::new(ErrorCode::Unknown(999), ""));
    assert_eq!(server(unknown), [1, 251, 0xe7, 0x03, 0]);

    let message = RoomMessage {
        seq: 0,
        from: s(),
        timestamp_ms: 0,
        kind: None,
        priority: Priority::Normal,
        text: s(),
    };
    let private = PrivateMessage { seq: 0, from: s(), timestamp_ms: 0, kind: None, text: s() };
    let rooms = [
        RoomFrame::Open { room: s(), stream_id: 0 },
        RoomFrame::Message(message),
        RoomFrame::Private(private),
        RoomFrame::MemberJoined { user: s(), role: Role::Member },
        RoomFrame::MemberLeft { user: s() },
        RoomFrame::RoleChanged { user: s(), role: Role::Member, by: s() },
        RoomFrame::Muted { user: s(), by: s(), seconds: None },
        RoomFrame::Unmuted { user: s(), by: s() },
        RoomFrame::Kicked { user: s(), by: s() },
        RoomFrame::AttributesChanged { user: s(), attributes: Attributes::new() },
        RoomFrame::MemberCount { count: 0 },
        RoomFrame::Left { reason: LeaveReason::Requested },
        RoomFrame::Gap { from: 0, to: 0 },
        RoomFrame::PrivateGap { from: 0, to: 0 },
    ];
    for (index, frame) in rooms.into_iter().enumerate() {
        assert_eq!(usize::from(room(frame.clone())), index, "{frame:?}");
        documented(index, &variant_name(&frame));
    }

    // Unit enums: RoomFrame::MemberJoined { user: "", role } ends with the role's index.
    for (index, role) in [Role::Member, Role::Admin, Role::Owner].into_iter().enumerate() {
        assert_eq!(body(&RoomFrame::MemberJoined { user: s(), role }), [3, 0, index as u8]);
    }
    for (index, priority) in
        [Priority::Low, Priority::Normal, Priority::High].into_iter().enumerate()
    {
        let send = RequestBody::Send { room: s(), text: s(), kind: None, priority };
        let frame = ClientFrame::Request(Request { id: 0, body: send });
        assert_eq!(body(&frame), [1, 0, 3, 0, 0, 0, index as u8]);
    }
    let reasons = [LeaveReason::Requested, LeaveReason::Kicked, LeaveReason::ServerShutdown];
    for (index, reason) in reasons.into_iter().enumerate() {
        assert_eq!(body(&RoomFrame::Left { reason }), [11, index as u8]);
    }
}

/// The field names of a struct value, in declaration (= wire) order, from its `Debug` form.
fn field_names(value: &impl Debug) -> Vec<String> {
    format!("{value:#?}")
        .lines()
        .filter_map(|line| {
            let field = line.strip_prefix("    ").filter(|rest| !rest.starts_with(' '))?;
            field.split_once(':').map(|(name, _)| name.to_owned())
        })
        .collect()
}

/// Checks that the field table under `#### heading` in PROTOCOL.md lists exactly the fields of
/// `value`, in wire order.
fn documented_fields(heading: &str, value: &impl Debug) {
    let heading = format!("#### {heading}");
    assert!(PROTOCOL_MD.lines().any(|line| line == heading), "PROTOCOL.md has no {heading}");
    let rows: Vec<String> = PROTOCOL_MD
        .lines()
        .skip_while(|line| *line != heading)
        .skip(1)
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|row| row.strip_prefix("| `")?.split_once('`').map(|(name, _)| name.to_owned()))
        .collect();
    assert_eq!(rows, field_names(value), "the field table under {heading}");
}

#[test]
fn field_tables_match_the_structs() {
    let s = String::new;
    let position = RoomPosition { room: s(), last_seq: 0, last_private_seq: 0 };
    let resume = ResumeRequest { token: s(), rooms: vec![position.clone()] };
    let hello = Hello { version: 0, user: s(), token: None, agent: s(), resume: None };
    let welcome = bare_welcome();
    let joined = JoinedRoom {
        room: s(),
        role: Role::Member,
        members: 0,
        next_seq: 0,
        stream_id: 0,
        epoch: 0,
    };
    let info = MemberInfo { user: s(), role: Role::Member, attributes: Attributes::new() };
    let page = MemberPage { room: s(), count: 0, members: vec![], next: None };
    let message = RoomMessage {
        seq: 0,
        from: s(),
        timestamp_ms: 0,
        kind: None,
        priority: Priority::Normal,
        text: s(),
    };
    let private = PrivateMessage { seq: 0, from: s(), timestamp_ms: 0, kind: None, text: s() };
    documented_fields("Hello", &hello);
    documented_fields("ResumeRequest", &resume);
    documented_fields("RoomPosition", &position);
    documented_fields("Request", &Request { id: 0, body: RequestBody::Join { room: s() } });
    documented_fields("Welcome", &welcome);
    documented_fields("SessionLimits", &welcome.limits);
    documented_fields("Response", &Response { id: 0, result: Ok(ResponseBody::Done) });
    documented_fields("JoinedRoom", &joined);
    documented_fields("MemberPage", &page);
    documented_fields("MemberInfo", &info);
    documented_fields("ErrorFrame", &ErrorFrame::new(ErrorCode::BadRequest, ""));
    documented_fields("RoomMessage", &message);
    documented_fields("PrivateMessage", &private);
}

#[test]
fn error_and_close_code_tables_match_the_code() {
    // Every known error code has its row, with its number and its name, and nothing more.
    for &code in ErrorCode::ALL {
        documented(usize::from(code.to_u16()), code.as_str());
    }
    let next = ErrorCode::ALL.len() + 1;
    assert_eq!(ErrorCode::from_u16(next as u16), ErrorCode::Unknown(next as u16));
    assert_eq!(ErrorCode::SessionExpired.to_u16(), 17);
    assert_eq!(ErrorCode::SessionExpired.as_str(), "session_expired");
    // Close codes 0..=8, likewise.
    for n in 0..=8 {
        let code = CloseCode::from_u32(n);
        assert_ne!(code, CloseCode::Unknown(n));
        documented(n as usize, code.as_str());
    }
    assert_eq!(CloseCode::from_u32(9), CloseCode::Unknown(9));
}

// ---------------------------------------------------------------------------------------------
// The worked examples of PROTOCOL.md, byte for byte
// ---------------------------------------------------------------------------------------------

/// Lowercase hex, one space between bytes: the notation of PROTOCOL.md.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Checks that `frame` encodes to exactly `expected`, that the bytes decode back to `frame`, and
/// that PROTOCOL.md quotes them on a line of their own.
fn pin<F: Frame + Debug + PartialEq>(frame: F, expected: &str) {
    let bytes = encode(&frame).expect("encodes");
    assert_eq!(hex(&bytes), expected, "{frame:?}");
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(FrameDecoder::new(MAX_FRAME_LEN).decode(&mut buf), Ok(Some(frame)));
    assert!(
        PROTOCOL_MD.lines().any(|line| line == expected),
        "PROTOCOL.md does not quote the bytes {expected}"
    );
}

#[test]
fn alpn_bytes_match_protocol_md() {
    assert_eq!(hex(ALPN), "63 68 61 74 72 6f 6f 6d 2f 31");
    assert!(PROTOCOL_MD.contains("`63 68 61 74 72 6f 6f 6d 2f 31`"));
}

/// The limits of the example welcomes.
fn example_limits() -> SessionLimits {
    SessionLimits {
        max_frame_len: 1_048_576,
        max_message_len: 8192,
        max_attribute_keys: 32,
        max_attributes_len: 1024,
        max_rooms_per_connection: 64,
        max_members_page: 500,
    }
}

/// The hello of the examples, without and with a resume request.
fn example_hello(resume: Option<ResumeRequest>) -> ClientFrame {
    ClientFrame::Hello(Hello {
        version: 1,
        user: "alice".into(),
        token: Some("s3cr3t".into()),
        agent: "cli/0.1".into(),
        resume,
    })
}

#[test]
fn pinned_examples_match_protocol_md() {
    pin(
        example_hello(None),
        "00 00 00 19 00 01 05 61 6c 69 63 65 01 06 73 33 63 72 33 74 07 63 6c 69 2f 30 2e 31 00",
    );

    let welcome = ServerFrame::Welcome(Welcome {
        version: 1,
        user: "alice".into(),
        region: "eu".into(),
        session_id: "s1".into(),
        limits: example_limits(),
        resume_token: "tok1".into(),
        resume_window_ms: 120_000,
        resumed: false,
        resume_refused: None,
        rooms: vec![],
    });
    pin(
        welcome,
        "00 00 00 2b 00 01 05 61 6c 69 63 65 02 65 75 02 73 31 \
         fc 00 00 10 00 fb 00 20 20 fb 00 04 40 fb f4 01 \
         04 74 6f 6b 31 fc c0 d4 01 00 00 00 00",
    );

    let join =
        ClientFrame::Request(Request { id: 7, body: RequestBody::Join { room: "lobby".into() } });
    pin(join, "00 00 00 09 01 07 01 05 6c 6f 62 62 79");

    let joined = ServerFrame::Response(Response {
        id: 7,
        result: Ok(ResponseBody::Joined(JoinedRoom {
            room: "lobby".into(),
            role: Role::Member,
            members: 42,
            next_seq: 1000,
            stream_id: 3,
            epoch: 0x5eed,
        })),
    });
    pin(joined, "00 00 00 13 02 07 00 02 05 6c 6f 62 62 79 00 2a fb e8 03 03 fb ed 5e");

    let open = RoomFrame::Open { room: "lobby".into(), stream_id: 3 };
    pin(open, "00 00 00 08 00 05 6c 6f 62 62 79 03");

    let message = RoomFrame::Message(RoomMessage {
        seq: 1000,
        from: "bob".into(),
        timestamp_ms: 1_700_000_000_000,
        kind: None,
        priority: Priority::Normal,
        text: "héllo".into(),
    });
    pin(
        message,
        "00 00 00 1a 01 fb e8 03 03 62 6f 62 fd 00 68 e5 cf 8b 01 00 00 00 01 \
         06 68 c3 a9 6c 6c 6f",
    );

    let refused = ServerFrame::Response(Response {
        id: 8,
        result: Err(ErrorFrame::new(ErrorCode::NotAMember, "not in room")),
    });
    pin(refused, "00 00 00 10 02 08 01 05 0b 6e 6f 74 20 69 6e 20 72 6f 6f 6d");

    let left = RoomFrame::Left { reason: LeaveReason::Kicked };
    pin(left, "00 00 00 02 0b 01");
}

/// The resumption examples: the connection of the examples above was lost after message 1000;
/// the client reconnects and resumes.
#[test]
fn pinned_resume_examples_match_protocol_md() {
    let resume = ResumeRequest {
        token: "tok1".into(),
        rooms: vec![RoomPosition { room: "lobby".into(), last_seq: 1000, last_private_seq: 2 }],
    };
    pin(
        example_hello(Some(resume)),
        "00 00 00 29 00 01 05 61 6c 69 63 65 01 06 73 33 63 72 33 74 07 63 6c 69 2f 30 2e 31 \
         01 04 74 6f 6b 31 01 05 6c 6f 62 62 79 fb e8 03 02",
    );

    let resumed = ServerFrame::Welcome(Welcome {
        version: 1,
        user: "alice".into(),
        region: "eu".into(),
        session_id: "s1".into(),
        limits: example_limits(),
        resume_token: "tok2".into(),
        resume_window_ms: 120_000,
        resumed: true,
        resume_refused: None,
        rooms: vec![JoinedRoom {
            room: "lobby".into(),
            role: Role::Member,
            members: 42,
            next_seq: 1010,
            stream_id: 9,
            epoch: 0x5eed,
        }],
    });
    pin(
        resumed,
        "00 00 00 3a 00 01 05 61 6c 69 63 65 02 65 75 02 73 31 \
         fc 00 00 10 00 fb 00 20 20 fb 00 04 40 fb f4 01 \
         04 74 6f 6b 32 fc c0 d4 01 00 01 00 01 05 6c 6f 62 62 79 00 2a fb f2 03 09 fb ed 5e",
    );

    let open = RoomFrame::Open { room: "lobby".into(), stream_id: 9 };
    pin(open, "00 00 00 08 00 05 6c 6f 62 62 79 09");

    let gap = RoomFrame::Gap { from: 1001, to: 1004 };
    pin(gap, "00 00 00 07 0c fb e9 03 fb ec 03");

    let private = RoomFrame::Private(PrivateMessage {
        seq: 3,
        from: "bob".into(),
        timestamp_ms: 1_700_000_000_500,
        kind: None,
        text: "hi".into(),
    });
    pin(private, "00 00 00 13 02 03 03 62 6f 62 fd f4 69 e5 cf 8b 01 00 00 00 02 68 69");

    let refused = ServerFrame::Welcome(Welcome {
        version: 1,
        user: "alice".into(),
        region: "eu".into(),
        session_id: "s2".into(),
        limits: example_limits(),
        resume_token: "tok3".into(),
        resume_window_ms: 120_000,
        resumed: false,
        resume_refused: Some(ErrorFrame::new(
            ErrorCode::SessionExpired,
            "the session no longer exists",
        )),
        rooms: vec![],
    });
    pin(
        refused,
        "00 00 00 49 00 01 05 61 6c 69 63 65 02 65 75 02 73 32 \
         fc 00 00 10 00 fb 00 20 20 fb 00 04 40 fb f4 01 \
         04 74 6f 6b 33 fc c0 d4 01 00 00 01 11 1c 74 68 65 20 73 65 73 73 69 6f 6e 20 6e 6f 20 \
         6c 6f 6e 67 65 72 20 65 78 69 73 74 73 00",
    );
}

// ---------------------------------------------------------------------------------------------
// Large frames
// ---------------------------------------------------------------------------------------------

/// Every body up to `MAX_FRAME_LEN` bytes decodes. bincode's decode limit counts the in-memory
/// size it claims (8 bytes for every length and `u64`, 4 for every enum index), not the bytes on
/// the wire, so `codec.rs` sets it to `8 * MAX_FRAME_LEN`; with a limit of `MAX_FRAME_LEN` this
/// 180 KB member page was refused.
#[test]
fn large_legal_frames_decode() {
    let members = (0..60_000)
        .map(|_| MemberInfo {
            user: String::new(),
            role: Role::Member,
            attributes: Attributes::new(),
        })
        .collect();
    let page = MemberPage { room: "r".into(), count: 60_000, members, next: None };
    let frame = ServerFrame::Response(Response { id: 1, result: Ok(ResponseBody::Members(page)) });
    let bytes = encode(&frame).expect("well under MAX_FRAME_LEN");
    assert!(bytes.len() < MAX_FRAME_LEN / 4);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(FrameDecoder::new(MAX_FRAME_LEN).decode(&mut buf), Ok(Some(frame)));
}
