//! A minimal blocking HTTP/1.1 client: one request per connection, `Connection: close`.
//!
//! The cold-start benchmark polls a process that is still starting, so it needs to see the
//! exact moment the first request succeeds, with no connection pool, retry policy or async
//! runtime of a full client between the measurement and the socket.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer: the status code and the body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Send one request and read the whole answer (the server closes after it).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message)?;
    let mut raw = Vec::with_capacity(4096);
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// Split a complete response into status and body. Only what the benchmarks need: the body
/// is everything after the head (the server closes the connection, so it is complete;
/// chunked bodies keep their chunk framing).
pub fn parse(raw: &[u8]) -> io::Result<Answer> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("the answer has no complete HTTP head"))?;
    let head =
        std::str::from_utf8(&raw[..head_end]).map_err(|_| invalid("the HTTP head is not UTF-8"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(&format!(
            "not an HTTP/1 status line: {status_line:?}"
        )));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(&format!("no status code in {status_line:?}")))?;
    Ok(Answer {
        status,
        body: raw[head_end + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_status_and_body_and_refuses_garbage() {
        let a = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi").unwrap();
        assert_eq!(
            a,
            Answer {
                status: 200,
                body: b"hi".to_vec()
            }
        );
        assert_eq!(
            parse(b"HTTP/1.1 401 Unauthorized\r\n\r\n").unwrap().status,
            401
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[test]
    fn sends_the_request_it_is_given() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.ends_with(b"{}") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "client closed early");
                seen.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 201 Created\r\n\r\nok").unwrap();
            String::from_utf8(seen).unwrap()
        });
        let answer = request(
            addr,
            "POST",
            "/api/v1/render",
            &[("Authorization", "Bearer k")],
            b"{}",
            Duration::from_secs(5),
        )
        .unwrap();
        let seen = server.join().unwrap();
        assert_eq!(
            answer,
            Answer {
                status: 201,
                body: b"ok".to_vec()
            }
        );
        assert!(
            seen.starts_with("POST /api/v1/render HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(seen.contains("Authorization: Bearer k\r\n"), "{seen}");
        assert!(seen.contains("Content-Length: 2\r\n"), "{seen}");
    }
}
