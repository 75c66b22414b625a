//! The chatroom server.
