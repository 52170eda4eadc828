//! The JSON of a render answer, written straight from the snapshot's records.
//!
//! `serde_json::to_vec(&rendered.into_wire())` first copies the prompt name, the label, the
//! model config (a whole `serde_json::Value` tree) and the messages into a `RenderedPrompt`,
//! then escapes every string byte by byte. On the runtime path that was a tenth of a render
//! that missed the answer cache. This writer borrows everything and escapes strings a word
//! at a time; its output is byte-for-byte what serde_json writes for the wire type, which
//! the tests check on every shape of answer.

use promptstore_types::{ChatMessage, PromptKind, Template};

use super::{Part, RenderOutput, Rendered, VersionEntry};
use crate::template::engine::plain_text_output;

/// The JSON of what a render answer takes from its version alone, made at the version's
/// first render and kept with it (versions are immutable): the model config, and the JSON
/// string of each plain-text template's output. A static system message is most of the
/// bytes of a typical answer; escaping it again on every render, and serialising the model
/// config's value tree, were about half of writing the answer.
#[derive(Debug)]
pub(super) struct VersionJson {
    /// `None` if the model config did not serialise (then every answer tries again and
    /// reports the error).
    model_config: Option<Box<[u8]>>,
    /// Per part of the version: the JSON string of a plain-text part's output.
    plain: Box<[Option<Box<[u8]>>]>,
}

impl VersionJson {
    fn of(version: &VersionEntry) -> Self {
        let plain = version
            .parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let source = version.part_source(index)?;
                matches!(part, Part::Plain(_)).then(|| {
                    let mut out = Vec::new();
                    write_str(&mut out, plain_text_output(source));
                    out.into_boxed_slice()
                })
            })
            .collect();
        VersionJson {
            model_config: serde_json::to_vec(&version.record.model_config)
                .ok()
                .map(Vec::into_boxed_slice),
            plain,
        }
    }

    /// The JSON string of `content` when it is the output of plain-text part `index`.
    fn plain(&self, version: &VersionEntry, index: usize, content: &str) -> Option<&[u8]> {
        let json = self.plain.get(index)?.as_deref()?;
        let source = version.part_source(index)?;
        // Compared, not assumed: a cheap check that keeps this exact whatever produced
        // the output.
        (plain_text_output(source) == content).then_some(json)
    }
}

impl VersionEntry {
    /// The template source of part `index`: the text, or a chat message's content (`None`
    /// for a placeholder or past the end).
    fn part_source(&self, index: usize) -> Option<&str> {
        match &self.record.template {
            Template::Text { text } => (index == 0).then_some(text.as_str()),
            Template::Chat { messages } => match messages.get(index)? {
                ChatMessage::Message { content, .. } => Some(content),
                ChatMessage::Placeholder { .. } => None,
            },
        }
    }
}

impl Rendered {
    /// The wire answer of `render` as JSON: the bytes of
    /// `serde_json::to_vec(&self.clone().into_wire())`, without the copies.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let p = self.resolved.prompt();
        let entry = &*self.resolved.version;
        let v = &entry.record;
        let cached = entry.json.get_or_init(|| VersionJson::of(entry));
        // Messages match the version's parts one to one unless a placeholder expanded.
        let one_to_one = !entry.parts.iter().any(|p| matches!(p, Part::Placeholder));
        let mut out = Vec::with_capacity(256 + output_len(&self.output));
        out.extend_from_slice(b"{\"prompt\":");
        write_str(&mut out, &p.name);
        out.extend_from_slice(match p.kind {
            PromptKind::Text => b",\"type\":\"text\",\"version\":",
            PromptKind::Chat => b",\"type\":\"chat\",\"version\":",
        });
        out.extend_from_slice(itoa::Buffer::new().format(v.number).as_bytes());
        if let Some(label) = &self.resolved.label {
            out.extend_from_slice(b",\"label\":");
            write_str(&mut out, label);
        }
        match &self.output {
            RenderOutput::Text(text) => {
                out.extend_from_slice(b",\"text\":");
                match cached.plain(entry, 0, text) {
                    Some(json) => out.extend_from_slice(json),
                    None => write_str(&mut out, text),
                }
            }
            RenderOutput::Messages(messages) => {
                out.extend_from_slice(b",\"messages\":[");
                for (i, m) in messages.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"{\"role\":");
                    write_str(&mut out, &m.role);
                    out.extend_from_slice(b",\"content\":");
                    match one_to_one
                        .then(|| cached.plain(entry, i, &m.content))
                        .flatten()
                    {
                        Some(json) => out.extend_from_slice(json),
                        None => write_str(&mut out, &m.content),
                    }
                    out.push(b'}');
                }
                out.push(b']');
            }
        }
        out.extend_from_slice(b",\"model_config\":");
        match &cached.model_config {
            Some(json) => out.extend_from_slice(json),
            None => serde_json::to_writer(&mut out, &v.model_config)?,
        }
        if let Some(assignment) = &self.resolved.assignment {
            out.extend_from_slice(b",\"assignment\":");
            serde_json::to_writer(&mut out, &assignment.to_wire())?;
        }
        out.push(b'}');
        Ok(out)
    }
}

fn output_len(output: &RenderOutput) -> usize {
    match output {
        RenderOutput::Text(t) => t.len(),
        RenderOutput::Messages(m) => m.iter().map(|m| m.role.len() + m.content.len() + 24).sum(),
    }
}

/// Eight copies of a byte, one per byte of a word.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

const LOW_BITS: u64 = splat(0x01);
const HIGH_BITS: u64 = splat(0x80);

/// Whether any byte of `word` is a control character (< 0x20), `"` or `\`: the bytes JSON
/// escapes. Exact, not an estimate: `(x - 0x01…) & !x & 0x80…` is non-zero exactly when a
/// byte of `x` is zero, and `x - 0x20…` under the same mask exactly when one is below 0x20.
fn needs_escape(word: u64) -> bool {
    let has_zero = |x: u64| x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS != 0;
    let below_space = word.wrapping_sub(splat(0x20)) & !word & HIGH_BITS != 0;
    below_space || has_zero(word ^ splat(b'"')) || has_zero(word ^ splat(b'\\'))
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it (`\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, other control characters as `\u00XX` in lower-case hex; nothing else).
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `start` is the first byte not yet copied; runs without escapes are copied whole.
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_ne_bytes(word)) {
                i += 8;
                continue;
            }
        }
        // A word with something to escape (or the tail): byte by byte up to the word's end.
        let end = (i + 8).min(bytes.len());
        while i < end {
            let escaped: &[u8] = match bytes[i] {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                c if c < 0x20 => {
                    out.extend_from_slice(&bytes[start..i]);
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(c >> 4)],
                        HEX[usize::from(c & 0xf)],
                    ]);
                    i += 1;
                    start = i;
                    continue;
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(escaped);
            i += 1;
            start = i;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_str(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    fn ours(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, s);
        out
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "exactly8".into(),
            "a \"quoted\" word and a \\ backslash".into(),
            "line\nbreak\r\n\ttab \u{8} \u{c} \u{0} \u{1f} \u{7f} é 日本 🦀".into(),
            "\"\"\"\"\"\"\"\"\"".into(),
        ];
        // Every byte value below 0x80 alone, and at each position of a 16-byte window, so
        // escapes land at every offset inside and across words.
        for b in 0u8..0x80 {
            let c = char::from(b);
            cases.push(c.to_string());
            for at in 0..16 {
                let mut s: Vec<char> = "abcdefghijklmnop".chars().collect();
                s[at] = c;
                cases.push(s.into_iter().collect());
            }
        }
        for s in &cases {
            assert_eq!(ours(s), serde_str(s), "{s:?}");
        }
    }

    #[test]
    fn pseudo_random_strings_match_serde_json() {
        // A fixed linear congruential sequence: reproducible, and dense in the bytes that
        // need escaping.
        let alphabet: Vec<char> = "ab \"\\\n\r\t\u{0}\u{1}\u{1f}é🦀/{}".chars().collect();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for len in 0..200 {
            let s: String = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect();
            assert_eq!(ours(&s), serde_str(&s), "{s:?}");
        }
    }
}
