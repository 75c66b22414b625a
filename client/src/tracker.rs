//! Where the client is in each room it is in: the bookkeeping behind resumption, gap reports
//! and de-duplication, as plain state with no I/O.
//!
//! Every room message has a sequence number, and the client remembers, per room, the last one it
//! delivered to the application or reported as missed (`last_seq`). That one number drives
//! everything across a lost connection:
//!
//! - a resume request carries it per room, so the server replays from the next one;
//! - a replay that overlaps what was already delivered is de-duplicated against it (a message
//!   is never delivered twice);
//! - after a fresh session, the rejoin's `next_seq` tells which messages are gone for good,
//!   reported as one [`Event::Gap`](crate::Event::Gap) (never a silent hole) before the rejoined
//!   stream's first message;
//! - a server gap report advances it like a message does.
//!
//! Private messages have their own numbering per receiver and room, kept the same way
//! (`last_private_seq`): claimed in a resume request, de-duplicated against, advanced by a
//! private gap report. It restarts with every new membership: a rejoin in a fresh session is
//! one (the server numbers private messages per membership, and cannot count those the old
//! session missed).
//!
//! The tracker also remembers which rooms the client is in (and which it is leaving), so that
//! they can be re-attached after a reconnection. It knows nothing of streams beyond their ids:
//! the session stream's reader tells it about join responses, each room stream's reader about
//! its frames, and the reconnection driver about new sessions.
//!
//! A room's numbering starts at 1, and a server keeps its rooms in memory only. So a rejoin
//! that finds another room epoch (`JoinedRoom::epoch`: the server restarted, even by crashing,
//! or the room was dropped and created again), that follows the server's shutdown notice, or
//! that finds the room's `next_seq` below the client's position, meets a new room under the
//! same name: the client's position restarts, and the messages of the new room before the
//! rejoin (`1 ..= next_seq - 1`) are the gap. Messages the old room got after the client's
//! position died with it and cannot be counted.

use std::collections::{BTreeMap, HashSet};

use chatroom_protocol::{JoinedRoom, LeaveReason, RoomPosition};

/// The client's position in every room it is in.
#[derive(Debug, Default)]
pub(crate) struct RoomTracker {
    rooms: BTreeMap<String, RoomState>,
    /// The server announced its shutdown: rooms joined again in a fresh session are new rooms.
    server_going_away: bool,
}

/// One room's bookkeeping.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct RoomState {
    /// The last sequence number delivered or reported missing; `None` until known (a membership
    /// whose first message and join response have not arrived yet).
    last_seq: Option<u64>,
    /// The room's epoch, once a join response (or a resume) told it.
    epoch: Option<u64>,
    /// The last private sequence number delivered or reported missing on this membership; 0
    /// before the first.
    last_private_seq: u64,
    /// The room stream delivering the membership on the current connection, once it started.
    stream: Option<u64>,
    /// `(stream_id, next_seq)` of a join whose stream has not started delivering yet.
    joined: Option<(u64, u64)>,
    /// What the next stream of this room (or the current one, for a rejoin not settled yet)
    /// carries.
    next: NextStream,
    /// A leave was asked for and not answered (the connection may have dropped meanwhile).
    leaving: bool,
}

/// What the next room stream of a room carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum NextStream {
    /// A new membership (an application's join).
    #[default]
    New,
    /// The same membership, resumed: the stream replays from `last_seq + 1`.
    Resumed,
    /// The same membership for the application, joined again in a fresh session: the stream
    /// starts at the join's `next_seq` (`None` until its response arrives), and what lies
    /// between is a gap.
    Rejoined {
        /// The join's `next_seq`, once its response arrived.
        next_seq: Option<u64>,
        /// The room is known to be a new one (the server restarted): its numbering restarts.
        new_room: bool,
    },
}

impl RoomState {
    /// Makes `last_seq` known from the join, when no message said otherwise.
    fn settle(&mut self) {
        if self.last_seq.is_none() {
            self.last_seq = self.joined.map(|(_, next_seq)| next_seq.saturating_sub(1));
        }
        self.joined = None;
    }
}

/// Whether a room stream may start delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamStart {
    /// Yes, after reporting `gap` (`from..=to`), if any.
    Ready {
        /// Messages missed before the stream's first one.
        gap: Option<(u64, u64)>,
    },
    /// Not yet: it is a rejoin whose response has not arrived, and the response says where
    /// it starts.
    AwaitJoin,
}

/// What becomes of a room message on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Already delivered (a replay overlapping what the client had): drop it.
    Duplicate,
    /// Deliver it, after reporting `gap` (`from..=to`) if the messages before it are missing.
    Deliver {
        /// Messages between the last delivered one and this one, which will never come.
        gap: Option<(u64, u64)>,
    },
}

/// What to do with the rooms of a session once a new connection is up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Reattach {
    /// Rooms to join again (a fresh session, or rooms a resumed session no longer holds).
    pub(crate) rejoin: Vec<String>,
    /// Rooms whose leave was in flight when the connection dropped and which the session no
    /// longer holds: the leave is complete ([`LeaveReason::Requested`]).
    pub(crate) left: Vec<String>,
}

impl RoomTracker {
    /// The rooms the client is in (or joining again), by name.
    pub(crate) fn rooms(&self) -> Vec<String> {
        self.rooms.iter().filter(|(_, s)| !s.leaving).map(|(room, _)| room.clone()).collect()
    }

    /// A join response arrived (any join: the application's or a rejoin).
    pub(crate) fn note_joined(&mut self, joined: &JoinedRoom) {
        let state = self.rooms.entry(joined.room.clone()).or_default();
        let other_epoch = state.epoch.is_some_and(|epoch| epoch != joined.epoch);
        state.epoch = Some(joined.epoch);
        match state.next {
            NextStream::Rejoined { new_room, .. } => {
                let new_room = new_room || other_epoch;
                state.next = NextStream::Rejoined { next_seq: Some(joined.next_seq), new_room };
                return;
            }
            // Cannot be answered while resumed (already joined); nothing to learn.
            NextStream::Resumed => return,
            NextStream::New => {}
        }
        let floor = joined.next_seq.saturating_sub(1);
        if state.stream == Some(joined.stream_id) {
            // The stream started before its response: messages may already have come.
            state.last_seq = Some(state.last_seq.map_or(floor, |last| last.max(floor)));
        } else {
            state.joined = Some((joined.stream_id, joined.next_seq));
        }
    }

    /// A room stream starts (its predecessor in the same room, if any, has ended).
    pub(crate) fn stream_started(&mut self, room: &str, stream_id: u64) {
        let state = self.rooms.entry(room.to_owned()).or_default();
        match state.next {
            NextStream::Resumed => {
                // The same membership over a new stream: keep counting from `last_seq`.
                state.next = NextStream::New;
                state.settle();
            }
            // Settled by `start` once the join's response is in.
            NextStream::Rejoined { .. } => {}
            NextStream::New => {
                // A new membership: it starts at its join's `next_seq`, or at its first message
                // when the join's response is still on its way; its private messages from 1.
                state.last_private_seq = 0;
                state.last_seq = match state.joined {
                    Some((id, next_seq)) if id == stream_id => Some(next_seq.saturating_sub(1)),
                    _ => None,
                };
                state.joined = None;
            }
        }
        state.stream = Some(stream_id);
    }

    /// Whether the stream `stream_id` that started may deliver; for a rejoin, once its
    /// response is in, the messages missed since the client's position.
    pub(crate) fn start(&mut self, room: &str, stream_id: u64) -> StreamStart {
        let Some(state) = self.current(room, stream_id) else {
            return StreamStart::Ready { gap: None };
        };
        let NextStream::Rejoined { next_seq, new_room } = state.next else {
            return StreamStart::Ready { gap: None };
        };
        let Some(next_seq) = next_seq else {
            return StreamStart::AwaitJoin;
        };
        state.next = NextStream::New;
        // A new membership for the server: its private numbering restarts.
        state.last_private_seq = 0;
        let floor = next_seq.saturating_sub(1);
        let gap = match state.last_seq {
            Some(last) if !new_room && floor > last => Some((last + 1, floor)),
            Some(last) if !new_room && floor == last => None,
            // A new room under the same name (the server restarted, or the numbering went
            // back): its messages before the rejoin were all missed.
            Some(_) => (floor >= 1).then_some((1, floor)),
            None => None,
        };
        state.last_seq = Some(floor);
        StreamStart::Ready { gap }
    }

    /// A message `seq` arrived on `stream_id`.
    pub(crate) fn on_message(&mut self, room: &str, stream_id: u64, seq: u64) -> Delivery {
        let Some(state) = self.current(room, stream_id) else {
            return Delivery::Deliver { gap: None };
        };
        match state.last_seq {
            Some(last) if seq <= last => Delivery::Duplicate,
            Some(last) => {
                state.last_seq = Some(seq);
                let gap = (seq > last + 1).then(|| (last + 1, seq - 1));
                Delivery::Deliver { gap }
            }
            None => {
                state.last_seq = Some(seq);
                Delivery::Deliver { gap: None }
            }
        }
    }

    /// The server reported messages `from..=to` missing on `stream_id`. Returns the range to
    /// report: trimmed of what was already delivered, widened over any earlier hole; `None`
    /// when everything in it was already delivered.
    pub(crate) fn on_gap(
        &mut self,
        room: &str,
        stream_id: u64,
        from: u64,
        to: u64,
    ) -> Option<(u64, u64)> {
        let Some(state) = self.current(room, stream_id) else {
            return Some((from, to));
        };
        match state.last_seq {
            Some(last) if to <= last => None,
            Some(last) => {
                state.last_seq = Some(to);
                Some((last + 1, to))
            }
            None => {
                state.last_seq = Some(to);
                Some((from, to))
            }
        }
    }

    /// A private message `seq` arrived on `stream_id`. Returns whether to deliver it: not when
    /// it was delivered already (a replay overlapping what the client had).
    pub(crate) fn on_private(&mut self, room: &str, stream_id: u64, seq: u64) -> bool {
        let Some(state) = self.current(room, stream_id) else {
            return true;
        };
        if seq <= state.last_private_seq {
            return false;
        }
        state.last_private_seq = seq;
        true
    }

    /// The server reported private messages `from..=to` missing on `stream_id`. Returns the
    /// range to report, trimmed of what was already delivered; `None` when nothing is left.
    pub(crate) fn on_private_gap(
        &mut self,
        room: &str,
        stream_id: u64,
        from: u64,
        to: u64,
    ) -> Option<(u64, u64)> {
        let Some(state) = self.current(room, stream_id) else {
            return Some((from, to));
        };
        if to <= state.last_private_seq {
            return None;
        }
        let from = from.max(state.last_private_seq + 1);
        state.last_private_seq = to;
        Some((from, to))
    }

    /// The membership on `stream_id` ended with `reason`. Returns whether to tell the
    /// application. With `will_reconnect`, a server shutdown does not end the membership: the
    /// room is kept, to be joined again on the next connection.
    pub(crate) fn on_left(
        &mut self,
        room: &str,
        stream_id: u64,
        reason: LeaveReason,
        will_reconnect: bool,
    ) -> bool {
        let Some(state) = self.current(room, stream_id) else {
            return true;
        };
        if reason == LeaveReason::ServerShutdown && will_reconnect {
            state.stream = None;
            return false;
        }
        let newer_join = state.joined;
        match newer_join {
            // The room was joined again while this membership's stream was still delivering.
            Some(joined) => {
                // The new join's response told the epoch.
                let epoch = state.epoch;
                *state = RoomState { joined: Some(joined), epoch, ..RoomState::default() }
            }
            None => drop(self.rooms.remove(room)),
        }
        true
    }

    /// The server announced its shutdown: its rooms end with it, and rooms joined again in a
    /// fresh session will be new ones.
    pub(crate) fn server_going_away(&mut self) {
        self.server_going_away = true;
    }

    /// A leave of `room` is being asked for.
    pub(crate) fn leave_requested(&mut self, room: &str) {
        if let Some(state) = self.rooms.get_mut(room) {
            state.leaving = true;
        }
    }

    /// A leave of `room` was refused or never sent: the client is still in the room.
    pub(crate) fn leave_failed(&mut self, room: &str) {
        if let Some(state) = self.rooms.get_mut(room) {
            state.leaving = false;
        }
    }

    /// Where the client is in each room, for a resume request. Rooms being left are not
    /// claimed; rooms whose position is not known yet are left out (the server then replays
    /// everything the session is entitled to).
    pub(crate) fn positions(&self) -> Vec<RoomPosition> {
        self.rooms
            .iter()
            .filter(|(_, state)| !state.leaving)
            .filter_map(|(room, state)| {
                let last_seq = if matches!(state.next, NextStream::Rejoined { new_room: true, .. })
                {
                    // A new room under the same name: nothing of it has been seen yet.
                    0
                } else {
                    state
                        .last_seq
                        .or_else(|| state.joined.map(|(_, next_seq)| next_seq.saturating_sub(1)))?
                };
                let last_private_seq = state.last_private_seq;
                Some(RoomPosition { room: room.clone(), last_seq, last_private_seq })
            })
            .collect()
    }

    /// The session was resumed and holds the rooms in `returned` (each on a new stream that
    /// replays what the client missed). Rooms the client is in but the session no longer
    /// holds are to be joined again; a room the session holds that the client did not know
    /// (a join whose response was lost with the connection) is adopted.
    pub(crate) fn resumed(&mut self, returned: &[JoinedRoom]) -> Reattach {
        let held: HashSet<&str> = returned.iter().map(|joined| joined.room.as_str()).collect();
        for joined in returned {
            let state = self.rooms.entry(joined.room.clone()).or_default();
            if state.epoch.replace(joined.epoch).is_some_and(|epoch| epoch != joined.epoch) {
                // Not the room the position was counted in: everything of this one is owed.
                state.last_seq = Some(0);
            }
            // A leave that was in flight did not happen: the application was told its outcome
            // was unknown and may ask again.
            state.leaving = false;
        }
        self.server_going_away = false;
        self.reattach(|room| held.contains(room))
    }

    /// A fresh session started (the old one could not be resumed): every room is to be
    /// joined again, except those being left.
    pub(crate) fn fresh_session(&mut self) -> Reattach {
        self.reattach(|_| false)
    }

    fn reattach(&mut self, held: impl Fn(&str) -> bool) -> Reattach {
        let new_room = std::mem::take(&mut self.server_going_away);
        let mut reattach = Reattach::default();
        self.rooms.retain(|room, state| {
            let held = held(room);
            if state.leaving && !held {
                reattach.left.push(room.clone());
                return false;
            }
            // A rejoin found a new room (or would have) but its stream never started: the old
            // position means nothing in the new room's numbering, whatever comes next.
            let new_numbering = matches!(state.next, NextStream::Rejoined { new_room: true, .. });
            state.settle();
            if new_numbering {
                state.last_seq = Some(0);
            }
            state.stream = None;
            state.next = if held {
                NextStream::Resumed
            } else {
                reattach.rejoin.push(room.clone());
                // The rejoin is a new membership for the server: claiming the old one's
                // private position in a later resume would skip its first private messages.
                state.last_private_seq = 0;
                NextStream::Rejoined { next_seq: None, new_room }
            };
            true
        });
        reattach
    }

    /// `room` could not be joined again: the client is no longer in it. A stream of the room
    /// waiting for the rejoin's response then delivers as a new membership.
    pub(crate) fn rejoin_failed(&mut self, room: &str) {
        self.rooms.remove(room);
    }

    /// The room's state when `stream_id` is the stream delivering its membership.
    fn current(&mut self, room: &str, stream_id: u64) -> Option<&mut RoomState> {
        self.rooms.get_mut(room).filter(|state| state.stream == Some(stream_id))
    }
}

#[cfg(test)]
mod tests {
    use chatroom_protocol::Role;

    use super::*;

    /// A join response of `room`, in its first epoch.
    fn joined(room: &str, next_seq: u64, stream_id: u64) -> JoinedRoom {
        joined_in(room, 1, next_seq, stream_id)
    }

    fn joined_in(room: &str, epoch: u64, next_seq: u64, stream_id: u64) -> JoinedRoom {
        let role = Role::Member;
        JoinedRoom { room: room.into(), role, members: 1, next_seq, stream_id, epoch }
    }

    fn deliver(tracker: &mut RoomTracker, room: &str, stream: u64, seqs: &[u64]) {
        for &seq in seqs {
            let delivery = tracker.on_message(room, stream, seq);
            assert_eq!(delivery, Delivery::Deliver { gap: None }, "seq {seq}");
        }
    }

    fn position(tracker: &RoomTracker, room: &str) -> Option<u64> {
        tracker.positions().into_iter().find(|p| p.room == room).map(|p| p.last_seq)
    }

    #[test]
    fn a_join_starts_at_its_next_seq_whichever_comes_first() {
        // Response first, then the stream.
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 5, 1));
        assert_eq!(position(&tracker, "r"), Some(4), "known before any message");
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[5, 6]);
        assert_eq!(position(&tracker, "r"), Some(6));

        // Stream (and a message) first, then the response.
        let mut tracker = RoomTracker::default();
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[5]);
        tracker.note_joined(&joined("r", 5, 1));
        assert_eq!(position(&tracker, "r"), Some(5), "the response does not go backwards");

        // Stream first without messages, then the response.
        let mut tracker = RoomTracker::default();
        tracker.stream_started("r", 1);
        assert_eq!(position(&tracker, "r"), None);
        tracker.note_joined(&joined("r", 5, 1));
        assert_eq!(position(&tracker, "r"), Some(4));
        assert_eq!(tracker.rooms(), ["r"]);
    }

    #[test]
    fn duplicates_are_dropped_and_holes_reported() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2]);
        assert_eq!(tracker.on_message("r", 1, 2), Delivery::Duplicate);
        assert_eq!(tracker.on_message("r", 1, 1), Delivery::Duplicate);
        assert_eq!(tracker.on_message("r", 1, 5), Delivery::Deliver { gap: Some((3, 4)) });
        assert_eq!(position(&tracker, "r"), Some(5));
    }

    #[test]
    fn server_gaps_advance_and_are_trimmed() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2, 3]);
        assert_eq!(tracker.on_gap("r", 1, 2, 3), None, "all delivered already");
        assert_eq!(tracker.on_gap("r", 1, 2, 6), Some((4, 6)), "trimmed");
        assert_eq!(tracker.on_gap("r", 1, 9, 9), Some((7, 9)), "widened over a silent hole");
        assert_eq!(position(&tracker, "r"), Some(9));
        assert_eq!(tracker.on_message("r", 1, 8), Delivery::Duplicate);
        deliver(&mut tracker, "r", 1, &[10]);
    }

    #[test]
    fn a_resume_replays_after_the_position_exactly_once() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2, 3]);
        assert!(tracker.on_private("r", 1, 1));
        let claimed = RoomPosition { room: "r".into(), last_seq: 3, last_private_seq: 1 };
        assert_eq!(tracker.positions(), [claimed]);

        let reattach = tracker.resumed(&[joined("r", 6, 40)]);
        assert_eq!(reattach, Reattach::default());
        tracker.stream_started("r", 40);
        // A stale position makes the replay overlap: the overlap is dropped.
        assert_eq!(tracker.on_message("r", 40, 3), Delivery::Duplicate);
        deliver(&mut tracker, "r", 40, &[4, 5]);
        // A join response for the continuing membership does not reset it.
        assert_eq!(position(&tracker, "r"), Some(5));
        // Private messages continue their numbering too.
        assert!(!tracker.on_private("r", 40, 1), "delivered before the resume");
        assert!(tracker.on_private("r", 40, 2));
    }

    #[test]
    fn private_messages_are_deduplicated_and_their_gaps_trimmed() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        // Another session of the same user may have received some before this one joined.
        assert!(tracker.on_private("r", 1, 4));
        assert!(!tracker.on_private("r", 1, 4));
        assert_eq!(tracker.on_private_gap("r", 1, 3, 4), None, "all delivered already");
        assert_eq!(tracker.on_private_gap("r", 1, 3, 7), Some((5, 7)), "trimmed");
        assert!(!tracker.on_private("r", 1, 6));
        assert!(tracker.on_private("r", 1, 8));
        let last_private = |t: &RoomTracker| t.positions()[0].last_private_seq;
        assert_eq!(last_private(&tracker), 8);

        // A fresh session's rejoin is a new membership: its numbering starts again.
        tracker.fresh_session();
        assert_eq!(last_private(&tracker), 0, "the old membership's numbering is not claimed");
        // The connection is lost again before the rejoin's stream started; the fresh session
        // resumes, holding the rejoined membership: its private messages replay from 1.
        assert_eq!(tracker.resumed(&[joined("r", 1, 2)]), Reattach::default());
        assert_eq!(last_private(&tracker), 0);
        tracker.stream_started("r", 2);
        assert_eq!(tracker.start("r", 2), StreamStart::Ready { gap: None });
        assert!(tracker.on_private("r", 2, 1));

        // So is leaving and joining again.
        assert!(tracker.on_left("r", 2, LeaveReason::Requested, true));
        tracker.note_joined(&joined("r", 1, 3));
        tracker.stream_started("r", 3);
        assert!(tracker.on_private("r", 3, 1));
    }

    #[test]
    fn a_resume_that_no_longer_holds_a_room_rejoins_it_with_its_gap() {
        let mut tracker = RoomTracker::default();
        for (room, stream) in [("a", 1), ("b", 2)] {
            tracker.note_joined(&joined(room, 1, stream));
            tracker.stream_started(room, stream);
            deliver(&mut tracker, room, stream, &[1, 2]);
        }
        let reattach = tracker.resumed(&[joined("a", 3, 10)]);
        assert_eq!(reattach.rejoin, ["b"]);
        assert!(reattach.left.is_empty());
        tracker.stream_started("a", 10);
        assert_eq!(tracker.start("a", 10), StreamStart::Ready { gap: None }, "a replay");

        // The rejoin's response comes before its stream.
        tracker.note_joined(&joined("b", 9, 11));
        tracker.stream_started("b", 11);
        assert_eq!(tracker.start("b", 11), StreamStart::Ready { gap: Some((3, 8)) });
        deliver(&mut tracker, "b", 11, &[9]);
    }

    #[test]
    fn a_rejoined_stream_waits_for_its_response_and_reports_the_gap_once() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2]);
        assert_eq!(tracker.fresh_session().rejoin, ["r"]);
        assert_eq!(position(&tracker, "r"), Some(2), "claimed until the rejoin settles");
        tracker.stream_started("r", 7);
        assert_eq!(tracker.start("r", 7), StreamStart::AwaitJoin);
        assert_eq!(tracker.start("r", 7), StreamStart::AwaitJoin, "asking again is harmless");
        tracker.note_joined(&joined("r", 6, 7));
        assert_eq!(tracker.start("r", 7), StreamStart::Ready { gap: Some((3, 5)) });
        assert_eq!(tracker.start("r", 7), StreamStart::Ready { gap: None }, "reported once");
        deliver(&mut tracker, "r", 7, &[6, 7]);

        // Nothing missed: no gap.
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 3, 1));
        assert_eq!(tracker.fresh_session().rejoin, ["r"]);
        tracker.note_joined(&joined("r", 3, 2));
        tracker.stream_started("r", 2);
        assert_eq!(tracker.start("r", 2), StreamStart::Ready { gap: None });
        assert_eq!(position(&tracker, "r"), Some(2));
    }

    #[test]
    fn a_room_whose_numbering_restarted_is_a_new_room() {
        // The server restarted: the room exists again, from seq 1.
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2, 3, 4]);
        tracker.fresh_session();
        tracker.note_joined(&joined("r", 3, 1));
        tracker.stream_started("r", 1);
        assert_eq!(tracker.start("r", 1), StreamStart::Ready { gap: Some((1, 2)) });
        deliver(&mut tracker, "r", 1, &[3, 4, 5]);

        // Rejoined first: nothing of the new room missed.
        tracker.fresh_session();
        tracker.note_joined(&joined("r", 1, 2));
        tracker.stream_started("r", 2);
        assert_eq!(tracker.start("r", 2), StreamStart::Ready { gap: None });
        deliver(&mut tracker, "r", 2, &[1]);

        // Announced: the new room counts from 1 even when it outnumbers the old one already.
        tracker.server_going_away();
        tracker.fresh_session();
        tracker.note_joined(&joined("r", 9, 3));
        tracker.stream_started("r", 3);
        assert_eq!(tracker.start("r", 3), StreamStart::Ready { gap: Some((1, 8)) });
        // Only the next fresh session after the notice.
        tracker.fresh_session();
        tracker.note_joined(&joined("r", 12, 4));
        tracker.stream_started("r", 4);
        assert_eq!(tracker.start("r", 4), StreamStart::Ready { gap: Some((9, 11)) });
    }

    #[test]
    fn a_rejoin_that_finds_another_epoch_reports_the_new_rooms_messages() {
        // The server crashed (no shutdown notice) and its new room under the same name already
        // outnumbers the client's position: only the epoch tells them apart.
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined_in("r", 7, 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2, 3, 4]);
        tracker.fresh_session();
        tracker.note_joined(&joined_in("r", 8, 10, 2));
        tracker.stream_started("r", 2);
        assert_eq!(tracker.start("r", 2), StreamStart::Ready { gap: Some((1, 9)) });
        deliver(&mut tracker, "r", 2, &[10]);

        // The same epoch again (only the session was lost): the gap starts after the position.
        tracker.fresh_session();
        tracker.note_joined(&joined_in("r", 8, 15, 3));
        tracker.stream_started("r", 3);
        assert_eq!(tracker.start("r", 3), StreamStart::Ready { gap: Some((11, 14)) });
    }

    #[test]
    fn a_failed_rejoin_forgets_the_room() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.fresh_session();
        tracker.rejoin_failed("r");
        assert!(tracker.rooms().is_empty());
        assert!(tracker.positions().is_empty());
        assert_eq!(tracker.start("r", 1), StreamStart::Ready { gap: None });
    }

    #[test]
    fn a_fresh_session_rejoins_everything_but_rooms_being_left() {
        let mut tracker = RoomTracker::default();
        for (room, stream) in [("a", 1), ("b", 2), ("c", 3)] {
            tracker.note_joined(&joined(room, 1, stream));
            tracker.stream_started(room, stream);
        }
        tracker.leave_requested("b");
        tracker.leave_requested("c");
        tracker.leave_failed("c");
        assert_eq!(tracker.positions().len(), 2, "a room being left is not claimed");
        let reattach = tracker.fresh_session();
        assert_eq!(reattach.rejoin, ["a", "c"]);
        assert_eq!(reattach.left, ["b"]);
        tracker.rejoin_failed("c");
        assert_eq!(tracker.rooms(), ["a"]);
    }

    #[test]
    fn a_leave_in_flight_resolves_by_what_the_resumed_session_holds() {
        let mut tracker = RoomTracker::default();
        for (room, stream) in [("kept", 1), ("gone", 2)] {
            tracker.note_joined(&joined(room, 1, stream));
            tracker.stream_started(room, stream);
            tracker.leave_requested(room);
        }
        let reattach = tracker.resumed(&[joined("kept", 1, 5)]);
        assert_eq!(reattach.left, ["gone"], "the leave happened");
        assert!(reattach.rejoin.is_empty());
        assert_eq!(tracker.rooms(), ["kept"], "the leave did not happen");
    }

    #[test]
    fn a_room_the_resumed_session_holds_unknown_to_the_client_is_adopted() {
        let mut tracker = RoomTracker::default();
        let reattach = tracker.resumed(&[joined("new", 7, 5)]);
        assert_eq!(reattach, Reattach::default());
        tracker.stream_started("new", 5);
        // Its replay starts where the session's membership did, before `next_seq`.
        deliver(&mut tracker, "new", 5, &[3, 4]);
        assert_eq!(tracker.rooms(), ["new"]);
    }

    #[test]
    fn leaving_ends_the_membership_but_a_shutdown_keeps_it_for_reconnection() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1]);
        assert!(!tracker.on_left("r", 1, LeaveReason::ServerShutdown, true));
        assert_eq!(position(&tracker, "r"), Some(1), "kept");
        assert!(tracker.on_left("r", 9, LeaveReason::Requested, true), "unknown stream");
        assert_eq!(tracker.rooms(), ["r"], "another stream's end does not end this one");

        tracker.stream_started("r", 2);
        assert!(tracker.on_left("r", 2, LeaveReason::ServerShutdown, false));
        assert!(tracker.rooms().is_empty());
    }

    #[test]
    fn leave_then_join_again_starts_over() {
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined("r", 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2]);
        // The new join's response arrives while the old stream still delivers.
        tracker.note_joined(&joined("r", 50, 2));
        deliver(&mut tracker, "r", 1, &[3]);
        assert!(tracker.on_left("r", 1, LeaveReason::Requested, true));
        assert_eq!(tracker.rooms(), ["r"], "the new membership");
        tracker.stream_started("r", 2);
        assert_eq!(position(&tracker, "r"), Some(49));
        deliver(&mut tracker, "r", 2, &[50]);

        // The new membership's epoch is remembered: a later restart is still told apart.
        tracker.fresh_session();
        tracker.note_joined(&joined_in("r", 2, 60, 3));
        tracker.stream_started("r", 3);
        assert_eq!(tracker.start("r", 3), StreamStart::Ready { gap: Some((1, 59)) });
    }

    #[test]
    fn a_new_room_found_by_a_rejoin_cut_short_is_still_counted_from_1() {
        // The rejoin's response reveals another epoch, then the connection drops before the
        // rejoin's stream starts; the next connection resumes the fresh session.
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined_in("r", 1, 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2, 3, 4, 5, 6]);
        tracker.fresh_session();
        tracker.note_joined(&joined_in("r", 2, 4, 2));
        assert_eq!(position(&tracker, "r"), Some(0), "not 6, a position in the old room");
        assert_eq!(tracker.resumed(&[joined_in("r", 2, 8, 3)]), Reattach::default());
        assert_eq!(position(&tracker, "r"), Some(0));
        tracker.stream_started("r", 3);
        // The server replays from where the membership started (4): 1..=3 are reported.
        assert_eq!(tracker.on_message("r", 3, 4), Delivery::Deliver { gap: Some((1, 3)) });

        // The same, when the next connection has to start a fresh session again.
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined_in("r", 1, 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2, 3, 4, 5, 6]);
        tracker.fresh_session();
        tracker.note_joined(&joined_in("r", 2, 4, 2));
        tracker.fresh_session();
        tracker.note_joined(&joined_in("r", 2, 9, 3));
        tracker.stream_started("r", 3);
        assert_eq!(tracker.start("r", 3), StreamStart::Ready { gap: Some((1, 8)) });

        // A resumed session holding another epoch than the client knew (its join's response
        // was lost with the connection) is counted from 1 too.
        let mut tracker = RoomTracker::default();
        tracker.note_joined(&joined_in("r", 1, 1, 1));
        tracker.stream_started("r", 1);
        deliver(&mut tracker, "r", 1, &[1, 2, 3, 4, 5, 6]);
        tracker.fresh_session();
        tracker.resumed(&[joined_in("r", 2, 8, 3)]);
        tracker.stream_started("r", 3);
        assert_eq!(tracker.on_message("r", 3, 4), Delivery::Deliver { gap: Some((1, 3)) });
    }
}
