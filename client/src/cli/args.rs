//! The command line, as clap parses it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use rand::Rng;
use rand::distr::Alphanumeric;

/// Where `chatroom-server` writes its development certificate, relative to the working directory.
pub const DEV_CERT: &str = "./chatroom-data/dev-cert.pem";

const AFTER_HELP: &str = "\
Output: without --json, events are printed for a person on stdout and errors on stderr. With
--json, stdout carries one JSON object per line and nothing else, each with an \"event\" field
(created, joined, message, gap, sent, private, private_gap, member_joined, member_left,
member_count, role, muted, unmuted, kicked, attributes, members, left, going_away, reconnecting,
resumed, new_session, rejoin_failed, disconnected, error); logs go to stderr (RUST_LOG, default warn).

Weak networks: a lost connection is not the end. The client reconnects by itself, with a
back-off from --reconnect-initial doubling up to --reconnect-max (randomised, so that clients
do not all come back at once after a server restart), printing `reconnecting`. It then resumes
its session (`resumed`: the same session, and the room replays what was missed) or, when the
server no longer has it, starts a new one (`new_session`) and joins the room again, printing a
`gap` for the messages it can no longer get. Durations take a unit: 250ms, 5s, 1.5s.

Exit status: 0 on success; 1 on a fatal error (connection failed, room not found, message
refused), when `join` ends because this user was kicked, the room could not be joined again
after a reconnection, or the server refused the client for good; 2 on a usage error.";

const JOIN_HELP: &str = "\
Each line read from stdin is sent to the room as a message. Lines starting with / are commands:
  /pm USER TEXT        private message to USER
  /admin USER          make USER an admin (owner only)
  /unadmin USER        make admin USER a plain member again (owner only)
  /mute USER [SECONDS] mute USER, for SECONDS or until unmuted (owner or admin)
  /unmute USER         lift USER's mute
  /kick USER           remove USER from the room and ban it for a while
  /set KEY VALUE       set one of your attributes (`/set KEY` alone removes it)
  /info USER           print USER's attributes
  /members             print the member list
  /leave               leave the room and exit 0
  /quit                exit 0
A line starting with // sends the rest of it, starting with one /, as a message. A failed command
prints an error and the session continues. End of input leaves the room and exits 0. When this
user is kicked, the kicked and left events are printed and the exit status is 1.";

/// chatroom: the command-line client of a chatroom server.
#[derive(Debug, Parser)]
#[command(name = "chatroom", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// The server to connect to.
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = "127.0.0.1:4433")]
    pub server: String,

    /// The name the server's certificate must be valid for.
    #[arg(long, global = true, value_name = "NAME", default_value = "localhost")]
    pub server_name: String,

    /// Trust this PEM certificate (a CA or the server's self-signed certificate) [default:
    /// ./chatroom-data/dev-cert.pem if it exists, otherwise the system's roots]
    #[arg(long, global = true, value_name = "PEM")]
    pub ca: Option<PathBuf>,

    /// The user id to act as [default: user- and 8 random letters and digits]
    #[arg(long, global = true, value_name = "ID")]
    pub user: Option<String>,

    /// A credential for the server's authentication.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Print one JSON object per line on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    /// Give up connecting (and each reconnection attempt) after this long [default: 10s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,

    /// Consider the connection dead after this long without a packet from the server
    /// [default: 30s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Send a keep-alive after this long without a packet from the server; keep it below the
    /// idle timeout and NAT timeouts [default: 5s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub keep_alive: Option<Duration>,

    /// The first delay before reconnecting [default: 100ms]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub reconnect_initial: Option<Duration>,

    /// The longest delay between reconnection attempts [default: 10s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub reconnect_max: Option<Duration>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Create a room (random id if omitted) and print its id; you are its owner.
    CreateRoom {
        /// The room id wanted.
        room: Option<String>,
    },
    /// Stay in ROOM: send each stdin line as a message and print what happens in the room.
    #[command(after_help = JOIN_HELP)]
    Join {
        /// The room.
        room: String,
        /// Create the room first if it does not exist.
        #[arg(long)]
        create: bool,
    },
    /// Join ROOM, send one message and leave; exit 0 once the server accepted it.
    Send {
        /// The room.
        room: String,
        /// The message; several words are joined with spaces (put `--` before text starting
        /// with `-`).
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Print ROOM's member count, then each member with its role and attributes.
    Members {
        /// The room.
        room: String,
    },
}

impl Cli {
    /// The CA file to trust: `--ca`, else the development certificate if it exists here.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca.clone().or_else(|| {
            let dev = Path::new(DEV_CERT);
            dev.is_file().then(|| dev.to_path_buf())
        })
    }

    /// The user id: `--user`, else a random one.
    pub fn user_id(&self) -> String {
        self.user.clone().unwrap_or_else(random_user)
    }
}

/// A duration with a unit: `250ms`, `5s`, `1.5s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "" => return Err(format!("{text:?} needs a unit: ms, s or m (e.g. 250ms, 5s)")),
        other => return Err(format!("unknown unit {other:?}: use ms, s or m")),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {text:?}"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("out of range: {text:?}"))
}

/// `user-` and 8 random letters and digits.
pub fn random_user() -> String {
    let suffix: String = rand::rng().sample_iter(Alphanumeric).take(8).map(char::from).collect();
    format!("user-{suffix}")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = parse(&["chatroom", "create-room"]);
        assert_eq!(cli.server, "127.0.0.1:4433");
        assert_eq!(cli.server_name, "localhost");
        assert_eq!(cli.ca, None);
        assert_eq!(cli.user, None);
        assert!(!cli.json);
        assert_eq!(cli.connect_timeout, None);
        assert_eq!(cli.idle_timeout, None);
        assert_eq!(cli.keep_alive, None);
        assert_eq!(cli.reconnect_initial, None);
        assert_eq!(cli.reconnect_max, None);
        assert_eq!(cli.command, Command::CreateRoom { room: None });
        let user = cli.user_id();
        assert!(user.starts_with("user-") && user.len() == 13, "{user}");
        assert!(chatroom_protocol::validate_user_id(&user).is_ok());
    }

    #[test]
    fn global_flags_before_and_after_the_subcommand() {
        let before = parse(&[
            "chatroom",
            "--server",
            "h:1",
            "--server-name",
            "n",
            "--ca",
            "c.pem",
            "--user",
            "u",
            "--token",
            "t",
            "--json",
            "join",
            "lobby",
        ]);
        let after = parse(&[
            "chatroom",
            "join",
            "lobby",
            "--server",
            "h:1",
            "--server-name",
            "n",
            "--ca",
            "c.pem",
            "--user",
            "u",
            "--token",
            "t",
            "--json",
        ]);
        for cli in [before, after] {
            assert_eq!(cli.server, "h:1");
            assert_eq!(cli.server_name, "n");
            assert_eq!(cli.ca.as_deref(), Some(Path::new("c.pem")));
            assert_eq!(cli.user.as_deref(), Some("u"));
            assert_eq!(cli.token.as_deref(), Some("t"));
            assert!(cli.json);
            assert_eq!(cli.command, Command::Join { room: "lobby".into(), create: false });
        }
    }

    #[test]
    fn the_help_states_the_library_defaults() {
        use chatroom_client::{
            DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEP_ALIVE,
            DEFAULT_RECONNECT_INITIAL, DEFAULT_RECONNECT_MAX,
        };
        let help = Cli::command().render_long_help().to_string();
        for (flag, default) in [
            ("--connect-timeout", DEFAULT_CONNECT_TIMEOUT),
            ("--idle-timeout", DEFAULT_IDLE_TIMEOUT),
            ("--keep-alive", DEFAULT_KEEP_ALIVE),
            ("--reconnect-initial", DEFAULT_RECONNECT_INITIAL),
            ("--reconnect-max", DEFAULT_RECONNECT_MAX),
        ] {
            let text = match default.subsec_millis() {
                0 => format!("[default: {}s]", default.as_secs()),
                _ => format!("[default: {}ms]", default.as_millis()),
            };
            let line = help.split(flag).nth(1).unwrap_or_default();
            let line = line.split("\n\n").next().unwrap_or_default().replace('\n', " ");
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(line.contains(&text), "{flag}: {line:?} should say {text}");
        }
    }

    #[test]
    fn timeouts() {
        let cli = parse(&[
            "chatroom",
            "join",
            "lobby",
            "--idle-timeout",
            "20s",
            "--keep-alive",
            "2500ms",
            "--connect-timeout",
            "1.5s",
            "--reconnect-initial",
            "50ms",
            "--reconnect-max",
            "1m",
        ]);
        assert_eq!(cli.idle_timeout, Some(Duration::from_secs(20)));
        assert_eq!(cli.keep_alive, Some(Duration::from_millis(2500)));
        assert_eq!(cli.connect_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(cli.reconnect_initial, Some(Duration::from_millis(50)));
        assert_eq!(cli.reconnect_max, Some(Duration::from_secs(60)));
        for bad in ["5", "5h", "fast", "-1s", "1e400s"] {
            let err = Cli::try_parse_from(["chatroom", "join", "r", "--keep-alive", bad]);
            assert_eq!(err.expect_err(bad).exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            parse(&["chatroom", "create-room", "r1"]).command,
            Command::CreateRoom { room: Some("r1".into()) }
        );
        assert_eq!(
            parse(&["chatroom", "join", "--create", "r1"]).command,
            Command::Join { room: "r1".into(), create: true }
        );
        assert_eq!(
            parse(&["chatroom", "send", "r1", "hello", "world", "--json"]).command,
            Command::Send { room: "r1".into(), text: vec!["hello".into(), "world".into()] }
        );
        assert_eq!(
            parse(&["chatroom", "send", "r1", "--", "-1", "is", "odd"]).command,
            Command::Send { room: "r1".into(), text: vec!["-1".into(), "is".into(), "odd".into()] }
        );
        assert_eq!(
            parse(&["chatroom", "members", "r1"]).command,
            Command::Members { room: "r1".into() }
        );
    }

    #[test]
    fn usage_errors() {
        for args in [
            &["chatroom"][..],
            &["chatroom", "send", "r1"],
            &["chatroom", "join"],
            &["chatroom", "dance"],
            &["chatroom", "members", "r1", "--bogus"],
        ] {
            let err = Cli::try_parse_from(args).expect_err("usage error");
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
        let help = Cli::try_parse_from(["chatroom", "--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert_eq!(help.exit_code(), 0);
    }
}
