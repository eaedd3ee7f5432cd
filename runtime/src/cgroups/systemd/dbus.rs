//! A minimal D-Bus client: the wire format (little-endian marshalling of the few types systemd's
//! Manager API needs), SASL `AUTH EXTERNAL` over a unix socket, method calls and signal waits.
//! Why not zbus: docs/design.md ("systemd cgroup driver").

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Errors from the D-Bus connection.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    /// Connecting, reading or writing failed.
    #[error("D-Bus {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The peer sent something this client cannot parse, or authentication failed.
    #[error("D-Bus protocol: {0}")]
    Protocol(String),
    /// The method call returned an error.
    #[error("{name}: {message}")]
    Remote {
        /// The D-Bus error name (e.g. `org.freedesktop.systemd1.NoSuchUnit`).
        name: String,
        /// The error's message, if any.
        message: String,
    },
    /// No reply or signal arrived in time.
    #[error("D-Bus: timed out waiting for {0}")]
    Timeout(String),
}

type R<T> = Result<T, DbusError>;

/// A D-Bus value of one of the types berth sends or receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `y`
    Byte(u8),
    /// `b`
    Bool(bool),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `d`
    Double(f64),
    /// `s`
    Str(String),
    /// `o`
    Path(String),
    /// `g`
    Sig(String),
    /// `a…`: the element signature (needed for empty arrays) and the elements.
    Array(String, Vec<Value>),
    /// `(…)`
    Struct(Vec<Value>),
    /// `v`
    Variant(Box<Value>),
}

impl Value {
    /// The value's type signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(e, _) => format!("a{e}"),
            Value::Struct(v) => format!("({})", v.iter().map(Value::signature).collect::<String>()),
            Value::Variant(_) => "v".into(),
        }
    }

    /// The string inside `s`, `o` or `g`, or inside a variant holding one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            Value::Variant(v) => v.as_str(),
            _ => None,
        }
    }

    /// An unsigned integer value (any width), or inside a variant.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Byte(v) => Some(u64::from(*v)),
            Value::U16(v) => Some(u64::from(*v)),
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            Value::Variant(v) => v.as_u64(),
            _ => None,
        }
    }
}

/// Alignment of a type by its signature's first character.
fn align_of(c: u8) -> usize {
    match c {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x t d ( {
    }
}

/// Serialises values into a buffer whose offset 0 is the message start (alignment is absolute).
#[derive(Default)]
pub struct Encoder {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Encoder {
    fn pad(&mut self, a: usize) {
        while !self.buf.len().is_multiple_of(a) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// Appends one value.
    pub fn put(&mut self, v: &Value) -> R<()> {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::U16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::I32(x) => {
                self.pad(4);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::U32(x) => self.u32(*x),
            Value::I64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::U64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::Double(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes())
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(align_of(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for it in items {
                    if it.signature() != *elem {
                        return Err(DbusError::Protocol(format!(
                            "array of {elem} holds a {}",
                            it.signature()
                        )));
                    }
                    self.put(it)?;
                }
                let n = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&n.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f)?;
                }
            }
            Value::Variant(inner) => {
                let sig = inner.signature();
                self.put(&Value::Sig(sig))?;
                self.put(inner)?;
            }
        }
        Ok(())
    }
}

/// Reads values from a message buffer (offset 0 is the message start).
pub struct Decoder<'a> {
    buf: &'a [u8],
    /// Current position.
    pub pos: usize,
    /// Container nesting so far (the spec allows 64 levels; a peer cannot make us recurse more).
    depth: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf` starting at `pos`.
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Decoder { buf, pos, depth: 0 }
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| DbusError::Protocol("message truncated".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn align(&mut self, a: usize) -> R<()> {
        let p = self.pos.div_ceil(a) * a;
        if p > self.buf.len() {
            return Err(DbusError::Protocol("message truncated".into()));
        }
        self.pos = p;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self) -> R<[u8; N]> {
        self.align(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn string(&mut self) -> R<String> {
        let n = u32::from_le_bytes(self.fixed::<4>()?) as usize;
        let s = self.take(n)?;
        self.take(1)?;
        String::from_utf8(s.to_vec()).map_err(|_| DbusError::Protocol("string not UTF-8".into()))
    }

    /// Reads every value of `sig` (a sequence of complete types).
    pub fn get_all(&mut self, sig: &str) -> R<Vec<Value>> {
        let mut out = Vec::new();
        let mut rest = sig;
        while !rest.is_empty() {
            let (one, tail) = split_type(rest)?;
            out.push(self.get(one)?);
            rest = tail;
        }
        Ok(out)
    }

    /// Reads one value of the single complete type `sig`.
    pub fn get(&mut self, sig: &str) -> R<Value> {
        let c = sig.as_bytes().first().copied().unwrap_or(0);
        if matches!(c, b'v' | b'a' | b'(' | b'{') {
            if self.depth >= 64 {
                return Err(DbusError::Protocol("values nested too deeply".into()));
            }
            self.depth += 1;
            let v = self.get_container(sig, c);
            self.depth -= 1;
            return v;
        }
        Ok(match c {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(u32::from_le_bytes(self.fixed::<4>()?) != 0),
            b'n' => Value::I16(i16::from_le_bytes(self.fixed::<2>()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed::<2>()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed::<4>()?)),
            b'u' | b'h' => Value::U32(u32::from_le_bytes(self.fixed::<4>()?)),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed::<8>()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed::<8>()?)),
            b'd' => Value::Double(f64::from_le_bytes(self.fixed::<8>()?)),
            b's' => Value::Str(self.string()?),
            b'o' => Value::Path(self.string()?),
            b'g' => {
                let n = self.take(1)?[0] as usize;
                let s = self.take(n)?;
                self.take(1)?;
                Value::Sig(String::from_utf8_lossy(s).into_owned())
            }
            _ => return Err(DbusError::Protocol(format!("unsupported type {sig:?}"))),
        })
    }

    /// Reads a variant, array, struct or dict entry.
    fn get_container(&mut self, sig: &str, c: u8) -> R<Value> {
        Ok(match c {
            b'v' => {
                let Value::Sig(inner) = self.get("g")? else {
                    return Err(DbusError::Protocol("variant without signature".into()));
                };
                let (one, tail) = split_type(&inner)?;
                if !tail.is_empty() {
                    return Err(DbusError::Protocol(format!("variant signature {inner:?}")));
                }
                Value::Variant(Box::new(self.get(one)?))
            }
            b'a' => {
                let elem = &sig[1..];
                let n = u32::from_le_bytes(self.fixed::<4>()?) as usize;
                self.align(align_of(elem.as_bytes().first().copied().unwrap_or(b'y')))?;
                let end = self.pos + n;
                if end > self.buf.len() {
                    return Err(DbusError::Protocol("array runs past the message".into()));
                }
                let mut items = Vec::new();
                while self.pos < end {
                    let before = self.pos;
                    items.push(self.get(elem)?);
                    if self.pos == before {
                        return Err(DbusError::Protocol(format!("empty array element {elem:?}")));
                    }
                }
                Value::Array(elem.to_string(), items)
            }
            _ => {
                self.align(8)?;
                let inner = sig
                    .get(1..sig.len().saturating_sub(1))
                    .filter(|_| sig.len() >= 2)
                    .ok_or_else(|| DbusError::Protocol(format!("bad signature {sig:?}")))?;
                Value::Struct(self.get_all(inner)?)
            }
        })
    }
}

/// Splits the first complete type off a signature.
fn split_type(sig: &str) -> R<(&str, &str)> {
    let b = sig.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'a' {
        i += 1;
    }
    if i >= b.len() {
        return Err(DbusError::Protocol(format!("bad signature {sig:?}")));
    }
    if b[i] == b'(' || b[i] == b'{' {
        let mut depth = 0;
        while i < b.len() {
            match b[i] {
                b'(' | b'{' => depth += 1,
                b')' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if depth != 0 {
            return Err(DbusError::Protocol(format!("bad signature {sig:?}")));
        }
    }
    Ok((&sig[..=i], &sig[i + 1..]))
}

/// Message types.
const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// A received message (the parts berth looks at).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    /// 1 call, 2 return, 3 error, 4 signal.
    pub kind: u8,
    /// The sender's serial.
    pub serial: u32,
    /// For returns and errors: the call's serial.
    pub reply_serial: u32,
    /// Interface (signals).
    pub interface: String,
    /// Member (signals).
    pub member: String,
    /// Error name.
    pub error_name: String,
    /// Body values.
    pub body: Vec<Value>,
}

/// Builds a method call message.
pub fn encode_call(
    serial: u32,
    dest: &str,
    path: &str,
    iface: &str,
    member: &str,
    args: &[Value],
) -> R<Vec<u8>> {
    let mut body = Encoder::default();
    for a in args {
        body.put(a)?;
    }
    let sig: String = args.iter().map(Value::signature).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(path.into())),
        field(2, Value::Str(iface.into())),
        field(3, Value::Str(member.into())),
        field(6, Value::Str(dest.into())),
    ];
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut m = Encoder::default();
    m.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.put(&Value::Array("(yv)".into(), fields))?;
    m.pad(8);
    m.buf.extend_from_slice(&body.buf);
    Ok(m.buf)
}

/// Length of the whole message from its first 16 bytes.
fn message_len(head: &[u8; 16]) -> R<usize> {
    if head[0] != b'l' && head[0] != b'B' {
        return Err(DbusError::Protocol("bad endianness byte".into()));
    }
    let rd = |b: [u8; 4]| {
        if head[0] == b'l' {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let body = rd([head[4], head[5], head[6], head[7]]) as usize;
    let fields = rd([head[12], head[13], head[14], head[15]]) as usize;
    let total = (16 + fields).div_ceil(8) * 8 + body;
    if total > 128 << 20 {
        return Err(DbusError::Protocol("message too large".into()));
    }
    Ok(total)
}

/// Parses a complete little-endian message.
pub fn decode_message(buf: &[u8]) -> R<Message> {
    if buf.len() < 16 || buf[0] != b'l' {
        return Err(DbusError::Protocol(
            "only little-endian messages are supported".into(),
        ));
    }
    let mut d = Decoder::new(buf, 4);
    let body_len = d.get("u")?.as_u64().unwrap_or(0) as usize;
    let serial = d.get("u")?.as_u64().unwrap_or(0) as u32;
    let Value::Array(_, fields) = d.get("a(yv)")? else {
        return Err(DbusError::Protocol("header fields".into()));
    };
    let mut m = Message {
        kind: buf[1],
        serial,
        ..Default::default()
    };
    let mut sig = String::new();
    for f in fields {
        let Value::Struct(kv) = f else { continue };
        let (Some(Value::Byte(code)), Some(v)) = (kv.first(), kv.get(1)) else {
            continue;
        };
        let s = v.as_str().unwrap_or_default().to_string();
        match code {
            2 => m.interface = s,
            3 => m.member = s,
            4 => m.error_name = s,
            5 => m.reply_serial = v.as_u64().unwrap_or(0) as u32,
            8 => sig = s,
            _ => {}
        }
    }
    d.align(8)?;
    if d.pos + body_len > buf.len() {
        return Err(DbusError::Protocol("body truncated".into()));
    }
    let mut bd = Decoder::new(&buf[..d.pos + body_len], d.pos);
    m.body = bd.get_all(&sig)?;
    Ok(m)
}

/// One connection to a bus or to systemd's private socket.
pub struct Connection {
    sock: UnixStream,
    serial: u32,
    /// Signals received while waiting for replies.
    pending: Vec<Message>,
    /// Whether this is a message bus (needs Hello, routes by destination, AddMatch for signals).
    pub is_bus: bool,
}

impl Connection {
    /// Connects to the unix socket `path` and authenticates with the caller's uid; on a message
    /// bus (`is_bus`) also says Hello.
    pub fn connect(path: &Path, is_bus: bool) -> R<Connection> {
        let io = |what: &str| {
            let what = format!("{what} {}", path.display());
            move |source| DbusError::Io { what, source }
        };
        let sock = UnixStream::connect(path).map_err(io("connect"))?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io("set timeout on"))?;
        let mut c = Connection {
            sock,
            serial: 0,
            pending: Vec::new(),
            is_bus,
        };
        c.auth().map_err(|e| match e {
            DbusError::Io { source, .. } => io("authenticate to")(source),
            e => e,
        })?;
        if is_bus {
            c.call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &[],
            )?;
        }
        Ok(c)
    }

    fn auth(&mut self) -> R<()> {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let io = |source| DbusError::Io {
            what: "auth".into(),
            source,
        };
        // BEGIN is pipelined with AUTH (as sd-bus clients do): systemd's server leaves a first
        // message that arrives in the same read as a separate BEGIN unprocessed until more
        // data comes, so the first call must not follow BEGIN in one packet.
        self.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())
            .map_err(io)?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if self.sock.read(&mut b).map_err(io)? == 0 {
                return Err(DbusError::Protocol("connection closed during auth".into()));
            }
            line.push(b[0]);
            if line.len() > 512 {
                return Err(DbusError::Protocol("auth reply too long".into()));
            }
        }
        if !line.starts_with(b"OK ") {
            return Err(DbusError::Protocol(format!(
                "authentication rejected: {}",
                String::from_utf8_lossy(&line).trim()
            )));
        }
        Ok(())
    }

    fn read_message(&mut self, deadline: Instant) -> R<Message> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DbusError::Timeout("a message".into()));
        }
        let _ = self.sock.set_read_timeout(Some(left));
        let io = |source: std::io::Error| {
            if matches!(
                source.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                DbusError::Timeout("a message".into())
            } else {
                DbusError::Io {
                    what: "read".into(),
                    source,
                }
            }
        };
        let mut head = [0u8; 16];
        self.sock.read_exact(&mut head).map_err(io)?;
        let total = message_len(&head)?;
        let mut buf = head.to_vec();
        buf.resize(total, 0);
        self.sock.read_exact(&mut buf[16..]).map_err(io)?;
        decode_message(&buf)
    }

    /// Calls a method and returns the reply's body; a D-Bus error becomes [`DbusError::Remote`].
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
    ) -> R<Vec<Value>> {
        self.serial += 1;
        let serial = self.serial;
        let msg = encode_call(serial, dest, path, iface, member, args)?;
        self.sock.write_all(&msg).map_err(|source| DbusError::Io {
            what: format!("send {member}"),
            source,
        })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.read_message(deadline).map_err(|e| match e {
                DbusError::Timeout(_) => DbusError::Timeout(format!("the reply to {member}")),
                e => e,
            })?;
            match m.kind {
                METHOD_RETURN if m.reply_serial == serial => return Ok(m.body),
                ERROR if m.reply_serial == serial => {
                    return Err(DbusError::Remote {
                        name: m.error_name,
                        message: m
                            .body
                            .first()
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                }
                SIGNAL => self.pending.push(m),
                _ => {}
            }
        }
    }

    /// Waits for a signal for which `pred` holds (looking at those already received first).
    pub fn wait_signal(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Message) -> bool,
    ) -> R<Message> {
        if let Some(i) = self.pending.iter().position(&pred) {
            return Ok(self.pending.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.read_message(deadline).map_err(|e| match e {
                DbusError::Timeout(_) => DbusError::Timeout(what.to_string()),
                e => e,
            })?;
            if m.kind == SIGNAL {
                if pred(&m) {
                    return Ok(m);
                }
                self.pending.push(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_types() {
        assert_eq!(split_type("sa(sv)").unwrap(), ("s", "a(sv)"));
        assert_eq!(split_type("a(sa(sv))").unwrap(), ("a(sa(sv))", ""));
        assert_eq!(split_type("a{sv}u").unwrap(), ("a{sv}", "u"));
        assert!(split_type("a").is_err());
        assert!(split_type("(s").is_err());
    }

    #[test]
    fn call_encodes_like_the_spec_says() {
        let m = encode_call(
            7,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            &[Value::Str("a.scope".into()), Value::Str("replace".into())],
        )
        .unwrap();
        assert_eq!(&m[..4], &[b'l', 1, 0, 1]);
        let body_len = u32::from_le_bytes(m[4..8].try_into().unwrap());
        // "a.scope": 4 + 7 + 1 = 12, "replace": 4 + 7 + 1 = 12.
        assert_eq!(body_len, 24);
        assert_eq!(u32::from_le_bytes(m[8..12].try_into().unwrap()), 7);
        assert_eq!(message_len(&m[..16].try_into().unwrap()).unwrap(), m.len());
        let back = decode_message(&m).unwrap();
        assert_eq!(back.kind, METHOD_CALL);
        assert_eq!(back.member, "StopUnit");
        assert_eq!(back.interface, "org.freedesktop.systemd1.Manager");
        assert_eq!(
            back.body,
            vec![Value::Str("a.scope".into()), Value::Str("replace".into())]
        );
    }

    #[test]
    fn nested_values_round_trip_with_alignment() {
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::Str("PIDs".into()),
                    Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(42)]))),
                ]),
                Value::Struct(vec![
                    Value::Str("MemoryMax".into()),
                    Value::Variant(Box::new(Value::U64(1 << 30))),
                ]),
                Value::Struct(vec![
                    Value::Str("AllowedCPUs".into()),
                    Value::Variant(Box::new(Value::Array("y".into(), vec![Value::Byte(3)]))),
                ]),
                Value::Struct(vec![
                    Value::Str("DeviceAllow".into()),
                    Value::Variant(Box::new(Value::Array("(ss)".into(), vec![]))),
                ]),
            ],
        );
        let args = vec![
            Value::Str("x.scope".into()),
            Value::Str("fail".into()),
            props,
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let m = encode_call(1, "d", "/p", "i", "StartTransientUnit", &args).unwrap();
        let back = decode_message(&m).unwrap();
        assert_eq!(back.body, args);
        // A variant holding an 8-byte value pads to 8 from the message start.
        let mut e = Encoder::default();
        e.put(&Value::Byte(1)).unwrap();
        e.put(&Value::Variant(Box::new(Value::U64(5)))).unwrap();
        assert_eq!(e.buf.len(), 16);
        assert_eq!(&e.buf[..4], &[1, 1, b't', 0]);
    }

    #[test]
    fn array_element_type_is_checked_and_truncation_is_an_error() {
        let mut e = Encoder::default();
        assert!(e
            .put(&Value::Array("s".into(), vec![Value::U32(1)]))
            .is_err());
        let m = encode_call(1, "d", "/p", "i", "M", &[Value::Str("abc".into())]).unwrap();
        assert!(decode_message(&m[..m.len() - 2]).is_err());
    }

    #[test]
    fn hostile_input_is_an_error_not_a_crash() {
        // Variants nested 100 deep: refused past 64 levels.
        let mut buf = Vec::new();
        for _ in 0..100 {
            buf.extend_from_slice(&[1, b'v', 0]);
        }
        buf.extend_from_slice(&[1, b'y', 0, 7]);
        let e = Decoder::new(&buf, 0).get("v").unwrap_err().to_string();
        assert!(e.contains("nested too deeply"), "{e}");
        // A struct signature with no closing part, an array of empty structs.
        assert!(Decoder::new(&[0; 16], 0).get("(").is_err());
        assert!(
            Decoder::new(&[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0)
                .get("a()")
                .is_err()
        );
        // An array length past the end.
        assert!(Decoder::new(&[0xff, 0xff, 0, 0], 0).get("ay").is_err());
    }

    #[test]
    fn error_and_signal_messages_decode() {
        // A signal JobRemoved(uoss) as systemd sends it.
        let mut body = Encoder::default();
        for v in [
            Value::U32(5),
            Value::Path("/org/freedesktop/systemd1/job/5".into()),
            Value::Str("x.scope".into()),
            Value::Str("done".into()),
        ] {
            body.put(&v).unwrap();
        }
        let field =
            |c: u8, v: Value| Value::Struct(vec![Value::Byte(c), Value::Variant(Box::new(v))]);
        let mut m = Encoder::default();
        m.buf.extend_from_slice(&[b'l', SIGNAL, 0, 1]);
        m.u32(body.buf.len() as u32);
        m.u32(9);
        m.put(&Value::Array(
            "(yv)".into(),
            vec![
                field(2, Value::Str("org.freedesktop.systemd1.Manager".into())),
                field(3, Value::Str("JobRemoved".into())),
                field(8, Value::Sig("uoss".into())),
            ],
        ))
        .unwrap();
        m.pad(8);
        m.buf.extend_from_slice(&body.buf);
        let s = decode_message(&m.buf).unwrap();
        assert_eq!(s.kind, SIGNAL);
        assert_eq!(s.member, "JobRemoved");
        assert_eq!(s.body[3].as_str(), Some("done"));
        assert_eq!(s.body[1].as_str(), Some("/org/freedesktop/systemd1/job/5"));
    }
}
