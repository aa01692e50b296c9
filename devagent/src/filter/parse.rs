//! The bexpr subset's grammar: `or` of `and` of (`not`)* (parenthesized expression | match).

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`.
    Equal,
    /// `!=`.
    NotEqual,
    /// `in` / `contains`.
    In,
    /// `not in` / `not contains`.
    NotIn,
    /// `is empty`.
    IsEmpty,
    /// `is not empty`.
    IsNotEmpty,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// It does not hold.
    Not(Box<Expr>),
    /// A selector compared with a value.
    Match {
        /// Field path.
        selector: Vec<String>,
        /// Comparison.
        op: Op,
        /// The value (empty for the emptiness tests).
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(&'static str),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        match ch {
            _ if ch.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            '[' => {
                out.push(Tok::OpenBracket);
                i += 1
            }
            ']' => {
                out.push(Tok::CloseBracket);
                i += 1
            }
            '=' | '!' => {
                if c.get(i + 1) != Some(&'=') {
                    return Err(format!("unexpected {ch:?} at position {i}"));
                }
                out.push(Tok::Op(if ch == '=' { "==" } else { "!=" }));
                i += 2;
            }
            '"' | '`' => {
                let mut v = String::new();
                i += 1;
                loop {
                    let Some(&x) = c.get(i) else { return Err("unterminated string".to_string()) };
                    i += 1;
                    if x == ch {
                        break;
                    }
                    if x == '\\' && ch == '"' {
                        let Some(&n) = c.get(i) else { return Err("unterminated string".to_string()) };
                        i += 1;
                        v.push(match n {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                    } else {
                        v.push(x);
                    }
                }
                out.push(Tok::Quoted(v));
            }
            _ => {
                let start = i;
                while i < c.len() && !c[i].is_whitespace() && !"()[]=!\"`".contains(c[i]) {
                    i += 1;
                }
                out.push(Tok::Word(c[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x == w)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            if self.next() != Some(Tok::Close) {
                return Err("missing closing parenthesis".to_string());
            }
            return Ok(e);
        }
        self.matcher()
    }
    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Quoted(v)) | Some(Tok::Word(v)) => Ok(v),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
    fn selector(&mut self) -> Result<Vec<String>, String> {
        let Some(Tok::Word(w)) = self.next() else { return Err("expected a selector".to_string()) };
        let mut path: Vec<String> = w.split('.').map(str::to_string).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(format!("invalid selector {w:?}"));
        }
        while self.toks.get(self.pos) == Some(&Tok::OpenBracket) {
            self.pos += 1;
            let Some(Tok::Quoted(k)) = self.next() else { return Err("expected a quoted key after [".to_string()) };
            if self.next() != Some(Tok::CloseBracket) {
                return Err("expected ]".to_string());
            }
            path.push(k);
            // `Meta["a"].b` continues with a dotted word starting with '.'.
            if let Some(Tok::Word(rest)) = self.toks.get(self.pos).cloned() {
                if let Some(r) = rest.strip_prefix('.') {
                    self.pos += 1;
                    path.extend(r.split('.').map(str::to_string));
                }
            }
        }
        Ok(path)
    }
    fn matcher(&mut self) -> Result<Expr, String> {
        // `<Value> in <Selector>` / `<Value> not in <Selector>`.
        let in_at = |p: &P, off: usize| matches!(p.toks.get(p.pos + off), Some(Tok::Word(w)) if w == "in");
        let not_at = |p: &P, off: usize| matches!(p.toks.get(p.pos + off), Some(Tok::Word(w)) if w == "not");
        if in_at(self, 1) || (not_at(self, 1) && in_at(self, 2)) {
            let value = self.value()?;
            let op = if self.peek_word("not") {
                self.pos += 2;
                Op::NotIn
            } else {
                self.pos += 1;
                Op::In
            };
            return Ok(Expr::Match { selector: self.selector()?, op, value });
        }
        let selector = self.selector()?;
        let op = match self.next() {
            Some(Tok::Op("==")) => Op::Equal,
            Some(Tok::Op("!=")) => Op::NotEqual,
            Some(Tok::Word(w)) if w == "contains" => Op::In,
            Some(Tok::Word(w)) if w == "is" => {
                let negated = self.peek_word("not");
                if negated {
                    self.pos += 1;
                }
                if !self.peek_word("empty") {
                    return Err("expected 'empty' after 'is'".to_string());
                }
                self.pos += 1;
                let op = if negated { Op::IsNotEmpty } else { Op::IsEmpty };
                return Ok(Expr::Match { selector, op, value: String::new() });
            }
            Some(Tok::Word(w)) if w == "not" => {
                if self.peek_word("contains") {
                    self.pos += 1;
                    Op::NotIn
                } else if self.peek_word("matches") {
                    return Err(
                        "the 'matches' operator (regular expressions) is not supported by the dev agent".to_string()
                    );
                } else {
                    return Err("expected 'contains' or 'in' after 'not'".to_string());
                }
            }
            Some(Tok::Word(w)) if w == "matches" => {
                return Err("the 'matches' operator (regular expressions) is not supported by the dev agent".into())
            }
            other => return Err(format!("expected an operator after the selector, found {other:?}")),
        };
        Ok(Expr::Match { selector, op, value: self.value()? })
    }
}

/// Parse a whole expression.
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = P { toks: lex(s)?, pos: 0 };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected {:?} after the expression", p.toks[p.pos]));
    }
    Ok(e)
}
