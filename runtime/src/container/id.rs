//! Container id rules (runc's): letters, digits, `_`, `+`, `-`, `.`; not `.` or `..`.

use super::Error;

/// Checks that `id` can name a container and its state directory.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_ids_and_rejects_paths() {
        for ok in ["a", "web-1", "x_y.z+1", "0123456789abcdef"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
