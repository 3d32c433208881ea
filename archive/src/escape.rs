//! Text from outside hookrun (a hook's output, a file or archive entry name, a container's log) made safe to show
//! and to store: control characters are escaped, so such text can neither move the cursor, ring the bell, rewrite
//! a line with a carriage return nor start a line of its own that looks like hookrun's ("✓ all services restored").

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character written as an escape: `\n`, `\r`, `\t` and `\\u{..}` for the others (C0,
/// DEL, C1), and the bidirectional overrides (U+202A–U+202E, U+2066–U+2069) that can make text read differently
/// from what it is. Borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn plain_text_is_left_alone() {
        assert_eq!(
            escape_controls("✓ backup 1.2s: données/été"),
            "✓ backup 1.2s: données/été"
        );
    }

    #[test]
    fn a_fake_line_cannot_be_printed() {
        let hostile = "oops\r\x1b[2K\x1b[1A✓ all services restored\x07\n✓ record";
        let shown = escape_controls(hostile);
        assert_eq!(
            shown,
            "oops\\r\\u{1b}[2K\\u{1b}[1A✓ all services restored\\u{7}\\n✓ record"
        );
        assert!(!shown.chars().any(char::is_control), "{shown}");
    }

    #[test]
    fn c1_controls_and_direction_overrides_are_escaped_too() {
        assert_eq!(
            escape_controls("a\u{9b}31mb\u{202e}c\u{7f}"),
            "a\\u{9b}31mb\\u{202e}c\\u{7f}"
        );
    }
}
