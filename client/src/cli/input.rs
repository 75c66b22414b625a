//! The lines typed into `chatroom join`: messages and slash commands.

/// What one line of input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Send this message to the room.
    Say(String),
    /// `/pm USER TEXT`
    Private {
        /// The receiver.
        to: String,
        /// The message.
        text: String,
    },
    /// `/admin USER`
    Admin(String),
    /// `/unadmin USER`
    Unadmin(String),
    /// `/mute USER [SECONDS]`
    Mute {
        /// Who.
        user: String,
        /// For how long, or until unmuted.
        seconds: Option<u64>,
    },
    /// `/unmute USER`
    Unmute(String),
    /// `/kick USER`
    Kick(String),
    /// `/set KEY VALUE`, or `/set KEY` to remove the key.
    Set {
        /// The attribute.
        key: String,
        /// Its new value, or `None` to remove it.
        value: Option<String>,
    },
    /// `/info USER`
    Info(String),
    /// `/members`
    Members,
    /// `/leave`
    Leave,
    /// `/quit`
    Quit,
}

/// Parses one line (without its newline). Blank lines are `Ok(None)`; a malformed command is
/// an error message for the user.
pub fn parse(line: &str) -> Result<Option<Input>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(None);
    }
    if let Some(escaped) = line.strip_prefix("//") {
        return Ok(Some(Input::Say(format!("/{escaped}"))));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Some(Input::Say(line.to_owned())));
    };
    let (name, rest) = split_word(command);
    let input = match name {
        "pm" => {
            let (to, text) = split_word(rest);
            if to.is_empty() || text.is_empty() {
                return Err(usage("/pm USER TEXT"));
            }
            Input::Private { to: to.into(), text: text.into() }
        }
        "admin" => Input::Admin(one_arg(rest, "/admin USER")?),
        "unadmin" => Input::Unadmin(one_arg(rest, "/unadmin USER")?),
        "mute" => {
            let mut words = rest.split_whitespace();
            let user = words.next().ok_or_else(|| usage("/mute USER [SECONDS]"))?;
            let seconds = match words.next() {
                None => None,
                Some(s) => Some(
                    s.parse::<u64>()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| format!("not a positive number of seconds: {s}"))?,
                ),
            };
            if words.next().is_some() {
                return Err(usage("/mute USER [SECONDS]"));
            }
            Input::Mute { user: user.into(), seconds }
        }
        "unmute" => Input::Unmute(one_arg(rest, "/unmute USER")?),
        "kick" => Input::Kick(one_arg(rest, "/kick USER")?),
        "set" => {
            let (key, value) = split_word(rest);
            if key.is_empty() {
                return Err(usage("/set KEY VALUE"));
            }
            let value = (!value.is_empty()).then(|| value.to_owned());
            Input::Set { key: key.into(), value }
        }
        "info" => Input::Info(one_arg(rest, "/info USER")?),
        "members" => no_args(rest, "/members", Input::Members)?,
        "leave" => no_args(rest, "/leave", Input::Leave)?,
        "quit" => no_args(rest, "/quit", Input::Quit)?,
        other => {
            return Err(format!(
                "unknown command /{other}; commands: /pm /admin /unadmin /mute /unmute /kick \
                 /set /info /members /leave /quit (start a message with // to send a /)"
            ));
        }
    };
    Ok(Some(input))
}

/// The first word and the rest, both trimmed.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (s.trim_end(), ""),
    }
}

fn one_arg(rest: &str, usage_line: &str) -> Result<String, String> {
    let mut words = rest.split_whitespace();
    match (words.next(), words.next()) {
        (Some(arg), None) => Ok(arg.to_owned()),
        _ => Err(usage(usage_line)),
    }
}

fn no_args(rest: &str, usage_line: &str, input: Input) -> Result<Input, String> {
    if rest.trim().is_empty() { Ok(input) } else { Err(usage(usage_line)) }
}

fn usage(line: &str) -> String {
    format!("usage: {line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Input {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}")).expect("not blank")
    }

    #[test]
    fn messages() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   \r"), Ok(None));
        assert_eq!(ok("hello world"), Input::Say("hello world".into()));
        assert_eq!(ok("hello\r"), Input::Say("hello".into()));
        assert_eq!(ok("  indented"), Input::Say("  indented".into()));
        assert_eq!(ok("//not a command"), Input::Say("/not a command".into()));
    }

    #[test]
    fn commands() {
        assert_eq!(
            ok("/pm bob  hi there "),
            Input::Private { to: "bob".into(), text: "hi there".into() }
        );
        assert_eq!(ok("/admin bob"), Input::Admin("bob".into()));
        assert_eq!(ok("/unadmin bob"), Input::Unadmin("bob".into()));
        assert_eq!(ok("/mute bob"), Input::Mute { user: "bob".into(), seconds: None });
        assert_eq!(ok("/mute bob 60"), Input::Mute { user: "bob".into(), seconds: Some(60) });
        assert_eq!(ok("/unmute bob"), Input::Unmute("bob".into()));
        assert_eq!(ok("/kick bob"), Input::Kick("bob".into()));
        assert_eq!(
            ok("/set status out to lunch"),
            Input::Set { key: "status".into(), value: Some("out to lunch".into()) }
        );
        assert_eq!(ok("/set status"), Input::Set { key: "status".into(), value: None });
        assert_eq!(ok("/info bob"), Input::Info("bob".into()));
        assert_eq!(ok("/members"), Input::Members);
        assert_eq!(ok("/leave"), Input::Leave);
        assert_eq!(ok("/quit "), Input::Quit);
    }

    #[test]
    fn malformed_commands() {
        for line in [
            "/pm",
            "/pm bob",
            "/admin",
            "/admin a b",
            "/mute",
            "/mute bob soon",
            "/mute bob 0",
            "/mute bob 5 6",
            "/kick",
            "/set",
            "/info",
            "/members all",
            "/leave now",
            "/dance",
            "/",
        ] {
            assert!(parse(line).is_err(), "{line} should be refused");
        }
    }
}
