//! `ssh` for tests whose "hosts" are guests: `guest-ssh [ssh options] HOST [COMMAND...]`
//! sends the command and its stdin to the relay of the test (`strata_tests::vm::GuestSsh`,
//! socket in `STRATA_GUEST_SSH`), which runs it in the guest named HOST; prints what it
//! printed and exits with its status, 255 when the relay cannot be reached (as ssh does).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use strata_tests::vm::{GuestSshReply, GuestSshRequest};

/// ssh's options that take an argument.
const WITH_ARG: &str = "bcDEeFIiJLlmOopQRSWwB";

fn fail(why: &str) -> ! {
    eprintln!("guest-ssh: {why}");
    std::process::exit(255)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut no_stdin = false;
    while let Some(a) = args.peek() {
        if a == "--" {
            args.next();
            break;
        }
        let Some(flags) = a.strip_prefix('-') else {
            break;
        };
        let flags = flags.to_string();
        args.next();
        if let Some(first) = flags.chars().next() {
            if WITH_ARG.contains(first) {
                if flags.len() == 1 {
                    args.next();
                }
                continue;
            }
        }
        no_stdin |= flags.contains('n');
    }
    let Some(dest) = args.next() else {
        fail("usage: guest-ssh [options] host [command]")
    };
    let host = dest.rsplit('@').next().unwrap_or(&dest).to_string();
    let command: Vec<String> = args.collect();
    let mut stdin = Vec::new();
    if !no_stdin {
        if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
            fail(&format!("reading stdin: {e}"));
        }
    }
    let socket =
        std::env::var("STRATA_GUEST_SSH").unwrap_or_else(|_| fail("STRATA_GUEST_SSH is not set"));
    let mut conn = UnixStream::connect(&socket)
        .unwrap_or_else(|e| fail(&format!("connect to host {host}: {e}")));
    let req = GuestSshRequest {
        host,
        command: command.join(" "),
        stdin_len: stdin.len(),
    };
    let mut line = serde_json::to_string(&req).expect("a request");
    line.push('\n');
    if let Err(e) = conn
        .write_all(line.as_bytes())
        .and_then(|_| conn.write_all(&stdin))
    {
        fail(&format!("sending: {e}"));
    }
    let mut reader = BufReader::new(conn);
    let mut header = String::new();
    if reader.read_line(&mut header).is_err() || header.is_empty() {
        fail("the relay closed the connection");
    }
    let reply: GuestSshReply =
        serde_json::from_str(&header).unwrap_or_else(|e| fail(&format!("bad reply: {e}")));
    let mut out = vec![0u8; reply.stdout_len];
    let mut err = vec![0u8; reply.stderr_len];
    if reader
        .read_exact(&mut out)
        .and_then(|_| reader.read_exact(&mut err))
        .is_err()
    {
        fail("the relay's answer was cut short");
    }
    let _ = std::io::stdout().write_all(&out);
    let _ = std::io::stderr().write_all(&err);
    std::process::exit(reply.status)
}
