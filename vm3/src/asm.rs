//! The `.vm3` text format (spec §5): [`assemble`] turns source text into a
//! [`Program`], [`to_text`] and [`format_inst`] print one back.
//!
//! Everything is driven by the opcode table ([`stencils::OPCODES`]): a mnemonic is an
//! [`OpInfo::name`](stencils::OpInfo::name), its operands are written in the order of
//! [`OpInfo::operands`](stencils::OpInfo::operands) and
//! each is parsed by its [`OperandKind`]. Opcodes added to `stencils` assemble without
//! changes here.
//!
//! # Syntax beyond spec §5
//!
//! A few forms exist so that [`to_text`] can print every verified program exactly
//! (register counts, constant pools and NaN payloads included); hand-written files
//! rarely need them:
//!
//! - `regs i64 N, f64 N, cell N` inside a function sets the register count of the banks
//!   it names exactly, instead of inferring it.
//! - `const i64 LIT`, `const f64 LIT`, `const str "LIT"` inside a function appends an
//!   entry to the constant pool as is (no deduplication). A constant operand written as
//!   a literal uses the first identical entry of the pool, or appends one.
//! - `#N` writes a constant or table index directly, `$N` a function index, `@N` a
//!   branch target (an instruction index).
//! - `bits(0x7FF8000000000001)` is the f64 constant with exactly these bits (NaN
//!   payloads); `nan` is `0x7FF8000000000000` and `-nan` is `0xFFF8000000000000`.
//! - A label named `L<n>` bound at instruction `n` is not recorded in
//!   [`Function::labels`], and table names `table0`, `table1`, ... are not recorded in
//!   [`Function::table_names`] when every table has its default name: the printer
//!   produces exactly those names when none are recorded, so printing and assembling
//!   again gives back an equal program.

use crate::program::{Const, Function, Program};
use crate::verify::{bank_article, counts_of, needed_regs, MAX_REGS};
use std::collections::HashMap;
use stencils::{ArgBanks, Bank, ConstKind, Field, Inst, Opcode, OperandKind};

pub use crate::errors::AsmErrors;
pub use crate::text::{format_inst, to_text};

/// An assembly error: `file:line:column: error: message` (1-based line and column, the
/// column of the offending token, counted in characters; for an error inside an
/// instruction, the column of the instruction, as in spec §5).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: error: {message}")]
pub struct AsmError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Assembles `.vm3` source (spec §5). `file_name` is only used in error messages.
/// Returns every error found, in source order. A UTF-8 byte-order mark at the start,
/// which some editors write, is skipped.
pub fn assemble(source: &str, file_name: &str) -> Result<Program, AsmErrors> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut asm = Assembler::new(file_name);
    for (i, raw_line) in source.split('\n').enumerate() {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        asm.line(i + 1, line);
    }
    asm.finish().map_err(AsmErrors)
}

// ---------------------------------------------------------------------------------
// Shared with the printer.

/// The default name of table `i` (used when a function records no table names).
pub(crate) fn default_table_name(i: usize) -> String {
    format!("table{i}")
}

/// The default name of the label at instruction `i`.
pub(crate) fn default_label_name(i: u32) -> String {
    format!("L{i}")
}

/// Whether `name` is [`default_label_name`]`(i)`, without formatting it (a file may
/// define millions of labels).
fn is_default_label_name(name: &str, i: u32) -> bool {
    let Some(digits) = name.strip_prefix('L') else {
        return false;
    };
    // The decimal form `format!` writes: no sign, no leading zero but in "0".
    let canonical = digits == "0" || !digits.starts_with(['+', '0']);
    canonical && digits.parse::<u32>() == Ok(i)
}

/// Whether `s` is an identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Identity of a constant for pooling: f64 by bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PoolKey {
    I64(i64),
    F64(u64),
    Str(Vec<u8>),
}

impl PoolKey {
    pub(crate) fn of(c: &Const) -> PoolKey {
        match c {
            Const::I64(v) => PoolKey::I64(*v),
            Const::F64(v) => PoolKey::F64(v.to_bits()),
            Const::Str(s) => PoolKey::Str(s.clone()),
        }
    }
}

fn parse_bank(s: &str) -> Option<Bank> {
    Bank::ALL.into_iter().find(|b| b.name() == s)
}

fn bank_of_prefix(c: char) -> Option<Bank> {
    Bank::ALL.into_iter().find(|b| b.prefix() == c)
}

/// `iN`, `fN`, `cN`: the bank and the index (saturated at `u32::MAX`).
fn parse_reg(word: &str) -> Option<(Bank, u32)> {
    let mut chars = word.chars();
    let bank = bank_of_prefix(chars.next()?)?;
    let digits = chars.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((bank, digits.parse::<u32>().unwrap_or(u32::MAX)))
}

/// A decimal or `0x` hex integer with an optional sign, saturated to the i128 range.
fn parse_int(word: &str) -> Option<i128> {
    let (neg, rest) = match word.as_bytes().first()? {
        b'-' => (true, &word[1..]),
        b'+' => (false, &word[1..]),
        _ => (false, word),
    };
    let (radix, digits) = match rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        Some(hex) => (16, hex),
        None => (10, rest),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        v = v
            .saturating_mul(radix as i128)
            .saturating_add(c.to_digit(radix).unwrap() as i128);
    }
    Some(if neg { -v } else { v })
}

/// An f64 literal: anything Rust's `f64` parser accepts, or `bits(0x...)`.
fn parse_f64(word: &str) -> Option<f64> {
    if let Some(inner) = word.strip_prefix("bits(").and_then(|w| w.strip_suffix(')')) {
        let hex = inner
            .strip_prefix("0x")
            .or_else(|| inner.strip_prefix("0X"))?;
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok().map(f64::from_bits);
    }
    // Rust also accepts "infinity" and a leading '+'; that is fine.
    word.parse::<f64>().ok()
}

/// Whether a raw index fits `field`: a/b are u16, c is i16.
fn index_fits(field: Field, v: i128) -> bool {
    match field {
        Field::A | Field::B => (0..=u16::MAX as i128).contains(&v),
        Field::C => (0..=i16::MAX as i128).contains(&v),
    }
}

/// A raw value (`#N`, `$N`, `@N`) as the bits of `field`: u16 for a/b, i16 for c
/// (negative values are allowed there, for testing the verifier).
fn raw_field(field: Field, v: i128) -> Option<u16> {
    match field {
        Field::A | Field::B => u16::try_from(v).ok(),
        Field::C => i16::try_from(v).ok().map(|v| v as u16),
    }
}

fn set_field(inst: &mut Inst, field: Field, v: u16) {
    match field {
        Field::A => inst.a = v,
        Field::B => inst.b = v,
        Field::C => inst.c = v as i16,
    }
}

fn field_index(field: Field) -> usize {
    match field {
        Field::A => 0,
        Field::B => 1,
        Field::C => 2,
    }
}

/// The operand shape of an opcode as spec §2 writes it: `iA, iB, @C`.
pub(crate) fn shape(op: Opcode) -> String {
    let mut parts = Vec::new();
    for &(field, kind) in op.info().operands {
        let f = match field {
            Field::A => 'A',
            Field::B => 'B',
            Field::C => 'C',
        };
        match kind {
            OperandKind::Reg(bank) => parts.push(format!("{}{f}", bank.prefix())),
            OperandKind::Imm => parts.push(format!("k{f}")),
            OperandKind::Target => parts.push(format!("@{f}")),
            OperandKind::Const(_) => parts.push(format!("#{f}")),
            OperandKind::Table => parts.push(format!("t{f}")),
            OperandKind::Callee => parts.push(format!("${f}")),
            OperandKind::Args(ArgBanks::I64) => parts.push(format!("i{f}")),
            OperandKind::Args(ArgBanks::F64) => parts.push(format!("f{f}")),
            OperandKind::Args(ArgBanks::Any) => parts.push(f.to_string()),
            OperandKind::Dest => parts.push(format!("x{f}")),
            OperandKind::FmaPair => {
                parts.push("fX".to_string());
                parts.push("fY".to_string());
            }
        }
    }
    parts.join(", ")
}

/// How many operands the text form of `op` writes (FmaF64's pair is two).
fn text_arity(op: Opcode) -> usize {
    op.info()
        .operands
        .iter()
        .map(|(_, k)| if *k == OperandKind::FmaPair { 2 } else { 1 })
        .sum()
}

// ---------------------------------------------------------------------------------
// Scanning one line.

/// A cursor over one line (comment already removed). Positions are byte offsets.
struct Cur<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cur<'a> {
    fn new(s: &'a str) -> Self {
        Cur { s, pos: 0 }
    }
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }
    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.s.len()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn eat_str(&mut self, t: &str) -> bool {
        if self.rest().starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }
    /// An identifier at the cursor, with its position.
    fn ident(&mut self) -> Option<(&'a str, usize)> {
        let rest = self.rest();
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            let ok = if i == 0 {
                c.is_ascii_alphabetic() || c == '_'
            } else {
                c.is_ascii_alphanumeric() || c == '_'
            };
            if !ok {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return None;
        }
        let start = self.pos;
        self.pos += end;
        Some((&self.s[start..start + end], start))
    }
    /// The next whitespace- or comma-delimited word (for error messages).
    fn word(&self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        if end == 0 {
            &rest[..rest.chars().next().map_or(0, |c| c.len_utf8())]
        } else {
            &rest[..end]
        }
    }
}

/// Removes a `;` comment (outside string literals).
fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == ';' {
            return &line[..i];
        }
    }
    line
}

/// One operand as written: its text and byte position.
#[derive(Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    pos: usize,
}

/// A parse error before it gets its file and line: byte position and message.
type LineErr = (usize, String);

/// Splits comma-separated operands from the cursor to the end of the line.
fn split_operands<'a>(cur: &mut Cur<'a>) -> Result<Vec<Tok<'a>>, LineErr> {
    let mut toks = Vec::new();
    if cur.at_end() {
        return Ok(toks);
    }
    loop {
        cur.skip_ws();
        let start = cur.pos;
        match cur.peek() {
            None | Some(',') => return Err((start, "expected an operand".to_string())),
            Some('"') => {
                cur.pos += 1;
                let mut escaped = false;
                let mut closed = false;
                while let Some(c) = cur.peek() {
                    cur.pos += c.len_utf8();
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err((start, "unterminated string literal".to_string()));
                }
            }
            Some(_) => {
                let end = cur
                    .rest()
                    .find(|c: char| c.is_whitespace() || c == ',')
                    .unwrap_or(cur.rest().len());
                cur.pos += end;
            }
        }
        toks.push(Tok {
            text: &cur.s[start..cur.pos],
            pos: start,
        });
        if cur.at_end() {
            return Ok(toks);
        }
        if !cur.eat(',') {
            return Err((
                cur.pos,
                format!(
                    "unexpected `{}`; expected `,` or the end of the line",
                    cur.word()
                ),
            ));
        }
    }
}

/// Decodes a string literal token (quotes included): escapes `\n \t \\ \" \xNN`.
fn parse_string(tok: Tok<'_>) -> Result<Vec<u8>, LineErr> {
    let body = &tok.text[1..tok.text.len() - 1];
    let mut bytes = Vec::with_capacity(body.len());
    let mut iter = body.char_indices();
    while let Some((i, c)) = iter.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let at = tok.pos + 1 + i;
        match iter.next() {
            Some((_, 'n')) => bytes.push(b'\n'),
            Some((_, 't')) => bytes.push(b'\t'),
            Some((_, '\\')) => bytes.push(b'\\'),
            Some((_, '"')) => bytes.push(b'"'),
            Some((_, 'x')) => {
                let hi = iter.next().and_then(|(_, c)| c.to_digit(16));
                let lo = iter.next().and_then(|(_, c)| c.to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => bytes.push((h * 16 + l) as u8),
                    _ => return Err((at, "`\\x` must be followed by two hex digits".to_string())),
                }
            }
            Some((_, other)) => {
                return Err((
                    at,
                    format!("unknown escape `\\{other}` (expected \\n, \\t, \\\\, \\\" or \\xNN)"),
                ))
            }
            None => return Err((at, "unterminated string literal".to_string())),
        }
    }
    // Strings are bytes: `\xNN` may spell any byte, UTF-8 or not.
    Ok(bytes)
}

// ---------------------------------------------------------------------------------
// The assembler.

/// A name to resolve later: a label or table at the function's `end`, a callee at the
/// end of the file.
struct Fixup {
    inst: usize,
    field: Field,
    name: String,
    line: usize,
    col: usize,
}

/// A function being assembled.
struct FuncAsm {
    func: Function,
    /// Line and column of the `func` keyword.
    line: usize,
    col: usize,
    /// Label name → (instruction index, line).
    labels: HashMap<String, (u32, usize)>,
    /// Table name → (index, line).
    tables: HashMap<String, (usize, usize)>,
    pool: HashMap<PoolKey, usize>,
    label_fixups: Vec<Fixup>,
    table_fixups: Vec<Fixup>,
    callee_fixups: Vec<Fixup>,
    /// Per instruction: its line and the column of each field's operand (0 if unused).
    cols: Vec<(usize, [usize; 3])>,
    /// `regs` overrides per bank.
    regs: [Option<u32>; 3],
}

struct Assembler<'f> {
    file: &'f str,
    errors: Vec<AsmError>,
    done: Vec<FuncAsm>,
    open: Option<FuncAsm>,
    /// Function name → (index, line).
    names: HashMap<String, (usize, usize)>,
    mnemonics: HashMap<&'static str, Opcode>,
}

impl<'f> Assembler<'f> {
    fn new(file: &'f str) -> Self {
        let mnemonics = Opcode::ALL.iter().map(|&op| (op.name(), op)).collect();
        Assembler {
            file,
            errors: Vec::new(),
            done: Vec::new(),
            open: None,
            names: HashMap::new(),
            mnemonics,
        }
    }

    fn error(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.errors.push(AsmError {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        });
    }

    /// An error at byte position `pos` of `text` (line `line`).
    fn error_at(&mut self, line: usize, text: &str, pos: usize, message: impl Into<String>) {
        let col = col_of(text, pos);
        self.error(line, col, message);
    }

    fn line(&mut self, no: usize, full: &str) {
        let text = strip_comment(full);
        let mut cur = Cur::new(text);
        if cur.at_end() {
            return;
        }

        // Labels first (`name:`), any number of them.
        loop {
            cur.skip_ws();
            let save = cur.pos;
            let Some((name, pos)) = cur.ident() else {
                break;
            };
            cur.skip_ws();
            if !cur.eat(':') {
                cur.pos = save;
                break;
            }
            self.label(no, text, name, pos);
        }
        if cur.at_end() {
            return;
        }

        let start = cur.pos;
        let Some((word, _)) = cur.ident() else {
            let w = cur.word();
            self.error_at(
                no,
                text,
                start,
                format!("expected an instruction, found `{w}`"),
            );
            return;
        };
        match word {
            "func" => self.func_header(no, text, &mut cur, start),
            "end" => {
                if !cur.at_end() {
                    let w = cur.word();
                    self.error_at(no, text, cur.pos, format!("unexpected `{w}` after `end`"));
                }
                match self.open.take() {
                    Some(f) => self.close(f),
                    None => self.error_at(no, text, start, "`end` outside a function"),
                }
            }
            "table" | "regs" | "const" if self.open.is_none() => {
                self.error_at(no, text, start, format!("`{word}` outside a function"));
            }
            "table" => self.table(no, text, &mut cur),
            "regs" => self.regs(no, text, &mut cur),
            "const" => self.const_directive(no, text, &mut cur),
            _ => self.instruction(no, text, &mut cur, word, start),
        }
    }

    /// Defines label `name` at byte `pos` of line `no`. Its column is counted only for an
    /// error: counting it for every label made a line of many labels quadratic.
    fn label(&mut self, no: usize, text: &str, name: &str, pos: usize) {
        let Some(f) = self.open.as_mut() else {
            self.error_at(no, text, pos, "label outside a function");
            return;
        };
        let index = f.func.code.len() as u32;
        if let Some(&(_, first)) = f.labels.get(name) {
            self.error_at(
                no,
                text,
                pos,
                format!("duplicate label `{name}` (first defined at line {first})"),
            );
            return;
        }
        f.labels.insert(name.to_string(), (index, no));
        if !is_default_label_name(name, index) {
            f.func.labels.push((index, name.to_string()));
        }
    }

    fn func_header(&mut self, no: usize, text: &str, cur: &mut Cur<'_>, start: usize) {
        if let Some(f) = self.open.take() {
            let name = f.func.name.clone();
            self.error(f.line, f.col, format!("function `{name}` has no `end`"));
            self.close(f);
        }
        let mut name = String::new();
        let mut params = Vec::new();
        let mut result = Bank::I64;
        let mut name_pos = 0;
        let header_ok = (|| -> Result<(), LineErr> {
            cur.skip_ws();
            let (n, npos) = cur
                .ident()
                .ok_or((cur.pos, "expected a function name after `func`".to_string()))?;
            name = n.to_string();
            name_pos = npos;
            cur.skip_ws();
            if !cur.eat('(') {
                return Err((
                    cur.pos,
                    format!(
                        "expected `(` after the function name, found `{}`",
                        cur.word()
                    ),
                ));
            }
            cur.skip_ws();
            if !cur.eat(')') {
                loop {
                    cur.skip_ws();
                    let bpos = cur.pos;
                    let b = cur.ident().map(|(b, _)| b).unwrap_or("");
                    let bank = parse_bank(b).ok_or_else(|| {
                        (
                            bpos,
                            format!(
                                "expected a parameter bank (i64, f64 or cell), found `{}`",
                                Cur {
                                    s: cur.s,
                                    pos: bpos
                                }
                                .word()
                            ),
                        )
                    })?;
                    params.push(bank);
                    cur.skip_ws();
                    if cur.eat(')') {
                        break;
                    }
                    if !cur.eat(',') {
                        return Err((
                            cur.pos,
                            format!("expected `,` or `)`, found `{}`", cur.word()),
                        ));
                    }
                }
            }
            cur.skip_ws();
            if !cur.eat_str("->") {
                let found = if cur.at_end() {
                    "the end of the line".to_string()
                } else {
                    format!("`{}`", cur.word())
                };
                return Err((
                    cur.pos,
                    format!("expected `->` and the result bank, found {found}"),
                ));
            }
            cur.skip_ws();
            let bpos = cur.pos;
            let b = cur.ident().map(|(b, _)| b).unwrap_or("");
            result = parse_bank(b).ok_or_else(|| {
                (
                    bpos,
                    format!(
                        "expected a result bank (i64, f64 or cell), found `{}`",
                        Cur {
                            s: cur.s,
                            pos: bpos
                        }
                        .word()
                    ),
                )
            })?;
            if !cur.at_end() {
                return Err((
                    cur.pos,
                    format!("unexpected `{}` after the function header", cur.word()),
                ));
            }
            Ok(())
        })();
        if let Some(&(_, first)) = self.names.get(&name) {
            let msg = format!("duplicate function `{name}` (first defined at line {first})");
            self.error_at(no, text, name_pos, msg);
        }
        if let Err((pos, msg)) = header_ok {
            self.error_at(no, text, pos, msg);
        }
        let per_bank_params = Bank::ALL.map(|b| params.iter().filter(|&&p| p == b).count());
        if per_bank_params.iter().any(|&n| n > MAX_REGS as usize) {
            self.error_at(
                no,
                text,
                start,
                format!("too many parameters of one bank (at most {MAX_REGS})"),
            );
        }
        let index = self.done.len();
        if !name.is_empty() && !self.names.contains_key(&name) {
            self.names.insert(name.clone(), (index, no));
        }
        self.open = Some(FuncAsm {
            func: Function::new(name, params, result),
            line: no,
            col: col_of(text, start),
            labels: HashMap::new(),
            tables: HashMap::new(),
            pool: HashMap::new(),
            label_fixups: Vec::new(),
            table_fixups: Vec::new(),
            callee_fixups: Vec::new(),
            cols: Vec::new(),
            regs: [None; 3],
        });
    }

    /// `table NAME = [v, ...]`
    fn table(&mut self, no: usize, text: &str, cur: &mut Cur<'_>) {
        let parsed = (|| -> Result<(String, usize, Vec<i64>), LineErr> {
            cur.skip_ws();
            let (name, npos) = cur.ident().ok_or((
                cur.pos,
                format!("expected a table name, found `{}`", cur.word()),
            ))?;
            cur.skip_ws();
            if !cur.eat('=') {
                return Err((
                    cur.pos,
                    format!("expected `=` after the table name, found `{}`", cur.word()),
                ));
            }
            cur.skip_ws();
            if !cur.eat('[') {
                return Err((cur.pos, format!("expected `[`, found `{}`", cur.word())));
            }
            let mut values = Vec::new();
            cur.skip_ws();
            if !cur.eat(']') {
                loop {
                    cur.skip_ws();
                    let vpos = cur.pos;
                    let word = entry_word(cur);
                    let v = parse_int(word).ok_or((
                        vpos,
                        format!("expected an integer table entry, found `{word}`"),
                    ))?;
                    let v = i64::try_from(v)
                        .map_err(|_| (vpos, format!("table entry {word} does not fit 64 bits")))?;
                    cur.pos += word.len();
                    values.push(v);
                    cur.skip_ws();
                    if cur.eat(']') {
                        break;
                    }
                    if !cur.eat(',') {
                        let found = if cur.at_end() {
                            "the end of the line".to_string()
                        } else {
                            format!("`{}`", entry_word(cur))
                        };
                        return Err((cur.pos, format!("expected `,` or `]`, found {found}")));
                    }
                }
            }
            if !cur.at_end() {
                return Err((
                    cur.pos,
                    format!("unexpected `{}` after the table", cur.word()),
                ));
            }
            Ok((name.to_string(), npos, values))
        })();
        let (name, npos, values) = match parsed {
            Ok(v) => v,
            Err((pos, msg)) => return self.error_at(no, text, pos, msg),
        };
        let f = self.open.as_mut().unwrap();
        if let Some(&(_, first)) = f.tables.get(&name) {
            let msg = format!("duplicate table `{name}` (first defined at line {first})");
            return self.error_at(no, text, npos, msg);
        }
        f.tables.insert(name.clone(), (f.func.tables.len(), no));
        f.func.tables.push(values);
        f.func.table_names.push(name);
    }

    /// `regs i64 N, f64 N, cell N`
    fn regs(&mut self, no: usize, text: &str, cur: &mut Cur<'_>) {
        let parsed = (|| -> Result<Vec<(Bank, u32)>, LineErr> {
            let mut out = Vec::new();
            loop {
                cur.skip_ws();
                let bpos = cur.pos;
                let b = cur.ident().map(|(b, _)| b).unwrap_or("");
                let bank = parse_bank(b).ok_or_else(|| {
                    (
                        bpos,
                        format!(
                            "expected a bank (i64, f64 or cell), found `{}`",
                            Cur {
                                s: cur.s,
                                pos: bpos
                            }
                            .word()
                        ),
                    )
                })?;
                cur.skip_ws();
                let npos = cur.pos;
                let word = cur.word();
                let n = parse_int(word)
                    .ok_or((npos, format!("expected a register count, found `{word}`")))?;
                if !(0..=MAX_REGS as i128).contains(&n) {
                    return Err((
                        npos,
                        format!("register count {word} is out of range (0..{MAX_REGS})"),
                    ));
                }
                cur.pos += word.len();
                out.push((bank, n as u32));
                if cur.at_end() {
                    return Ok(out);
                }
                if !cur.eat(',') {
                    return Err((
                        cur.pos,
                        format!(
                            "unexpected `{}`; expected `,` or the end of the line",
                            cur.word()
                        ),
                    ));
                }
            }
        })();
        match parsed {
            Ok(items) => {
                let f = self.open.as_mut().unwrap();
                for (bank, n) in items {
                    f.regs[bank as usize] = Some(n);
                }
            }
            Err((pos, msg)) => self.error_at(no, text, pos, msg),
        }
    }

    /// `const KIND LITERAL`
    fn const_directive(&mut self, no: usize, text: &str, cur: &mut Cur<'_>) {
        cur.skip_ws();
        let kpos = cur.pos;
        let kind = match cur.ident().map(|(k, _)| k) {
            Some("i64") => ConstKind::I64,
            Some("f64") => ConstKind::F64,
            Some("str") => ConstKind::Str,
            _ => {
                let w = Cur { s: text, pos: kpos }.word();
                return self.error_at(
                    no,
                    text,
                    kpos,
                    format!("expected a constant kind (i64, f64 or str), found `{w}`"),
                );
            }
        };
        let toks = match split_operands(cur) {
            Ok(t) => t,
            Err((pos, msg)) => return self.error_at(no, text, pos, msg),
        };
        if toks.len() != 1 {
            let pos = toks.get(1).map_or(kpos, |t| t.pos);
            return self.error_at(no, text, pos, "`const` takes one literal");
        }
        let c = match parse_literal(kind, toks[0], "const") {
            Ok(c) => c,
            Err((pos, msg)) => return self.error_at(no, text, pos, msg),
        };
        let f = self.open.as_mut().unwrap();
        let index = f.func.consts.len();
        f.pool.entry(PoolKey::of(&c)).or_insert(index);
        f.func.consts.push(c);
    }

    fn instruction(&mut self, no: usize, text: &str, cur: &mut Cur<'_>, word: &str, start: usize) {
        if self.open.is_none() {
            return self.error_at(no, text, start, "instruction outside a function");
        }
        let Some(&op) = self.mnemonics.get(word) else {
            let suggestion = Opcode::ALL
                .iter()
                .find(|o| o.name().eq_ignore_ascii_case(word));
            let msg = match suggestion {
                Some(o) => format!("unknown mnemonic `{word}` (did you mean `{}`?)", o.name()),
                None => format!("unknown mnemonic `{word}`"),
            };
            return self.error_at(no, text, start, msg);
        };
        let name = op.name();
        let mut inst = Inst::new(op as u8, 0, 0, 0);
        let mut cols = [0usize; 3];
        // Keep instruction indexes right even when the operands are wrong.
        let index = self.open.as_ref().unwrap().func.code.len();

        // Spec §5's example (`prog.vm3:12:5: error: CmpLtI64Br expects an i64 register,
        // found f3`) points at the instruction, and the message names the operand: every
        // error inside an instruction is reported at its mnemonic's column.
        let toks = match split_operands(cur) {
            Ok(t) => t,
            Err((_, msg)) => {
                self.error_at(no, text, start, msg);
                return self.push(inst, no, cols);
            }
        };
        let arity = text_arity(op);
        if toks.len() != arity {
            let msg = format!(
                "{name} expects {} ({}), found {}",
                plural_ops(arity),
                shape(op),
                toks.len()
            );
            self.error_at(no, text, start, msg);
            return self.push(inst, no, cols);
        }

        let mut toks = toks.into_iter();
        for &(field, kind) in op.info().operands {
            let tok = toks.next().unwrap();
            cols[field_index(field)] = col_of(text, start);
            let result = self.operand(
                op, field, kind, tok, &mut toks, &mut inst, index, no, text, start,
            );
            if let Err((_, msg)) = result {
                self.error_at(no, text, start, msg);
            }
        }
        self.push(inst, no, cols);
    }

    fn push(&mut self, inst: Inst, no: usize, cols: [usize; 3]) {
        let f = self.open.as_mut().unwrap();
        f.func.code.push(inst);
        f.cols.push((no, cols));
    }

    /// Parses one operand into `inst` (names to resolve later become fixups).
    #[allow(clippy::too_many_arguments)]
    fn operand<'a>(
        &mut self,
        op: Opcode,
        field: Field,
        kind: OperandKind,
        tok: Tok<'a>,
        rest: &mut impl Iterator<Item = Tok<'a>>,
        inst: &mut Inst,
        index: usize,
        no: usize,
        text: &str,
        inst_start: usize,
    ) -> Result<(), LineErr> {
        let name = op.name();
        let word = tok.text;
        let col = col_of(text, inst_start);
        let f = self.open.as_mut().unwrap();
        let fixup = |name: &str| Fixup {
            inst: index,
            field,
            name: name.to_string(),
            line: no,
            col,
        };
        let value: u16 = match kind {
            OperandKind::Reg(bank) => match parse_reg(word) {
                Some((b, n)) if b == bank => reg_index(n, tok)?,
                _ => {
                    return Err((
                        tok.pos,
                        format!(
                            "{name} expects {} register, found {word}",
                            bank_article(bank)
                        ),
                    ))
                }
            },
            OperandKind::Dest => match parse_reg(word) {
                Some((b, n)) => {
                    inst.flags = b as u8;
                    reg_index(n, tok)?
                }
                None => {
                    return Err((
                        tok.pos,
                        format!(
                            "{name} expects a destination register (iN, fN or cN), found {word}"
                        ),
                    ))
                }
            },
            OperandKind::Args(allowed) => {
                let want = match allowed {
                    ArgBanks::I64 => Some(Bank::I64),
                    ArgBanks::F64 => Some(Bank::F64),
                    ArgBanks::Any => None,
                };
                match (parse_reg(word), want) {
                    (Some((b, n)), Some(w)) if b == w => arg_base(n, tok)?,
                    (Some((_, n)), None) => arg_base(n, tok)?,
                    (_, Some(w)) => {
                        return Err((
                            tok.pos,
                            format!("{name} expects {} register, found {word}", bank_article(w)),
                        ))
                    }
                    (None, None) => {
                        return Err((
                            tok.pos,
                            format!("{name} expects the first argument register, found {word}"),
                        ))
                    }
                }
            }
            OperandKind::FmaPair => {
                let y_tok = rest.next().unwrap();
                let mut pair = [0u16; 2];
                for (i, t) in [tok, y_tok].into_iter().enumerate() {
                    match parse_reg(t.text) {
                        Some((Bank::F64, n)) if n < 256 => pair[i] = n as u16,
                        Some((Bank::F64, _)) => {
                            return Err((
                                t.pos,
                                format!(
                                "{name} packs X and Y into one byte each, so {} must be below f256",
                                t.text
                            ),
                            ))
                        }
                        _ => {
                            return Err((
                                t.pos,
                                format!("{name} expects an f64 register, found {}", t.text),
                            ))
                        }
                    }
                }
                pair[0] | (pair[1] << 8)
            }
            OperandKind::Imm => {
                let v = parse_int(word).ok_or_else(|| {
                    (
                        tok.pos,
                        format!("{name} expects an integer immediate, found {word}"),
                    )
                })?;
                // Every immediate is sign-extended from 16 bits (see `stencils::Imm`).
                let v = i16::try_from(v).map_err(|_| {
                    (
                        tok.pos,
                        format!(
                            "immediate {word} does not fit 16 signed bits ({}..{})",
                            i16::MIN,
                            i16::MAX
                        ),
                    )
                })?;
                v as u16
            }
            OperandKind::Target => {
                if let Some(raw) = word.strip_prefix('@') {
                    raw_operand(field, raw, tok, "branch target")?
                } else if is_ident(word) {
                    f.label_fixups.push(fixup(word));
                    0
                } else {
                    return Err((tok.pos, format!("{name} expects a label, found {word}")));
                }
            }
            OperandKind::Table => {
                if let Some(raw) = word.strip_prefix('#') {
                    raw_operand(field, raw, tok, "table index")?
                } else if is_ident(word) {
                    f.table_fixups.push(fixup(word));
                    0
                } else {
                    return Err((
                        tok.pos,
                        format!("{name} expects a table name, found {word}"),
                    ));
                }
            }
            OperandKind::Callee => {
                if let Some(raw) = word.strip_prefix('$') {
                    raw_operand(field, raw, tok, "function index")?
                } else if is_ident(word) {
                    f.callee_fixups.push(fixup(word));
                    0
                } else {
                    return Err((
                        tok.pos,
                        format!("{name} expects a function name, found {word}"),
                    ));
                }
            }
            OperandKind::Const(ck) => {
                if let Some(raw) = word.strip_prefix('#') {
                    raw_operand(field, raw, tok, "constant index")?
                } else {
                    let c = parse_literal(ck, tok, name)?;
                    let next = f.func.consts.len();
                    let i = *f.pool.entry(PoolKey::of(&c)).or_insert(next);
                    if i == next {
                        f.func.consts.push(c);
                    }
                    if !index_fits(field, i as i128) {
                        return Err((
                            tok.pos,
                            format!("too many constants: index {i} does not fit the 16-bit field"),
                        ));
                    }
                    i as u16
                }
            }
        };
        set_field(inst, field, value);
        Ok(())
    }

    /// At a function's `end`: resolve its labels and tables.
    fn close(&mut self, mut f: FuncAsm) {
        for fx in std::mem::take(&mut f.label_fixups) {
            match f.labels.get(&fx.name) {
                None => self.error(fx.line, fx.col, format!("undefined label `{}`", fx.name)),
                Some(&(target, _)) if !index_fits(fx.field, target as i128) => self.error(
                    fx.line,
                    fx.col,
                    format!("label `{}` is instruction {target}, which does not fit the 16-bit branch field", fx.name),
                ),
                Some(&(target, _)) => set_field(&mut f.func.code[fx.inst], fx.field, target as u16),
            }
        }
        for fx in std::mem::take(&mut f.table_fixups) {
            match f.tables.get(&fx.name) {
                None => self.error(fx.line, fx.col, format!("undefined table `{}`", fx.name)),
                Some(&(t, _)) if !index_fits(fx.field, t as i128) => self.error(
                    fx.line,
                    fx.col,
                    format!(
                        "table `{}` has index {t}, which does not fit the 16-bit field",
                        fx.name
                    ),
                ),
                Some(&(t, _)) => set_field(&mut f.func.code[fx.inst], fx.field, t as u16),
            }
        }
        // Default table names are not recorded (see the module documentation).
        if f.func
            .table_names
            .iter()
            .enumerate()
            .all(|(i, n)| *n == default_table_name(i))
        {
            f.func.table_names.clear();
        }
        self.done.push(f);
    }

    fn finish(mut self) -> Result<Program, Vec<AsmError>> {
        if let Some(f) = self.open.take() {
            let name = f.func.name.clone();
            self.error(f.line, f.col, format!("function `{name}` has no `end`"));
            self.close(f);
        }
        // Callees, now that every function is known.
        let mut done = std::mem::take(&mut self.done);
        for f in &mut done {
            for fx in std::mem::take(&mut f.callee_fixups) {
                match self.names.get(&fx.name) {
                    None => {
                        self.error(fx.line, fx.col, format!("undefined function `{}`", fx.name))
                    }
                    Some(&(i, _)) if !index_fits(fx.field, i as i128) => self.error(
                        fx.line,
                        fx.col,
                        format!(
                            "function `{}` has index {i}, which does not fit the 16-bit field",
                            fx.name
                        ),
                    ),
                    Some(&(i, _)) => set_field(&mut f.func.code[fx.inst], fx.field, i as u16),
                }
            }
        }
        // Argument registers must exist, then the counts.
        let params: Vec<Vec<Bank>> = done.iter().map(|f| f.func.params.clone()).collect();
        let params_of = |i: usize| params.get(i).map(|p| p.as_slice());
        for f in &mut done {
            for (pc, inst) in f.func.code.iter().enumerate() {
                let Some(op) = Opcode::from_u8(inst.code) else {
                    continue;
                };
                let info = op.info();
                let Some((field, _)) = info
                    .operands
                    .iter()
                    .find(|(_, k)| matches!(k, OperandKind::Args(_)))
                else {
                    continue;
                };
                let callee =
                    crate::verify::callee_index(inst, info).and_then(|c| usize::try_from(c).ok());
                let Some(cp) = callee.and_then(params_of) else {
                    continue;
                };
                let base = inst.field(*field) as u32;
                if let Some((k, bank)) = cp
                    .iter()
                    .enumerate()
                    .find(|(k, _)| base + *k as u32 >= MAX_REGS)
                {
                    let (line, cols) = f.cols[pc];
                    let msg = format!(
                        "argument {k} of this call would be register {}{}, past the largest register index {}",
                        bank.prefix(),
                        base + k as u32,
                        MAX_REGS - 1
                    );
                    self.error(line, cols[field_index(*field)], msg);
                }
            }
            let mut need = needed_regs(&f.func, params_of);
            for (bank, n) in f.regs.iter().enumerate() {
                if let Some(n) = n {
                    need[bank] = *n;
                }
            }
            f.func.regs = counts_of(need);
        }
        if !self.errors.is_empty() {
            let mut errors = self.errors;
            errors.sort_by_key(|e| (e.line, e.col));
            return Err(errors);
        }
        Ok(Program {
            functions: done.into_iter().map(|f| f.func).collect(),
        })
    }
}

/// A table entry at the cursor: up to whitespace, `,` or `]` (or the next character).
fn entry_word<'a>(cur: &Cur<'a>) -> &'a str {
    let rest = cur.rest();
    match rest.find(|c: char| c.is_whitespace() || c == ',' || c == ']') {
        Some(0) => &rest[..rest.chars().next().map_or(0, |c| c.len_utf8())],
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// Column (1-based, in characters) of byte position `pos` of `text`.
fn col_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].chars().count() + 1
}

fn plural_ops(n: usize) -> String {
    if n == 1 {
        "1 operand".to_string()
    } else {
        format!("{n} operands")
    }
}

/// A register index used as an operand: its count (index + 1) must fit a bank.
fn reg_index(n: u32, tok: Tok<'_>) -> Result<u16, LineErr> {
    if n >= MAX_REGS {
        return Err((
            tok.pos,
            format!(
                "register {} is out of range (a bank holds at most {MAX_REGS} registers)",
                tok.text
            ),
        ));
    }
    Ok(n as u16)
}

/// A call's first argument register: any u16 (a call without parameters uses none).
fn arg_base(n: u32, tok: Tok<'_>) -> Result<u16, LineErr> {
    u16::try_from(n).map_err(|_| {
        (
            tok.pos,
            format!("register {} does not fit the 16-bit field", tok.text),
        )
    })
}

/// `#N`, `$N`, `@N`: a raw field value.
fn raw_operand(field: Field, raw: &str, tok: Tok<'_>, what: &str) -> Result<u16, LineErr> {
    let v = parse_int(raw)
        .ok_or_else(|| (tok.pos, format!("expected a {what}, found {}", tok.text)))?;
    raw_field(field, v).ok_or_else(|| {
        (
            tok.pos,
            format!("{what} {raw} does not fit the 16-bit field"),
        )
    })
}

/// A constant literal of `kind`.
fn parse_literal(kind: ConstKind, tok: Tok<'_>, name: &str) -> Result<Const, LineErr> {
    let word = tok.text;
    match kind {
        ConstKind::I64 => {
            let v = parse_int(word).ok_or_else(|| {
                (
                    tok.pos,
                    format!("{name} expects an integer constant, found {word}"),
                )
            })?;
            let v = i64::try_from(v).map_err(|_| {
                (
                    tok.pos,
                    format!("integer constant {word} does not fit 64 bits"),
                )
            })?;
            Ok(Const::I64(v))
        }
        ConstKind::F64 => {
            let v = parse_f64(word).ok_or_else(|| {
                (
                    tok.pos,
                    format!("{name} expects a float constant, found {word}"),
                )
            })?;
            Ok(Const::F64(v))
        }
        ConstKind::Str => {
            if word.len() < 2 || !word.starts_with('"') {
                return Err((
                    tok.pos,
                    format!("{name} expects a string literal, found {word}"),
                ));
            }
            Ok(Const::Str(parse_string(tok)?))
        }
    }
}
