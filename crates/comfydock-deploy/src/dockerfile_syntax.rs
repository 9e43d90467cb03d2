//! A small Dockerfile reader: instructions with their flags and arguments, stages, and the
//! commands inside `RUN`. Enough to check a generated Dockerfile structurally (tests, and
//! `deploy docker` re-reading what it wrote); not a full BuildKit frontend (no heredocs).

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-case keyword (`RUN`, `COPY`, ...).
    pub keyword: String,
    /// Leading `--flag[=value]` options (`--from=builder`, `--mount=...`).
    pub flags: Vec<String>,
    /// The rest of the line after the flags.
    pub args: String,
    /// 1-based line where the instruction starts.
    pub line: usize,
}

impl Instruction {
    /// The value of `--name=value`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        let prefix = format!("--{name}=");
        self.flags.iter().find_map(|f| f.strip_prefix(prefix.as_str()))
    }

    /// The shell commands of a shell-form `RUN`, split on `;`, `&&` and newlines (quotes respected).
    pub fn shell_commands(&self) -> Vec<String> {
        split_commands(&self.args)
    }
}

/// A `FROM` stage and its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub image: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// Why a Dockerfile could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {reason}")]
pub struct SyntaxError {
    pub line: usize,
    pub reason: String,
}

const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parse into instructions (comments and parser directives dropped).
pub fn parse(text: &str) -> Result<Vec<Instruction>, SyntaxError> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (start, mut body) = current.take().unwrap_or((number, String::new()));
        let (piece, continues) = match trimmed.strip_suffix('\\') {
            Some(p) => (p, true),
            None => (trimmed, false),
        };
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(piece);
        if continues {
            current = Some((start, body));
        } else {
            out.push(instruction(start, &body)?);
        }
    }
    if let Some((start, _)) = current {
        return Err(SyntaxError {
            line: start,
            reason: "the file ends inside a line continuation".into(),
        });
    }
    Ok(out)
}

fn instruction(line: usize, body: &str) -> Result<Instruction, SyntaxError> {
    let body = body.trim();
    let (keyword, mut rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    let keyword = keyword.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(SyntaxError {
            line,
            reason: format!("unknown instruction `{keyword}`"),
        });
    }
    let mut flags = Vec::new();
    loop {
        rest = rest.trim_start();
        if !rest.starts_with("--") {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        flags.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    if rest.trim().is_empty() {
        return Err(SyntaxError {
            line,
            reason: format!("`{keyword}` has no arguments"),
        });
    }
    Ok(Instruction {
        keyword,
        flags,
        args: rest.trim().to_owned(),
        line,
    })
}

/// Group instructions into stages; instructions before the first `FROM` must be `ARG`.
pub fn stages(instructions: &[Instruction]) -> Result<Vec<Stage>, SyntaxError> {
    let mut out: Vec<Stage> = Vec::new();
    for ins in instructions {
        if ins.keyword == "FROM" {
            let words: Vec<&str> = ins.args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_] => None,
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => {
                    return Err(SyntaxError {
                        line: ins.line,
                        reason: format!("malformed FROM `{}`", ins.args),
                    });
                }
            };
            out.push(Stage {
                image: words[0].to_owned(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = out.last_mut() {
            stage.instructions.push(ins.clone());
        } else if ins.keyword != "ARG" {
            return Err(SyntaxError {
                line: ins.line,
                reason: format!("`{}` before the first FROM", ins.keyword),
            });
        }
    }
    Ok(out)
}

/// Split a shell command line on top-level `;`, `&&`, `||` and newlines.
fn split_commands(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    cur.push(c);
                }
                ';' | '\n' => push_command(&mut out, &mut cur),
                '&' | '|' if chars.peek() == Some(&c) => {
                    chars.next();
                    push_command(&mut out, &mut cur);
                }
                _ => cur.push(c),
            },
        }
    }
    push_command(&mut out, &mut cur);
    out
}

fn push_command(out: &mut Vec<String>, cur: &mut String) {
    let c = cur.trim();
    if !c.is_empty() {
        out.push(c.to_owned());
    }
    cur.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instructions_flags_and_stages() {
        let text = "# syntax=docker/dockerfile:1.7\nARG X=1\nFROM a:1 AS one\nRUN --mount=type=cache,target=/c \\\n    set -eux; \\\n    echo 'a;b' && true\n\nFROM one\nCOPY --from=one /x /y\n";
        let ins = parse(text).unwrap();
        assert_eq!(ins.len(), 5);
        assert_eq!(ins[2].flag("mount"), Some("type=cache,target=/c"));
        assert_eq!(ins[2].shell_commands(), ["set -eux", "echo 'a;b'", "true"]);
        let stages = stages(&ins).unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].name.as_deref(), Some("one"));
        assert_eq!(stages[1].instructions[0].flag("from"), Some("one"));
    }

    #[test]
    fn rejects_broken_files() {
        assert!(parse("FROM a\nRUN x \\\n").is_err());
        assert!(parse("FROM a\nBOGUS x\n").is_err());
        assert!(parse("FROM a\nRUN\n").is_err());
        assert!(stages(&parse("RUN x\nFROM a\n").unwrap()).is_err());
    }
}
