//! One client of a run: connect through its proxy, join its rooms, read its events into the
//! ledger, send at its rate. The client library replaces lost connections by itself; when it
//! gives up (or fails its first connection), the runner connects again and rejoins, as an
//! application would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chatroom_client::{Client, Event, Events, SendOptions};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{RunContext, derive_seed};
use crate::ledger::MessageTag;
use crate::scenario::ClientPlan;

/// Sends one client may have waiting for their acknowledgement; a tick beyond it counts as a
/// failed send rather than piling up requests behind a dead link.
const MAX_PENDING_SENDS: usize = 64;

/// How long a deliberate leave or close may take before the client gives up on it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection a client has now, for its sender.
#[derive(Clone)]
struct Live {
    client: Client,
}

/// Runs one client until the run ends.
pub(super) async fn run(ctx: Arc<RunContext>, plan: ClientPlan, target: SocketAddr) {
    sleep_until(ctx.start + plan.connect_at).await;
    let stay_until = plan.leave_at.map_or(ctx.end, |at| ctx.start + at);
    let (live_tx, live_rx) = watch::channel::<Option<Live>>(None);
    let sender = (plan.rate > 0.0).then(|| tokio::spawn(send(ctx.clone(), plan.clone(), live_rx)));

    let mut last: Option<Client> = None;
    while Instant::now() < stay_until {
        let Some((client, events, connection)) = connect(&ctx, &plan, target, stay_until).await
        else {
            break;
        };
        let reader = tokio::spawn(read(ctx.clone(), plan.index, events, connection));
        if !join_all(&ctx, &plan, &client, stay_until).await {
            // Closing ends the reader, which records the connection's end.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, client.close()).await;
            let _ = timeout_at(ctx.end, reader).await;
            wait_to_reconnect(&ctx, stay_until).await;
            continue;
        }
        live_tx.send_replace(Some(Live { client: client.clone() }));
        last = Some(client);
        let mut reader = reader;
        tokio::select! {
            _ = &mut reader => {
                live_tx.send_replace(None);
                last = None;
                if !ctx.settings.app_reconnect {
                    break;
                }
                wait_to_reconnect(&ctx, stay_until).await;
            }
            _ = sleep_until(stay_until) => {
                // Keep reading until the end of the run, after leaving if the plan says so.
                live_tx.send_replace(None);
                if stay_until < ctx.end {
                    leave_all(&ctx, &plan, last.as_ref()).await;
                }
                let _ = timeout_at(ctx.end, &mut reader).await;
                break;
            }
        }
    }
    live_tx.send_replace(None);
    sleep_until(ctx.end).await;
    if let Some(sender) = sender {
        sender.abort();
    }
    if let Some(client) = last {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, client.close()).await;
    }
}

/// Connects, retrying until `until`; records every attempt.
async fn connect(
    ctx: &RunContext,
    plan: &ClientPlan,
    target: SocketAddr,
    until: Instant,
) -> Option<(Client, Events, u32)> {
    while Instant::now() < until {
        let began = Instant::now();
        let attempt = timeout_at(until, ctx.builder(target, &plan.user).connect()).await;
        match attempt {
            Ok(Ok((client, events))) => {
                let at = ctx.now();
                let connection =
                    ctx.ledger().connected(plan.index, at, Some(began.elapsed()), false);
                return Some((client, events, connection));
            }
            Ok(Err(error)) => {
                tracing::debug!(user = %plan.user, %error, "connection attempt failed");
                ctx.ledger().connect_failed();
                wait_to_reconnect(ctx, until).await;
            }
            Err(_) => return None,
        }
    }
    None
}

async fn wait_to_reconnect(ctx: &RunContext, until: Instant) {
    sleep_until((Instant::now() + ctx.settings.app_reconnect_delay).min(until)).await;
}

/// Joins every room of the plan; false if the connection failed meanwhile.
async fn join_all(ctx: &RunContext, plan: &ClientPlan, client: &Client, until: Instant) -> bool {
    for room in &plan.rooms {
        match timeout_at(until, client.join(ctx.server_room(room))).await {
            Ok(Ok(joined)) => ctx.ledger().joined(plan.index, room, joined.next_seq),
            Ok(Err(error)) => {
                tracing::debug!(user = %plan.user, %room, %error, "join failed");
                return false;
            }
            Err(_) => return false,
        }
    }
    true
}

async fn leave_all(ctx: &RunContext, plan: &ClientPlan, client: Option<&Client>) {
    let Some(client) = client else { return };
    for room in &plan.rooms {
        ctx.ledger().leaving(plan.index, room);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, client.leave(ctx.server_room(room))).await;
    }
}

/// Records the events of one client until it is done. The library replaces lost connections
/// itself ([`Event::Reconnecting`], then [`Event::Resumed`] or [`Event::NewSession`]); each
/// replacement is a new connection number, so that a rebind followed by a reconnection is not
/// taken for a migration.
async fn read(ctx: Arc<RunContext>, index: usize, mut events: Events, first_connection: u32) {
    let scenario_room = |server_room: &str| {
        ctx.room_names.iter().find(|(_, s)| s.as_str() == server_room).map(|(r, _)| r.clone())
    };
    let mut connection = first_connection;
    while let Some(event) = events.next().await {
        let at = ctx.now();
        match event {
            Event::Message { room, message } => {
                if let Some(room) = scenario_room(&room) {
                    ctx.ledger().delivered(
                        index,
                        &room,
                        message.seq,
                        &message.text,
                        at,
                        connection,
                    );
                }
            }
            Event::Gap { room, from, to } => {
                if let Some(room) = scenario_room(&room) {
                    ctx.ledger().gap(index, &room, from, to);
                }
            }
            Event::Reconnecting { attempt, reason, .. } => {
                tracing::debug!(client = index, attempt, %reason, "reconnecting");
                let mut ledger = ctx.ledger();
                if attempt <= 1 {
                    ledger.disconnected(index, at);
                } else {
                    // The previous attempt failed.
                    ledger.connect_failed();
                }
            }
            Event::Resumed { .. } => {
                connection = ctx.ledger().connected(index, at, None, true);
            }
            Event::NewSession { reason, .. } => {
                tracing::debug!(client = index, ?reason, "fresh session after reconnecting");
                connection = ctx.ledger().connected(index, at, None, false);
            }
            Event::RejoinFailed { room, error } => {
                // The room stays owed: the user never chose to leave it.
                tracing::warn!(client = index, %room, %error, "could not rejoin after reconnecting");
            }
            Event::Disconnected { reason, .. } => {
                tracing::debug!(client = index, %reason, "disconnected");
                break;
            }
            _ => {}
        }
    }
    ctx.ledger().disconnected(index, ctx.now());
}

/// Sends at the plan's rate until the run's sending ends, whatever the connection does: a tick
/// without a connection is a failed send, as a user's message would be.
async fn send(ctx: Arc<RunContext>, plan: ClientPlan, mut live: watch::Receiver<Option<Live>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(ctx.seed, 2, plan.index as u64));
    // Start when first connected, at a random phase so that clients do not send in lockstep.
    if timeout_at(ctx.send_until, live.wait_for(Option::is_some)).await.is_err() {
        return;
    }
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let mut next = Instant::now() + interval.mul_f64(rng.random::<f64>());
    let stop = plan.leave_at.map_or(ctx.send_until, |at| (ctx.start + at).min(ctx.send_until));
    let pending = Arc::new(Semaphore::new(MAX_PENDING_SENDS));
    let mut sends = JoinSet::new();
    let mut count: u64 = 0;
    loop {
        sleep_until(next).await;
        if next >= stop {
            break;
        }
        next += interval;
        while sends.try_join_next().is_some() {}
        // The same draws every tick, connected or not, so a seed gives the same messages.
        let room = plan.rooms[count as usize % plan.rooms.len()].clone();
        let size = rng.random_range(plan.size.0..=plan.size.1);
        let priority = plan.priority.pick(rng.random::<f64>());
        let id = ((plan.index as u64) << 32) | count;
        count += 1;
        let current = live.borrow().clone();
        let (Some(Live { client }), Ok(permit)) = (current, pending.clone().try_acquire_owned())
        else {
            ctx.ledger().send_failed();
            continue;
        };
        let ctx = ctx.clone();
        sends.spawn(async move {
            let sent_at = ctx.now();
            let text = MessageTag { id, sent_us: sent_at.as_micros() as u64 }.encode(size);
            let options = SendOptions { kind: Some("netsim".into()), priority };
            match client.send_with(ctx.server_room(&room), &text, options).await {
                Ok(seq) => ctx.ledger().accepted(&room, seq, id, sent_at),
                Err(error) => {
                    tracing::debug!(%error, "send failed");
                    ctx.ledger().send_failed();
                }
            }
            drop(permit);
        });
    }
    // Sends still waiting keep going until the drain ends; the run aborts this task then.
    while sends.join_next().await.is_some() {}
}
