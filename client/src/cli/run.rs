//! The subcommands.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use chatroom_client::{
    Attributes, Client, ClientBuilder, ConnectError, DEFAULT_RECONNECT_INITIAL,
    DEFAULT_RECONNECT_MAX, ErrorCode, Event, Events, LeaveReason, MemberInfo, RequestError,
};
use tokio::sync::mpsc;
use tracing::warn;

use crate::cli::args::{Cli, Command};
use crate::cli::input::{self, Input};
use crate::cli::output::{Printer, Record};

/// How long `join` waits, after leaving, for the room's last events.
const LEAVE_DRAIN: Duration = Duration::from_secs(5);

/// The member-list page size asked for when the server announces none.
const FALLBACK_PAGE: u32 = 100;

/// An error that ends the program with status 1, and how to report it.
#[derive(Debug)]
pub struct Fatal {
    /// The `code` of the error record.
    pub code: String,
    /// The `message` of the error record.
    pub message: String,
}

impl From<ConnectError> for Fatal {
    fn from(error: ConnectError) -> Self {
        let code = match &error {
            ConnectError::Rejected(frame) => frame.code.as_str(),
            ConnectError::Closed { code, .. } => code.as_str(),
            ConnectError::Timeout(_) => "timeout",
            ConnectError::InvalidUser(_) => "bad_request",
            _ => "connect_failed",
        };
        Fatal { code: code.into(), message: error.to_string() }
    }
}

impl From<RequestError> for Fatal {
    fn from(error: RequestError) -> Self {
        let (code, message) = request_error(&error);
        Fatal { code: code.into(), message }
    }
}

/// The code and message of a failed request, as printed.
fn request_error(error: &RequestError) -> (&'static str, String) {
    match error {
        RequestError::Server(frame) => (frame.code.as_str(), frame.message.clone()),
        RequestError::Disconnected(_) => ("disconnected", error.to_string()),
        RequestError::ConnectionLost(_) => ("connection_lost", error.to_string()),
        RequestError::Timeout { .. } => ("timeout", error.to_string()),
        RequestError::TooLarge { .. } => ("too_large", error.to_string()),
        _ => ("client_error", error.to_string()),
    }
}

/// Runs the command line's subcommand.
pub async fn run(cli: Cli, printer: Printer) -> Result<ExitCode, Fatal> {
    let (client, events) = connect(&cli).await?;
    let result = match cli.command {
        Command::CreateRoom { room } => create_room(&client, room.as_deref(), printer).await,
        Command::Join { room, create } => join(&client, events, &room, create, printer).await,
        Command::Send { room, text } => send(&client, &room, &text.join(" "), printer).await,
        Command::Members { room } => members(&client, &room, printer).await,
    };
    client.close().await;
    result
}

async fn connect(cli: &Cli) -> Result<(Client, Events), Fatal> {
    let mut builder = ClientBuilder::new(cli.server.as_str())
        .server_name(&cli.server_name)
        .user(&cli.user_id())
        .agent(concat!("chatroom-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = cli.ca_file() {
        builder = builder.ca_pem_file(ca);
    }
    if let Some(token) = &cli.token {
        builder = builder.token(token);
    }
    if let Some(timeout) = cli.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = cli.idle_timeout {
        builder = builder.idle_timeout(timeout);
    }
    if let Some(interval) = cli.keep_alive {
        builder = builder.keep_alive(interval);
    }
    if cli.reconnect_initial.is_some() || cli.reconnect_max.is_some() {
        let initial = cli.reconnect_initial.unwrap_or(DEFAULT_RECONNECT_INITIAL);
        let max = cli.reconnect_max.unwrap_or(DEFAULT_RECONNECT_MAX).max(initial);
        builder = builder.reconnect_backoff(initial, max);
    }
    builder.connect().await.map_err(|error| {
        let fatal = Fatal::from(error);
        Fatal { message: format!("{}: {}", cli.server, fatal.message), ..fatal }
    })
}

async fn create_room(
    client: &Client,
    room: Option<&str>,
    printer: Printer,
) -> Result<ExitCode, Fatal> {
    let room = client.create_room(room).await?;
    printer.print(&Record::Created { room });
    Ok(ExitCode::SUCCESS)
}

async fn send(
    client: &Client,
    room: &str,
    text: &str,
    printer: Printer,
) -> Result<ExitCode, Fatal> {
    client.join(room).await?;
    let seq = client.send(room, text).await?;
    printer.print(&Record::Sent { room: room.into(), seq });
    if let Err(error) = client.leave(room).await {
        // The message is in; closing the connection ends the membership anyway.
        warn!(%error, "could not leave the room");
    }
    Ok(ExitCode::SUCCESS)
}

async fn members(client: &Client, room: &str, printer: Printer) -> Result<ExitCode, Fatal> {
    let record = match member_list(client, room).await {
        // A server may show the list to members only: then look from inside.
        Err(error) if error.code() == Some(ErrorCode::NotAMember) => {
            client.join(room).await?;
            let record = member_list(client, room).await;
            let _ = client.leave(room).await;
            record?
        }
        result => result?,
    };
    printer.print(&record);
    Ok(ExitCode::SUCCESS)
}

/// The whole member list of `room`, page by page.
async fn member_list(client: &Client, room: &str) -> Result<Record, RequestError> {
    let limit = match client.limits().max_members_page {
        0 => FALLBACK_PAGE,
        max => max,
    };
    let mut members: Vec<MemberInfo> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = client.members(room, after.as_deref(), limit).await?;
        members.extend(page.members);
        match page.next {
            // Pages are ordered by user id; a cursor that does not advance would loop forever.
            Some(next) if after.as_ref().is_none_or(|after| next > *after) => after = Some(next),
            Some(next) => {
                warn!(%next, "member list cursor did not advance; stopping");
                return Ok(Record::members(room.into(), page.count, members));
            }
            None => return Ok(Record::members(room.into(), page.count, members)),
        }
    }
}

async fn join(
    client: &Client,
    mut events: Events,
    room: &str,
    create: bool,
    printer: Printer,
) -> Result<ExitCode, Fatal> {
    if create {
        match client.create_room(Some(room)).await {
            Ok(room) => printer.print(&Record::Created { room }),
            Err(error) if error.code() == Some(ErrorCode::RoomExists) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let joined = client.join(room).await?;
    printer.print(&Record::Joined {
        room: joined.room,
        role: joined.role.as_str(),
        members: joined.members,
    });

    let mut lines = stdin_lines();
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { return Ok(ExitCode::FAILURE) };
                if let Some(status) = show(event, room, printer) {
                    return Ok(status);
                }
            }
            line = lines.recv() => {
                let Some(line) = line else {
                    return leave(client, &mut events, room, printer).await;
                };
                match input::parse(&line) {
                    Ok(None) => {}
                    Ok(Some(Input::Quit)) => return Ok(ExitCode::SUCCESS),
                    Ok(Some(Input::Leave)) => return leave(client, &mut events, room, printer).await,
                    Ok(Some(input)) => {
                        if let Err(error) = execute(client, room, input, printer).await {
                            let (code, message) = request_error(&error);
                            printer.error(code, &message);
                        }
                    }
                    Err(usage) => printer.error(ErrorCode::BadRequest.as_str(), &usage),
                }
            }
        }
    }
}

/// Prints an event of `join`; returns the exit status when it ends the session. A lost
/// connection does not: the client reconnects by itself and the events say so.
fn show(event: Event, room: &str, printer: Printer) -> Option<ExitCode> {
    let status = match &event {
        Event::Left { room: left, reason } if left == room => Some(match reason {
            LeaveReason::Requested => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }),
        Event::RejoinFailed { room: failed, .. } if failed == room => Some(ExitCode::FAILURE),
        Event::Disconnected { .. } => Some(ExitCode::FAILURE),
        _ => None,
    };
    if let Some(record) = Record::from_event(event) {
        printer.print(&record);
    }
    status
}

/// Leaves the room, prints its last events and ends `join`.
async fn leave(
    client: &Client,
    events: &mut Events,
    room: &str,
    printer: Printer,
) -> Result<ExitCode, Fatal> {
    client.leave(room).await?;
    let drain = async {
        while let Some(event) = events.next().await {
            if let Some(status) = show(event, room, printer) {
                return status;
            }
        }
        ExitCode::FAILURE
    };
    match tokio::time::timeout(LEAVE_DRAIN, drain).await {
        Ok(status) => Ok(status),
        Err(_) => {
            // The server accepted the leave; its Left frame is merely late.
            warn!(room, "left, but the room's last event did not arrive in time");
            printer.print(&Record::Left { room: room.into(), reason: "requested" });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Carries out one line of `join` input other than /leave and /quit.
async fn execute(
    client: &Client,
    room: &str,
    input: Input,
    printer: Printer,
) -> Result<(), RequestError> {
    match input {
        Input::Say(text) => {
            let seq = client.send(room, &text).await?;
            // A person sees the message come back; scripts get the acknowledgement.
            if printer.json() {
                printer.print(&Record::Sent { room: room.into(), seq });
            }
        }
        Input::Private { to, text } => client.private(room, &to, &text).await?,
        Input::Admin(user) => client.grant_admin(room, &user).await?,
        Input::Unadmin(user) => client.revoke_admin(room, &user).await?,
        Input::Mute { user, seconds } => {
            client.mute(room, &user, seconds.map(Duration::from_secs)).await?;
        }
        Input::Unmute(user) => client.unmute(room, &user).await?,
        Input::Kick(user) => client.kick(room, &user).await?,
        Input::Set { key, value } => {
            let (set, remove) = match value {
                Some(value) => (Attributes::from([(key, value)]), Vec::new()),
                None => (Attributes::new(), vec![key]),
            };
            let attributes = client.set_attributes(room, set, remove).await?;
            let user = client.user().to_owned();
            printer.print(&Record::Attributes { room: room.into(), user, attributes });
        }
        Input::Info(user) => {
            let attributes = client.attributes(room, &user).await?;
            printer.print(&Record::Attributes { room: room.into(), user, attributes });
        }
        Input::Members => printer.print(&member_list(client, room).await?),
        Input::Leave | Input::Quit => {}
    }
    Ok(())
}

/// Stdin, line by line, read on a thread of its own: a blocking read cannot be cancelled, and
/// this way it never holds up the end of the program. The channel closes at end of input.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
                    if tx.blocking_send(text).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    warn!(%error, "cannot read stdin");
                    return;
                }
            }
        }
    });
    rx
}
