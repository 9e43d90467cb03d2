//! What a terminal shows once a program that drew on it is done.
//!
//! A program run on a pseudo-terminal (uv drawing its progress) writes carriage returns, cursor
//! moves, line erases and colours. Replaying those bytes on a grid of lines gives the text a
//! person sees at the end: the progress lines erased, the messages left. Callers parse that text
//! exactly as they parse the program's captured stderr when it had no terminal.

/// The text left on screen after `bytes` were written to a terminal, one `\n` per line, trailing
/// spaces removed. Colours, cursor visibility and window titles are dropped; erased lines are
/// gone. Absolute cursor positioning is ignored (progress drawing moves relative to the cursor).
pub fn final_text(bytes: &[u8]) -> String {
    let mut screen = Screen::default();
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    let mut params = String::new();
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            screen.control_sequence(&params, c);
                            break;
                        }
                        params.push(c);
                    }
                }
                // Operating-system commands (titles, hyperlinks) end with BEL or ESC `\`.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' => {
                screen.row += 1;
                screen.col = 0;
            }
            '\r' => screen.col = 0,
            '\u{8}' => screen.col = screen.col.saturating_sub(1),
            '\t' => {
                let next = (screen.col / 8 + 1) * 8;
                while screen.col < next {
                    screen.put(' ');
                }
            }
            c if c.is_control() => {}
            c => screen.put(c),
        }
    }
    screen.text()
}

#[derive(Default)]
struct Screen {
    lines: Vec<Vec<char>>,
    row: usize,
    col: usize,
}

impl Screen {
    fn line(&mut self) -> &mut Vec<char> {
        if self.lines.len() <= self.row {
            self.lines.resize(self.row + 1, Vec::new());
        }
        &mut self.lines[self.row]
    }

    fn put(&mut self, c: char) {
        let col = self.col;
        let line = self.line();
        if line.len() <= col {
            line.resize(col, ' ');
            line.push(c);
        } else {
            line[col] = c;
        }
        self.col += 1;
    }

    /// `ESC [ params final`: the moves and erases progress drawing uses; the rest is ignored.
    fn control_sequence(&mut self, params: &str, last: char) {
        let first: Option<usize> = params
            .trim_start_matches('?')
            .split(';')
            .next()
            .and_then(|p| p.parse().ok());
        let count = first.unwrap_or(1).max(1);
        match last {
            'A' => self.row = self.row.saturating_sub(count),
            'B' => self.row += count,
            'C' => self.col += count,
            'D' => self.col = self.col.saturating_sub(count),
            'G' => self.col = count - 1,
            'K' => {
                let col = self.col;
                let line = self.line();
                match first.unwrap_or(0) {
                    0 => line.truncate(col),
                    1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    _ => line.clear(),
                }
            }
            'J' => match first.unwrap_or(0) {
                0 => {
                    let col = self.col;
                    self.line().truncate(col);
                    self.lines.truncate(self.row + 1);
                }
                1 => {
                    for line in self.lines.iter_mut().take(self.row) {
                        line.clear();
                    }
                }
                _ => self.lines.clear(),
            },
            _ => {}
        }
    }

    fn text(&self) -> String {
        let mut lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| l.iter().collect::<String>().trim_end().to_owned())
            .collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::final_text;

    #[test]
    fn plain_lines_pass_through() {
        assert_eq!(
            final_text(b"Resolved 3 packages\r\nerror: boom\r\n"),
            "Resolved 3 packages\nerror: boom\n"
        );
        assert_eq!(final_text(b""), "");
    }

    #[test]
    fn colours_are_dropped() {
        assert_eq!(
            final_text(b"\x1b[1m\x1b[31merror\x1b[0m: no solution\n"),
            "error: no solution\n"
        );
    }

    #[test]
    fn a_redrawn_spinner_leaves_its_last_state() {
        assert_eq!(
            final_text(b"\r\x1b[2K| Resolving\r\x1b[2K/ Resolving\r\x1b[2KResolved 2 packages\n"),
            "Resolved 2 packages\n"
        );
    }

    #[test]
    fn erased_progress_lines_disappear_and_messages_stay() {
        // Two bar lines drawn, then the cursor goes back up, erases them and prints the summary.
        let drawn = b"Using CPython 3.11\n\x1b[?25lBuilding [=> ] 1/2\nfoo-1.0.whl 10 KiB\n\x1b[2A\r\x1b[J\x1b[?25hPrepared 2 packages in 5ms\n";
        assert_eq!(
            final_text(drawn),
            "Using CPython 3.11\nPrepared 2 packages in 5ms\n"
        );
    }

    #[test]
    fn window_titles_and_overwrites() {
        assert_eq!(final_text(b"\x1b]0;title\x07abcdef\r\x1b[3Cxy\n"), "abcxyf\n");
        assert_eq!(final_text(b"abc\x1b[1Gz\x08\x08q\n"), "qbc\n");
    }
}
