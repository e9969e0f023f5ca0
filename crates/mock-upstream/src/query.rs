//! URL query strings: the few parameters the mock reads (Gemini's `alt` and `key`), and the same
//! lookup for tests reading a recorded request.
//!
//! A handful of lines instead of a form-decoding dependency: the mock only ever looks up one name.

/// The first value of parameter `name` in `query` (without the leading `?`), percent-decoded and with
/// `+` read as a space; `None` if absent or not UTF-8 once decoded.
pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key)? == name).then(|| decode(value)).flatten()
    })
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                at += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                at += 1;
            }
            (other, None) => {
                out.push(other);
                at += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_finds_the_first_value_decoded() {
        let check = |query: &str, name: &str, expected: Option<&str>| {
            assert_eq!(
                param(query, name).as_deref(),
                expected,
                "{query:?} {name:?}"
            );
        };
        check("alt=sse&key=k1", "alt", Some("sse"));
        check("alt=sse&key=k1", "key", Some("k1"));
        check("key=a%2Bb+c&key=second", "key", Some("a+b c"));
        check("flag&x=1", "flag", Some(""));
        check("x=1", "key", None);
        check("", "key", None);
        check("key=%zz%4", "key", Some("%zz%4"));
        check("key=%ff", "key", None);
    }
}
