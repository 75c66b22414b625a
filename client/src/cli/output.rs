//! What the CLI prints: [`Record`]s, as JSON lines (`--json`) or as text for a person.

use std::fmt::Write as _;
use std::io::{self, Write as _};

use chatroom_client::{Attributes, Event, LeaveReason, MemberInfo};
use serde::Serialize;

/// One thing the CLI reports. With `--json` it is printed as one JSON object per line, tagged
/// with an `event` field; roles, priorities and codes are lowercase snake_case strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A room was created.
    Created { room: String },
    /// This client joined a room.
    Joined { room: String, role: &'static str, members: u64 },
    /// A room message (this user's own included).
    Message {
        room: String,
        seq: u64,
        from: String,
        text: String,
        kind: Option<String>,
        priority: &'static str,
        timestamp_ms: u64,
    },
    /// The server accepted this client's message.
    Sent { room: String, seq: u64 },
    /// A private message to this user; `seq` counts the private messages this user received in
    /// the room.
    Private {
        room: String,
        seq: u64,
        from: String,
        text: String,
        kind: Option<String>,
        timestamp_ms: u64,
    },
    /// A member joined.
    MemberJoined { room: String, user: String, role: &'static str },
    /// A member left.
    MemberLeft { room: String, user: String },
    /// The member count.
    MemberCount { room: String, count: u64 },
    /// A member's role changed.
    Role { room: String, user: String, role: &'static str, by: String },
    /// A member was muted.
    Muted { room: String, user: String, by: String, seconds: Option<u64> },
    /// A member was unmuted.
    Unmuted { room: String, user: String, by: String },
    /// A member was kicked.
    Kicked { room: String, user: String, by: String },
    /// A member's attributes (changed, or asked for).
    Attributes { room: String, user: String, attributes: Attributes },
    /// The member list.
    Members { room: String, count: u64, members: Vec<MemberRecord> },
    /// Something failed.
    Error { code: String, message: String },
    /// This client's membership of a room ended.
    Left { room: String, reason: &'static str },
    /// Messages `from..=to` of a room will never be delivered.
    Gap { room: String, from: u64, to: u64 },
    /// Private messages `from..=to` to this user in a room will never be delivered.
    PrivateGap { room: String, from: u64, to: u64 },
    /// The server is shutting down.
    GoingAway { reason: String },
    /// The connection was lost; the client tries again after `delay_ms`.
    Reconnecting { attempt: u32, delay_ms: u64, reason: String },
    /// The client reconnected and resumed its session.
    Resumed { session: String, zero_rtt: bool },
    /// The client reconnected with a fresh session (the old one could not be resumed).
    NewSession {
        session: String,
        zero_rtt: bool,
        code: Option<&'static str>,
        message: Option<String>,
    },
    /// After a reconnection, a room could not be joined again.
    RejoinFailed { room: String, code: &'static str, message: String },
    /// The client is done.
    Disconnected { reason: String, code: Option<&'static str> },
}

/// One member in [`Record::Members`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRecord {
    user: String,
    role: &'static str,
    attributes: Attributes,
}

impl From<MemberInfo> for MemberRecord {
    fn from(member: MemberInfo) -> Self {
        Self { user: member.user, role: member.role.as_str(), attributes: member.attributes }
    }
}

impl Record {
    /// The record of an event; `None` for events this CLI does not know.
    pub fn from_event(event: Event) -> Option<Record> {
        Some(match event {
            Event::Message { room, message } => Record::Message {
                room,
                seq: message.seq,
                from: message.from,
                text: message.text,
                kind: message.kind,
                priority: message.priority.as_str(),
                timestamp_ms: message.timestamp_ms,
            },
            Event::Private { room, message } => Record::Private {
                room,
                seq: message.seq,
                from: message.from,
                text: message.text,
                kind: message.kind,
                timestamp_ms: message.timestamp_ms,
            },
            Event::MemberJoined { room, user, role } => {
                Record::MemberJoined { room, user, role: role.as_str() }
            }
            Event::MemberLeft { room, user } => Record::MemberLeft { room, user },
            Event::RoleChanged { room, user, role, by } => {
                Record::Role { room, user, role: role.as_str(), by }
            }
            Event::Muted { room, user, by, seconds } => Record::Muted { room, user, by, seconds },
            Event::Unmuted { room, user, by } => Record::Unmuted { room, user, by },
            Event::Kicked { room, user, by } => Record::Kicked { room, user, by },
            Event::AttributesChanged { room, user, attributes } => {
                Record::Attributes { room, user, attributes }
            }
            Event::MemberCount { room, count } => Record::MemberCount { room, count },
            Event::Left { room, reason } => Record::Left { room, reason: leave_reason(reason) },
            Event::Gap { room, from, to } => Record::Gap { room, from, to },
            Event::PrivateGap { room, from, to } => Record::PrivateGap { room, from, to },
            Event::GoingAway { reason } => Record::GoingAway { reason },
            Event::Reconnecting { attempt, delay, reason } => Record::Reconnecting {
                attempt,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason,
            },
            Event::Resumed { session_id, zero_rtt } => {
                Record::Resumed { session: session_id, zero_rtt }
            }
            Event::NewSession { session_id, zero_rtt, reason } => Record::NewSession {
                session: session_id,
                zero_rtt,
                code: reason.as_ref().map(|error| error.code.as_str()),
                message: reason.map(|error| error.message),
            },
            Event::RejoinFailed { room, error } => {
                Record::RejoinFailed { room, code: error.code.as_str(), message: error.message }
            }
            Event::Disconnected { reason, code } => {
                Record::Disconnected { reason, code: code.map(|code| code.as_str()) }
            }
            _ => return None,
        })
    }

    /// The members record of a whole member list.
    pub fn members(room: String, count: u64, members: Vec<MemberInfo>) -> Record {
        Record::Members { room, count, members: members.into_iter().map(Into::into).collect() }
    }

    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and string maps cannot fail.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!(r#"{{"event":"error","code":"internal","message":"{e}"}}"#))
    }

    /// The record as text for a person (possibly several lines, without the last newline).
    pub fn to_text(&self) -> String {
        match self {
            Record::Created { room } => room.clone(),
            Record::Joined { room, role, members } => {
                format!("joined {room} as {role} ({})", plural(*members, "member"))
            }
            Record::Message { room, seq, from, text, kind, priority, .. } => {
                let mut line = format!("[{room} #{seq}] {from}: {text}");
                if let Some(kind) = kind {
                    let _ = write!(line, " ({kind})");
                }
                if *priority != "normal" {
                    let _ = write!(line, " [{priority}]");
                }
                line
            }
            Record::Sent { room, seq } => format!("sent to {room} as #{seq}"),
            Record::Private { room, from, text, .. } => {
                format!("[{room}] {from} (private): {text}")
            }
            Record::MemberJoined { room, user, role } => {
                format!("[{room}] * {user} joined ({role})")
            }
            Record::MemberLeft { room, user } => format!("[{room}] * {user} left"),
            Record::MemberCount { room, count: n } => {
                format!("[{room}] * {}", plural(*n, "member"))
            }
            Record::Role { room, user, role, by } => {
                format!("[{room}] * {user} is now {role} (by {by})")
            }
            Record::Muted { room, user, by, seconds } => match seconds {
                Some(s) => format!("[{room}] * {user} was muted by {by} for {s} s"),
                None => format!("[{room}] * {user} was muted by {by} until unmuted"),
            },
            Record::Unmuted { room, user, by } => format!("[{room}] * {user} was unmuted by {by}"),
            Record::Kicked { room, user, by } => format!("[{room}] * {user} was kicked by {by}"),
            Record::Attributes { room, user, attributes } => {
                format!("[{room}] * {user}: {}", attributes_text(attributes))
            }
            Record::Members { room, count, members } => {
                let mut text = format!("{} in {room}", plural(*count, "member"));
                for member in members {
                    let _ = write!(text, "\n  {} ({})", member.user, member.role);
                    if !member.attributes.is_empty() {
                        let _ = write!(text, " {}", attributes_text(&member.attributes));
                    }
                }
                text
            }
            Record::Error { code, message } => format!("error: {code}: {message}"),
            Record::Left { room, reason } => match *reason {
                "requested" => format!("left {room}"),
                reason => format!("left {room} ({reason})"),
            },
            Record::Gap { room, from, to } if from == to => {
                format!("[{room}] * missed message #{from}")
            }
            Record::Gap { room, from, to } => {
                format!("[{room}] * missed messages #{from} to #{to}")
            }
            Record::PrivateGap { room, from, to } if from == to => {
                format!("[{room}] * missed private message #{from}")
            }
            Record::PrivateGap { room, from, to } => {
                format!("[{room}] * missed private messages #{from} to #{to}")
            }
            Record::GoingAway { reason } => format!("server going away: {reason}"),
            Record::Reconnecting { attempt, delay_ms, reason } => {
                format!("reconnecting (attempt {attempt}) in {delay_ms} ms: {reason}")
            }
            Record::Resumed { session, zero_rtt } => {
                format!("reconnected: session {session} resumed{}", zero_rtt_note(*zero_rtt))
            }
            Record::NewSession { session, zero_rtt, code, .. } => format!(
                "reconnected with a new session {session} (previous one {}){}",
                match code {
                    Some("session_expired") => "expired".to_owned(),
                    Some(code) => format!("refused: {code}"),
                    None => "not resumed".to_owned(),
                },
                zero_rtt_note(*zero_rtt)
            ),
            Record::RejoinFailed { room, code, message } => {
                format!("could not rejoin {room}: {code}: {message}")
            }
            Record::Disconnected { reason, .. } => format!("disconnected: {reason}"),
        }
    }
}

fn leave_reason(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Requested => "requested",
        LeaveReason::Kicked => "kicked",
        LeaveReason::ServerShutdown => "server_shutdown",
    }
}

fn zero_rtt_note(zero_rtt: bool) -> &'static str {
    if zero_rtt { " (0-RTT)" } else { "" }
}

/// `1 member`, `2 members`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn attributes_text(attributes: &Attributes) -> String {
    if attributes.is_empty() {
        return "(no attributes)".into();
    }
    let pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

/// Prints records: JSON lines on stdout with `--json`; otherwise text, errors on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
}

impl Printer {
    /// A printer for `--json` (`json = true`) or for a person.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether records are printed as JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints one record.
    pub fn print(&self, record: &Record) {
        // A closed stdout (e.g. piped into `head`) is not worth failing over.
        let _ = match (self.json, record) {
            (true, record) => writeln!(io::stdout().lock(), "{}", record.to_json()),
            (false, Record::Error { .. }) => writeln!(io::stderr().lock(), "{}", record.to_text()),
            (false, record) => writeln!(io::stdout().lock(), "{}", record.to_text()),
        };
    }

    /// Prints an error record.
    pub fn error(&self, code: &str, message: &str) {
        self.print(&Record::Error { code: code.into(), message: message.into() });
    }
}

#[cfg(test)]
mod tests {
    use chatroom_client::{
        CloseCode, ErrorCode, ErrorFrame, Priority, PrivateMessage, Role, RoomMessage,
    };
    use serde_json::{Value, json};

    use super::*;

    fn json_of(record: Record) -> Value {
        serde_json::from_str(&record.to_json()).unwrap()
    }

    fn json_of_event(event: Event) -> Value {
        json_of(Record::from_event(event).unwrap())
    }

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn created_joined_sent_error() {
        assert_eq!(
            json_of(Record::Created { room: "r".into() }),
            json!({"event": "created", "room": "r"})
        );
        assert_eq!(
            json_of(Record::Joined { room: "r".into(), role: Role::Owner.as_str(), members: 3 }),
            json!({"event": "joined", "room": "r", "role": "owner", "members": 3})
        );
        assert_eq!(
            json_of(Record::Sent { room: "r".into(), seq: 7 }),
            json!({"event": "sent", "room": "r", "seq": 7})
        );
        assert_eq!(
            json_of(Record::Error { code: "room_not_found".into(), message: "no".into() }),
            json!({"event": "error", "code": "room_not_found", "message": "no"})
        );
    }

    #[test]
    fn message() {
        let message = RoomMessage {
            seq: 12,
            from: "alice".into(),
            timestamp_ms: 1000,
            kind: None,
            priority: Priority::High,
            text: "hello".into(),
        };
        let event = Event::Message { room: "lobby".into(), message };
        assert_eq!(
            json_of_event(event.clone()),
            json!({"event": "message", "room": "lobby", "seq": 12, "from": "alice",
                   "text": "hello", "kind": null, "priority": "high", "timestamp_ms": 1000})
        );
        assert_eq!(Record::from_event(event).unwrap().to_text(), "[lobby #12] alice: hello [high]");
    }

    #[test]
    fn private() {
        let message = PrivateMessage {
            seq: 3,
            from: "bob".into(),
            timestamp_ms: 5,
            kind: Some("sticker".into()),
            text: "psst".into(),
        };
        assert_eq!(
            json_of_event(Event::Private { room: "r".into(), message }),
            json!({"event": "private", "room": "r", "seq": 3, "from": "bob", "text": "psst",
                   "kind": "sticker", "timestamp_ms": 5})
        );
    }

    #[test]
    fn presence() {
        assert_eq!(
            json_of_event(Event::MemberJoined {
                room: "r".into(),
                user: "u".into(),
                role: Role::Member
            }),
            json!({"event": "member_joined", "room": "r", "user": "u", "role": "member"})
        );
        assert_eq!(
            json_of_event(Event::MemberLeft { room: "r".into(), user: "u".into() }),
            json!({"event": "member_left", "room": "r", "user": "u"})
        );
        assert_eq!(
            json_of_event(Event::MemberCount { room: "r".into(), count: 40 }),
            json!({"event": "member_count", "room": "r", "count": 40})
        );
    }

    #[test]
    fn moderation() {
        assert_eq!(
            json_of_event(Event::RoleChanged {
                room: "r".into(),
                user: "u".into(),
                role: Role::Admin,
                by: "o".into()
            }),
            json!({"event": "role", "room": "r", "user": "u", "role": "admin", "by": "o"})
        );
        assert_eq!(
            json_of_event(Event::Muted {
                room: "r".into(),
                user: "u".into(),
                by: "o".into(),
                seconds: Some(60)
            }),
            json!({"event": "muted", "room": "r", "user": "u", "by": "o", "seconds": 60})
        );
        assert_eq!(
            json_of_event(Event::Unmuted { room: "r".into(), user: "u".into(), by: "o".into() }),
            json!({"event": "unmuted", "room": "r", "user": "u", "by": "o"})
        );
        assert_eq!(
            json_of_event(Event::Kicked { room: "r".into(), user: "u".into(), by: "o".into() }),
            json!({"event": "kicked", "room": "r", "user": "u", "by": "o"})
        );
    }

    #[test]
    fn attributes_and_members() {
        assert_eq!(
            json_of_event(Event::AttributesChanged {
                room: "r".into(),
                user: "u".into(),
                attributes: attrs(&[("color", "blue")]),
            }),
            json!({"event": "attributes", "room": "r", "user": "u",
                   "attributes": {"color": "blue"}})
        );
        let members = vec![
            MemberInfo { user: "a".into(), role: Role::Owner, attributes: attrs(&[("k", "v")]) },
            MemberInfo { user: "b".into(), role: Role::Member, attributes: Attributes::new() },
        ];
        let record = Record::members("r".into(), 2, members);
        assert_eq!(record.to_text(), "2 members in r\n  a (owner) k=v\n  b (member)");
        assert_eq!(
            json_of(record),
            json!({"event": "members", "room": "r", "count": 2, "members": [
                {"user": "a", "role": "owner", "attributes": {"k": "v"}},
                {"user": "b", "role": "member", "attributes": {}},
            ]})
        );
    }

    #[test]
    fn endings() {
        assert_eq!(
            json_of_event(Event::Left { room: "r".into(), reason: LeaveReason::Kicked }),
            json!({"event": "left", "room": "r", "reason": "kicked"})
        );
        assert_eq!(
            json_of_event(Event::GoingAway { reason: "maintenance".into() }),
            json!({"event": "going_away", "reason": "maintenance"})
        );
        assert_eq!(
            json_of_event(Event::Disconnected {
                reason: "bye".into(),
                code: Some(CloseCode::GoingAway)
            }),
            json!({"event": "disconnected", "reason": "bye", "code": "going_away"})
        );
        assert_eq!(
            json_of_event(Event::Disconnected { reason: "timeout".into(), code: None }),
            json!({"event": "disconnected", "reason": "timeout", "code": null})
        );
    }

    #[test]
    fn reconnection() {
        assert_eq!(
            json_of_event(Event::Gap { room: "r".into(), from: 4, to: 9 }),
            json!({"event": "gap", "room": "r", "from": 4, "to": 9})
        );
        let event = Event::Reconnecting {
            attempt: 3,
            delay: std::time::Duration::from_millis(1500),
            reason: "timed out".into(),
        };
        assert_eq!(
            json_of_event(event.clone()),
            json!({"event": "reconnecting", "attempt": 3, "delay_ms": 1500, "reason": "timed out"})
        );
        assert_eq!(
            Record::from_event(event).unwrap().to_text(),
            "reconnecting (attempt 3) in 1500 ms: timed out"
        );
        let resumed = Event::Resumed { session_id: "s1".into(), zero_rtt: true };
        assert_eq!(
            json_of_event(resumed.clone()),
            json!({"event": "resumed", "session": "s1", "zero_rtt": true})
        );
        assert_eq!(
            Record::from_event(resumed).unwrap().to_text(),
            "reconnected: session s1 resumed (0-RTT)"
        );
        let expired = ErrorFrame::new(ErrorCode::SessionExpired, "gone");
        let fresh =
            Event::NewSession { session_id: "s2".into(), zero_rtt: false, reason: Some(expired) };
        assert_eq!(
            json_of_event(fresh.clone()),
            json!({"event": "new_session", "session": "s2", "zero_rtt": false,
                   "code": "session_expired", "message": "gone"})
        );
        assert_eq!(
            Record::from_event(fresh).unwrap().to_text(),
            "reconnected with a new session s2 (previous one expired)"
        );
        let banned = ErrorFrame::new(ErrorCode::Banned, "kicked");
        assert_eq!(
            json_of_event(Event::RejoinFailed { room: "r".into(), error: banned }),
            json!({"event": "rejoin_failed", "room": "r", "code": "banned", "message": "kicked"})
        );
        assert_eq!(
            Record::Gap { room: "r".into(), from: 2, to: 2 }.to_text(),
            "[r] * missed message #2"
        );
        assert_eq!(
            Record::Gap { room: "r".into(), from: 2, to: 5 }.to_text(),
            "[r] * missed messages #2 to #5"
        );
        assert_eq!(
            json_of_event(Event::PrivateGap { room: "r".into(), from: 1, to: 3 }),
            json!({"event": "private_gap", "room": "r", "from": 1, "to": 3})
        );
        assert_eq!(
            Record::PrivateGap { room: "r".into(), from: 1, to: 3 }.to_text(),
            "[r] * missed private messages #1 to #3"
        );
    }

    #[test]
    fn the_event_field_comes_first() {
        let line = Record::Sent { room: "r".into(), seq: 1 }.to_json();
        assert!(line.starts_with(r#"{"event":"sent""#), "{line}");
        assert!(!line.contains('\n'));
    }
}
