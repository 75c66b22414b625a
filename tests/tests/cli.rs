//! The `chatroom` CLI, driven as scripts drive it: arguments, stdin lines, JSON lines out.

use std::process::Stdio;

use chatroom_tests::{TestServer, cli_binary, within};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

fn cli(server: &TestServer, user: &str) -> Command {
    let mut command = Command::new(cli_binary());
    command
        .arg("--server")
        .arg(server.addr.to_string())
        .arg("--ca")
        .arg(&server.cert_pem)
        .args(["--user", user])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run(server: &TestServer, user: &str, args: &[&str]) -> (i32, String, String) {
    let output = within("the CLI to finish", cli(server, user).args(args).output()).await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A `chatroom --json join` session: stdin to type into, JSON events out.
struct Joined {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Joined {
    async fn start(server: &TestServer, user: &str, args: &[&str]) -> Self {
        let mut command = cli(server, user);
        command.arg("--json").arg("join").args(args).stdin(Stdio::piped());
        let mut child = command.spawn().expect("spawn chatroom join");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, stdin, lines }
    }

    async fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next JSON event whose "event" is `name`, skipping others.
    async fn event(&mut self, name: &str) -> Value {
        within(&format!("a {name} event"), async {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("stdout ended before {name}"));
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if value["event"] == name {
                    return value;
                }
            }
        })
        .await
    }

    async fn finish(mut self) -> i32 {
        drop(self.stdin.take());
        let status = within("the join session to exit", self.child.wait()).await.unwrap();
        status.code().unwrap_or(-1)
    }
}

#[tokio::test]
async fn create_send_members_and_errors() {
    let server = TestServer::start().await;
    let (code, out, err) = run(&server, "alice", &["create-room", "lobby"]).await;
    assert_eq!((code, out.trim()), (0, "lobby"), "stderr: {err}");
    let (code, out, _) = run(&server, "alice", &["create-room"]).await;
    assert_eq!(code, 0);
    assert!(out.trim().starts_with("room-"), "{out}");

    let mut alice = Joined::start(&server, "alice", &["lobby"]).await;
    let joined = alice.event("joined").await;
    assert_eq!(
        (&joined["room"], &joined["role"], &joined["members"]),
        (&json!("lobby"), &json!("owner"), &json!(1))
    );

    let (code, _, err) = run(&server, "bob", &["send", "lobby", "hi", "there"]).await;
    assert_eq!(code, 0, "stderr: {err}");
    let message = alice.event("message").await;
    assert_eq!(message["from"], "bob");
    assert_eq!(message["text"], "hi there");
    assert_eq!(message["seq"], 1);
    assert_eq!(message["priority"], "normal");

    let (code, out, err) = run(&server, "carol", &["members", "lobby"]).await;
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("alice") && out.contains("owner"), "{out}");

    let (code, _, _) = run(&server, "bob", &["send", "nowhere", "hi"]).await;
    assert_ne!(code, 0, "sending to a missing room fails");
    let (code, out, _) = run(&server, "bob", &["--json", "send", "nowhere", "hi"]).await;
    assert_ne!(code, 0);
    let error: Value = serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!((&error["event"], &error["code"]), (&json!("error"), &json!("room_not_found")));

    assert_eq!(alice.finish().await, 0, "stdin EOF leaves and exits 0");
    server.stop().await;
}

#[tokio::test]
async fn a_moderated_conversation_over_json() {
    let server = TestServer::start().await;
    let mut alice = Joined::start(&server, "alice", &["--create", "plaza"]).await;
    assert_eq!(alice.event("joined").await["role"], "owner");
    let mut bob = Joined::start(&server, "bob", &["plaza"]).await;
    assert_eq!(bob.event("joined").await["members"], 2);
    assert_eq!(alice.event("member_joined").await["user"], "bob");

    bob.type_line("hello alice").await;
    let sent = bob.event("sent").await;
    assert_eq!((&sent["room"], &sent["seq"]), (&json!("plaza"), &json!(1)));
    assert_eq!(alice.event("message").await["text"], "hello alice");

    alice.type_line("/pm bob psst").await;
    let private = bob.event("private").await;
    assert_eq!((&private["from"], &private["text"]), (&json!("alice"), &json!("psst")));

    bob.type_line("/set mood curious").await;
    let attributes = alice.event("attributes").await;
    assert_eq!(
        (&attributes["user"], &attributes["attributes"]),
        (&json!("bob"), &json!({"mood": "curious"}))
    );
    alice.type_line("/info bob").await;
    assert_eq!(alice.event("attributes").await["attributes"]["mood"], "curious");

    alice.type_line("/admin bob").await;
    let role = bob.event("role").await;
    assert_eq!((&role["user"], &role["role"]), (&json!("bob"), &json!("admin")));
    alice.type_line("/unadmin bob").await;
    assert_eq!(bob.event("role").await["role"], "member");

    alice.type_line("/mute bob 60").await;
    assert_eq!(bob.event("muted").await["user"], "bob");
    bob.type_line("can I talk?").await;
    assert_eq!(bob.event("error").await["code"], "muted");
    alice.type_line("/unmute bob").await;
    assert_eq!(bob.event("unmuted").await["user"], "bob");

    alice.type_line("/members").await;
    let members = alice.event("members").await;
    assert_eq!(members["count"], 2);
    let users: Vec<_> =
        members["members"].as_array().unwrap().iter().map(|m| m["user"].clone()).collect();
    assert_eq!(users, [json!("alice"), json!("bob")]);

    alice.type_line("/kick bob").await;
    let kicked = bob.event("kicked").await;
    assert_eq!((&kicked["user"], &kicked["by"]), (&json!("bob"), &json!("alice")));
    assert_eq!(alice.event("kicked").await["user"], "bob");
    let _ = bob.finish().await;

    alice.type_line("/leave").await;
    assert_eq!(alice.event("left").await["room"], "plaza");
    assert_eq!(alice.finish().await, 0);
    server.stop().await;
}
