//! The JSON path (`linux.namespaces[1].type`) of the value at a byte offset of a document, so a
//! parse error can name the field it is about.
//!
//! serde_json reports where it stopped (line and column) but not which field that was. Tracking
//! the path while deserializing (serde_path_to_error) doubles the deserialization code of every
//! config type in the binary and costs on every successful load; this scans the text once, and
//! only after an error.

/// One level of nesting while scanning.
enum Frame {
    /// An object and the key whose value is being read (none before the first key).
    Object(Option<String>),
    /// An array and the index of the element being read.
    Array(usize),
}

/// The byte offset of a 1-based line and column (as serde_json reports them).
pub fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    if line > 1 {
        let mut seen = 1;
        for (i, b) in text.iter().enumerate() {
            if *b == b'\n' {
                seen += 1;
                if seen == line {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    (start + column).min(text.len())
}

/// The path of the value being read just before byte `offset`: keys joined by `.`, array
/// indices as `[i]`, `.` for the document itself.
pub fn path_at(text: &[u8], offset: usize) -> String {
    let end = offset.min(text.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < end {
        match text[i] {
            b'{' => {
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            b'[' => {
                stack.push(Frame::Array(0));
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(n)) => *n += 1,
                Some(Frame::Object(_)) => expect_key = true,
                None => {}
            },
            b':' => expect_key = false,
            b'"' => {
                let (s, close) = read_string(text, i + 1);
                if expect_key {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        *key = Some(s);
                    }
                }
                i = close;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for f in &stack {
        match f {
            Frame::Object(Some(k)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object(None) => {}
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
    }
    if path.is_empty() {
        path.push('.');
    }
    path
}

/// The string starting after its opening quote at `from`, and the index of its closing quote
/// (the text's end when unterminated). Escapes are kept as written.
fn read_string(text: &[u8], from: usize) -> (String, usize) {
    let mut j = from;
    while j < text.len() && text[j] != b'"' {
        if text[j] == b'\\' {
            j += 1;
        }
        j += 1;
    }
    let close = j.min(text.len());
    (
        String::from_utf8_lossy(&text[from.min(close)..close]).into_owned(),
        close,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path serde_json's error position points at, for `T`.
    fn path_of_error<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        let e = serde_json::from_str::<T>(text).unwrap_err();
        path_at(
            text.as_bytes(),
            offset_of(text.as_bytes(), e.line(), e.column()),
        )
    }

    #[test]
    fn names_the_field_of_a_bad_value() {
        use oci_spec::runtime::Spec;
        let t =
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        assert_eq!(path_of_error::<Spec>(t), "linux.namespaces[1].type");
        let t = r#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":"sh"}}"#;
        assert_eq!(path_of_error::<Spec>(t), "process.args");
        let t = "{\"ociVersion\":\"1.0.0\",\n \"process\": {\"cwd\": \"/\",\n  \"user\": {\"uid\": -1}}}";
        assert_eq!(path_of_error::<Spec>(t), "process.user.uid");
    }

    #[test]
    fn a_missing_field_names_its_object() {
        use oci_spec::runtime::Spec;
        let t = r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"path":"/x"}]}}"#;
        assert_eq!(path_of_error::<Spec>(t), "linux.namespaces[0]");
    }

    #[test]
    fn document_level_errors_are_dot() {
        assert_eq!(path_at(b"{", 0), ".");
        assert_eq!(path_at(b"", 5), ".");
        assert_eq!(path_at(br#"{"a":[1,2,{"b":"x\"y"}]}"#, 21), "a[2].b");
        assert_eq!(path_at(br#"{"a":[1,2,{"b":"x\"y"}]}"#, 23), "a");
    }

    #[test]
    fn lines_and_columns_become_offsets() {
        let t = b"ab\ncd\nef";
        assert_eq!(offset_of(t, 1, 2), 2);
        assert_eq!(offset_of(t, 2, 1), 4);
        assert_eq!(offset_of(t, 3, 2), 8);
        assert_eq!(offset_of(t, 9, 9), 8);
    }
}
