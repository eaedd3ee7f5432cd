//! ttrpc framing: a 10-byte header (u32 BE payload length, u32 BE stream id, u8 message type,
//! u8 flags) followed by a protobuf `Request` or `Response`. The server side is a frame
//! reassembler fed by the event loop; the client side (events to containerd) is a blocking call.

use crate::proto::{Request, Response, Status};
use prost::Message;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Header size.
pub const HEADER: usize = 10;
/// Message type of a request.
pub const TYPE_REQUEST: u8 = 1;
/// Message type of a response.
pub const TYPE_RESPONSE: u8 = 2;
/// Largest message accepted (ttrpc's own limit).
pub const MAX_MESSAGE: usize = 4 << 20;

/// One frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// Stream id (odd, chosen by the client).
    pub stream: u32,
    /// Message type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Encodes a frame.
pub fn encode(stream: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(payload);
    out
}

/// Reassembles frames from a byte stream.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any; an error for an oversized frame.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("ttrpc message of {len} bytes exceeds the {MAX_MESSAGE}-byte limit"),
            ));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let stream = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        let kind = self.buf[8];
        let flags = self.buf[9];
        let payload = self.buf[HEADER..HEADER + len].to_vec();
        self.buf.drain(..HEADER + len);
        if self.buf.capacity() > 64 << 10 && self.buf.is_empty() {
            self.buf = Vec::new();
        }
        Ok(Some(Frame {
            stream,
            kind,
            flags,
            payload,
        }))
    }
}

/// A response frame carrying either a message or an error status.
pub fn response(stream: u32, result: Result<Vec<u8>, Status>) -> Vec<u8> {
    let resp = match result {
        Ok(payload) => Response {
            status: None,
            payload,
        },
        Err(status) => Response {
            status: Some(status),
            payload: Vec::new(),
        },
    };
    encode(stream, TYPE_RESPONSE, &resp.encode_to_vec())
}

/// A blocking ttrpc client on one connection (used to forward events to containerd).
pub struct Client {
    stream: UnixStream,
    next_id: u32,
    reader: Reader,
}

impl Client {
    /// Connects to `addr` (`unix://PATH` or a bare path).
    pub fn connect(addr: &str) -> io::Result<Client> {
        let path = addr.strip_prefix("unix://").unwrap_or(addr);
        let stream = UnixStream::connect(path)?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(Client {
            stream,
            next_id: 1,
            reader: Reader::default(),
        })
    }

    /// The connection's descriptor, to poll for responses.
    pub fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.stream)
    }

    /// Sends a request for `service/method` with an encoded message; returns its stream id.
    /// The response is collected by [`Client::responses`].
    pub fn send(&mut self, service: &str, method: &str, payload: Vec<u8>) -> io::Result<u32> {
        let id = self.next_id;
        self.next_id += 2;
        let req = Request {
            service: service.into(),
            method: method.into(),
            payload,
            timeout_nano: 5_000_000_000,
            metadata: Vec::new(),
        };
        self.stream
            .write_all(&encode(id, TYPE_REQUEST, &req.encode_to_vec()))?;
        Ok(id)
    }

    /// The responses readable now, without blocking: (stream id, error message if the call
    /// failed). An error when the connection is closed or broken.
    pub fn responses(&mut self) -> io::Result<Vec<(u32, Option<String>)>> {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: recv(2) into a buffer of its length; MSG_DONTWAIT keeps the socket blocking
            // for `send`.
            let n = unsafe {
                libc::recv(
                    self.fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "ttrpc connection closed",
                ));
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            self.reader.push(&buf[..n as usize]);
        }
        let mut out = Vec::new();
        while let Some(f) = self.reader.next_frame()? {
            if f.kind != TYPE_RESPONSE {
                continue;
            }
            let resp = Response::decode(f.payload.as_slice())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let err = resp
                .status
                .filter(|s| s.code != 0)
                .map(|s| format!("{} (code {})", s.message, s.code));
            out.push((f.stream, err));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let a = encode(1, TYPE_REQUEST, b"hello");
        let b = encode(3, TYPE_REQUEST, b"");
        let all: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut r = Reader::default();
        let mut got = Vec::new();
        for chunk in all.chunks(3) {
            r.push(chunk);
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].stream, 1);
        assert_eq!(got[0].payload, b"hello");
        assert_eq!(got[1].stream, 3);
        assert!(got[1].payload.is_empty());
    }

    #[test]
    fn header_layout_is_big_endian() {
        let f = encode(0x01020304, TYPE_RESPONSE, b"xy");
        assert_eq!(&f[..10], &[0, 0, 0, 2, 1, 2, 3, 4, 2, 0]);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut r = Reader::default();
        r.push(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0]);
        assert!(r.next_frame().is_err());
    }
}
