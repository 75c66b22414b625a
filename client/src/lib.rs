//! The chatroom client.
