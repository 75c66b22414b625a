//! Joins a room, says hello and prints what happens there until Ctrl-C.
//!
//! Start a development server in one terminal (it writes its self-signed certificate to
//! `./chatroom-data/dev-cert.pem`), create a room, then run the example from the same directory:
//!
//! ```text
//! cargo run -p chatroom-server
//! cargo run -p chatroom-client --bin chatroom -- create-room lobby
//! cargo run -p chatroom-client --example chat -- lobby [USER] [HOST:PORT]
//! ```
//!
//! USER defaults to `example`, HOST:PORT to `127.0.0.1:4433`. Stop the server for a moment and
//! start it again: the example reconnects and joins the room again by itself.

use anyhow::Context;
use chatroom_client::{ClientBuilder, Event};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let room = args.next().context("usage: chat ROOM [USER] [HOST:PORT]")?;
    let user = args.next().unwrap_or_else(|| "example".into());
    let server = args.next().unwrap_or_else(|| "127.0.0.1:4433".into());

    let (client, mut events) = ClientBuilder::new(server)
        .ca_pem_file("chatroom-data/dev-cert.pem")
        .user(&user)
        .agent("chatroom-example-chat")
        .connect()
        .await
        .context("connecting")?;
    println!("connected as {} to region {:?}", client.user(), client.region());

    let joined = client.join(&room).await.with_context(|| format!("joining {room}"))?;
    println!("joined {} as {} with {} members", joined.room, joined.role.as_str(), joined.members);
    let seq = client.send(&room, &format!("hello from {user}")).await?;
    println!("sent message #{seq}");

    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.next() => match event {
                Some(Event::Message { room, message }) => {
                    println!("[{room} #{}] {}: {}", message.seq, message.from, message.text);
                }
                Some(Event::Gap { room, from, to }) => {
                    println!("[{room}] missed messages #{from} to #{to}");
                }
                // The client reconnects by itself; these only say what it is doing.
                Some(Event::Reconnecting { attempt, delay, reason }) => {
                    println!("connection lost ({reason}); attempt {attempt} in {delay:?}");
                }
                Some(Event::Resumed { .. }) => println!("back, nothing missed"),
                Some(Event::NewSession { .. }) => println!("back with a new session"),
                Some(Event::Disconnected { reason, .. }) => {
                    println!("disconnected: {reason}");
                    return Ok(());
                }
                Some(other) => println!("{other:?}"),
                None => return Ok(()),
            },
        }
    }
    client.leave(&room).await?;
    client.close().await;
    Ok(())
}
