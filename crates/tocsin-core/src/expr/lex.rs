//! A token scan that mirrors evalexpr 11.3.1's tokenizer, run before evalexpr sees the input.
//!
//! evalexpr's parser recurses once per nesting level and its `Node` carries no positions, so
//! this scan does two jobs: it refuses input that is too long or nests too deeply *before*
//! evalexpr can overflow the stack on it, and it records where each token starts so compile
//! errors can point at a byte offset. It must produce evalexpr's token sequence exactly
//! (same merging of `+=`, `&&`, literals, comments): the compiler walks the parsed tree and
//! the token list in step.

use super::ExprError;

/// Longest accepted expression, in bytes.
pub const MAX_LEN: usize = 4096;

/// Deepest accepted nesting, counting open parentheses and pending prefix operators.
pub const MAX_DEPTH: usize = 64;

/// A token as evalexpr sees it, minus parentheses (which leave no node of their own in the
/// tree except a `RootNode`, so the compiler never needs their position).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    /// Byte offset of the token's first character.
    pub offset: usize,
    /// The token's text as written (for string literals, the opening quote only).
    pub text: Box<str>,
}

/// What evalexpr's first tokenizer stage produces, with offsets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Partial {
    /// A single operator character: `+ - * / % ^ = ! > < & |`.
    Char(char),
    LParen,
    RParen,
    Comma,
    Semicolon,
    /// A run of other non-space characters, `start..end`.
    Literal(usize, usize),
    /// A string literal starting at this offset.
    Str,
    Space,
}

/// Tokens of `src` in source order, parentheses excluded.
pub(super) fn scan(src: &str) -> Result<Vec<Token>, ExprError> {
    check_len(src)?;
    let partials = partials(src)?;
    let (tokens, parens) = merge(src, &partials)?;
    check_nesting(&tokens, &parens)?;
    Ok(tokens.into_iter().map(|(t, _)| t).collect())
}

/// Refuses input longer than [`MAX_LEN`] bytes.
pub(super) fn check_len(src: &str) -> Result<(), ExprError> {
    if src.len() > MAX_LEN {
        return Err(ExprError::new(format!(
            "expression is {} bytes long; the limit is {MAX_LEN}",
            src.len()
        ))
        .hint("split it into a recording rule and an alert that reads it"));
    }
    Ok(())
}

/// Mirrors `evalexpr::token::str_to_partial_tokens`, keeping offsets.
fn partials(src: &str) -> Result<Vec<(Partial, usize)>, ExprError> {
    let mut out: Vec<(Partial, usize)> = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some((at, c)) = it.next() {
        let p = match c {
            '"' => {
                skip_string(&mut it, at)?;
                Partial::Str
            }
            '/' if matches!(it.peek(), Some((_, '/'))) => {
                for (_, c) in it.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                continue;
            }
            '/' if matches!(it.peek(), Some((_, '*'))) => {
                it.next();
                let mut closed = false;
                while let Some((_, c)) = it.next() {
                    if c == '*' && matches!(it.peek(), Some((_, '/'))) {
                        it.next();
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(ExprError::new("unterminated `/*` comment").at(at));
                }
                continue;
            }
            '+' | '-' | '*' | '/' | '%' | '^' | '=' | '!' | '>' | '<' | '&' | '|' => Partial::Char(c),
            '(' => Partial::LParen,
            ')' => Partial::RParen,
            ',' => Partial::Comma,
            ';' => Partial::Semicolon,
            c if c.is_whitespace() => Partial::Space,
            c => {
                // evalexpr glues a literal character onto a preceding literal even across a
                // comment (`a/**/b` is `ab`), so extend the last partial whatever lies between.
                let end = at + c.len_utf8();
                if let Some((Partial::Literal(_, e), _)) = out.last_mut() {
                    *e = end;
                    continue;
                }
                Partial::Literal(at, end)
            }
        };
        out.push((p, at));
    }
    Ok(out)
}

/// Skips a string literal whose opening quote is at `open`, checking escapes like evalexpr.
fn skip_string(it: &mut std::iter::Peekable<std::str::CharIndices<'_>>, open: usize) -> Result<(), ExprError> {
    while let Some((at, c)) = it.next() {
        match c {
            '"' => return Ok(()),
            '\\' => match it.next() {
                Some((_, '"' | '\\')) => {}
                _ => {
                    return Err(ExprError::new("invalid escape sequence in string literal")
                        .hint("only \\\" and \\\\ are allowed")
                        .at(at));
                }
            },
            _ => {}
        }
    }
    Err(ExprError::new("unterminated string literal").at(open))
}

/// How a token takes part in nesting.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    /// An operand: identifier, number, boolean or string.
    Value,
    /// `-` or `!` where evalexpr reads it as a prefix operator.
    Prefix,
    Other,
}

/// Mirrors `evalexpr::token::partial_tokens_to_tokens`. Returns the tokens (with their nesting
/// role) and the positions of parentheses as (index into tokens, offset, is_open).
#[allow(clippy::type_complexity)]
fn merge(src: &str, p: &[(Partial, usize)]) -> Result<(Vec<(Token, Role)>, Vec<(usize, usize, bool)>), ExprError> {
    let mut tokens: Vec<(Token, Role)> = Vec::new();
    let mut parens = Vec::new();
    // evalexpr reads `-` as negation unless the previous token is a value or `)`.
    let mut after_value = false;
    let mut i = 0;
    while i < p.len() {
        let (part, at) = p[i];
        let next = p.get(i + 1).map(|x| x.0);
        let third = p.get(i + 2).map(|x| x.0);
        let mut take = 1;
        let mut role = Role::Other;
        let mut value_after = false;
        let text: Box<str> = match part {
            Partial::Space => {
                i += 1;
                continue;
            }
            Partial::LParen | Partial::RParen => {
                let open = part == Partial::LParen;
                parens.push((tokens.len(), at, open));
                after_value = !open;
                i += 1;
                continue;
            }
            Partial::Comma => ",".into(),
            Partial::Semicolon => ";".into(),
            Partial::Str => {
                role = Role::Value;
                value_after = true;
                "\"".into()
            }
            Partial::Literal(s, e) => {
                role = Role::Value;
                value_after = true;
                let lit = &src[s..e];
                // `1e-3` arrives as literal `1e`, `-`, literal `3`; evalexpr re-joins the three
                // when the literal alone is no number and the joined text parses as a float.
                let alone = is_number_or_bool(lit);
                match (next, third) {
                    (Some(Partial::Char(sign @ ('+' | '-'))), Some(Partial::Literal(s3, e3)))
                        if !alone && format!("{lit}{sign}{}", &src[s3..e3]).parse::<f64>().is_ok() =>
                    {
                        take = 3;
                        src[s..e3].into()
                    }
                    _ => lit.into(),
                }
            }
            Partial::Char(c) => {
                let op: String = match (c, next, third) {
                    ('&', Some(Partial::Char('&')), Some(Partial::Char('='))) => "&&=".into(),
                    ('|', Some(Partial::Char('|')), Some(Partial::Char('='))) => "||=".into(),
                    ('&', Some(Partial::Char('&')), _) => "&&".into(),
                    ('|', Some(Partial::Char('|')), _) => "||".into(),
                    ('&' | '|', _, _) => {
                        return Err(ExprError::new(format!("single `{c}` is not an operator"))
                            .hint(if c == '&' {
                                "use `&&` for logical and"
                            } else {
                                "use `||` for logical or"
                            })
                            .at(at));
                    }
                    (c, Some(Partial::Char('=')), _) => format!("{c}="),
                    _ => c.to_string(),
                };
                // Operators are ASCII: one partial per byte.
                take = op.len();
                if op == "!" || (op == "-" && !after_value) {
                    role = Role::Prefix;
                }
                op.into()
            }
        };
        tokens.push((Token { offset: at, text }, role));
        after_value = value_after;
        i += take;
    }
    Ok((tokens, parens))
}

/// Whether evalexpr reads `lit` as an integer, float or boolean rather than an identifier.
pub(super) fn is_number_or_bool(lit: &str) -> bool {
    let int = match lit.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).is_ok(),
        None => lit.parse::<i64>().is_ok(),
    };
    int || lit.parse::<f64>().is_ok() || lit.parse::<bool>().is_ok()
}

/// Rejects unbalanced parentheses and nesting deeper than [`MAX_DEPTH`].
///
/// Depth counts open parentheses plus prefix operators still waiting for their operand,
/// including those waiting outside an open parenthesis (`-(-(-(…`), because evalexpr and the
/// compiler recurse once per each of them.
fn check_nesting(tokens: &[(Token, Role)], parens: &[(usize, usize, bool)]) -> Result<(), ExprError> {
    // Per open parenthesis: its offset and the prefix operators pending when it opened.
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut outer = 0usize;
    let mut run = 0usize;
    let mut paren = parens.iter().peekable();
    let too_deep = |at: usize| {
        ExprError::new(format!("expression nests too deeply (more than {MAX_DEPTH} levels)"))
            .hint("simplify it, or split it into a recording rule and an alert that reads it")
            .at(at)
    };
    for idx in 0..=tokens.len() {
        while let Some(&&(before, at, is_open)) = paren.peek() {
            if before != idx {
                break;
            }
            paren.next();
            if is_open {
                open.push((at, run));
                outer += run + 1;
                run = 0;
            } else {
                let Some((_, pending)) = open.pop() else {
                    return Err(ExprError::new("unmatched `)`").at(at));
                };
                outer -= pending + 1;
                run = 0;
            }
            if outer + run > MAX_DEPTH {
                return Err(too_deep(at));
            }
        }
        let Some((tok, role)) = tokens.get(idx) else {
            break;
        };
        match role {
            Role::Prefix => run += 1,
            // A function name keeps the prefix operators before it pending into its call.
            Role::Value if !matches!(paren.peek(), Some(&&(b, _, true)) if b == idx + 1) => run = 0,
            _ => {}
        }
        if outer + run > MAX_DEPTH {
            return Err(too_deep(tok.offset));
        }
    }
    if let Some(&(at, _)) = open.last() {
        return Err(ExprError::new("unclosed `(`").hint("add the missing `)`").at(at));
    }
    Ok(())
}
