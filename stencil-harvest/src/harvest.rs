//! From an object file to checked stencils: the format-independent part.

use std::collections::HashMap;
use std::path::Path;

use object::read::archive::ArchiveFile;
use object::read::{
    Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionIndex, SymbolKind,
};
use object::SectionKind;
use stencil_table::{Hole, HoleValue, OwnedStencil, OwnedStencilSet};

use crate::backend::{backend_for, Addend, Backend, Field, Transfer};
use crate::literal;
use crate::HarvestError;

/// One stencil the harvester must find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StencilSpec {
    /// Symbol without format prefix (`__stencil_AddI64`).
    pub symbol: String,
    /// The stencil is a tail call: its `_JIT_CALLEE` is a continuation and must be a jump.
    pub tail_call: bool,
}

impl StencilSpec {
    pub fn new(symbol: impl Into<String>) -> Self {
        StencilSpec {
            symbol: symbol.into(),
            tail_call: false,
        }
    }

    pub fn tail_call(mut self, tail_call: bool) -> Self {
        self.tail_call = tail_call;
        self
    }
}

/// The vm3 stencils in table order: every opcode in code order, then
/// `stencils::INTERNAL_STENCILS` (each one's variant 0, all operands in the frame), then
/// the other register variants of each of them in the same order (see
/// `stencils::variant`; `jit` finds a variant by this order).
pub fn vm3_stencil_specs() -> Vec<StencilSpec> {
    let bases: Vec<(&str, &stencils::OpInfo)> = stencils::Opcode::ALL
        .iter()
        .map(|op| (op.stencil_symbol(), op.info()))
        .chain(
            stencils::INTERNAL_STENCILS
                .iter()
                .copied()
                .zip(stencils::INTERNAL_INFOS.iter()),
        )
        .collect();
    let mut specs: Vec<StencilSpec> = bases
        .iter()
        .map(|(symbol, info)| StencilSpec::new(*symbol).tail_call(info.is_tail_call()))
        .collect();
    for (symbol, info) in &bases {
        for variant in 1..info.variant_count() {
            let mut suffix = [0u8; 8];
            let len = info.variant_suffix(variant, &mut suffix);
            let suffix = std::str::from_utf8(&suffix[..len]).expect("ASCII suffix");
            specs
                .push(StencilSpec::new(format!("{symbol}{suffix}")).tail_call(info.is_tail_call()));
        }
    }
    specs
}

/// Harvests the vm3 stencils (all opcodes, then the internal stencils) from the
/// stencils crate's object file.
pub fn harvest(object_bytes: &[u8], target: &str) -> Result<OwnedStencilSet, HarvestError> {
    harvest_with(
        object_bytes,
        target,
        &vm3_stencil_specs(),
        stencils::helpers::HELPER_NAMES,
    )
}

/// Harvests the vm3 stencils from the static library [`crate::build`] produced.
pub fn harvest_staticlib(path: &Path, target: &str) -> Result<OwnedStencilSet, HarvestError> {
    harvest_staticlib_with(
        path,
        target,
        "stencils",
        &vm3_stencil_specs(),
        stencils::helpers::HELPER_NAMES,
    )
}

/// [`harvest_staticlib`] for any crate, stencil list and helper list.
pub fn harvest_staticlib_with(
    path: &Path,
    target: &str,
    crate_name: &str,
    specs: &[StencilSpec],
    helpers: &[&str],
) -> Result<OwnedStencilSet, HarvestError> {
    let bytes = std::fs::read(path).map_err(|source| HarvestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let object = stencil_object(&bytes, crate_name)?;
    harvest_with(object, target, specs, helpers)
}

/// The crate's own object in a static library: the one member named
/// `<crate_name>-*.rcgu.o`. Bytes that are not an `ar` archive are returned as they are
/// (an object file given directly).
pub fn stencil_object<'a>(
    archive_bytes: &'a [u8],
    crate_name: &str,
) -> Result<&'a [u8], HarvestError> {
    if !archive_bytes.starts_with(b"!<arch>\n") {
        return Ok(archive_bytes);
    }
    let crate_name = crate_name.replace('-', "_");
    let archive = ArchiveFile::parse(archive_bytes)?;
    let prefix = format!("{crate_name}-");
    let mut found = Vec::new();
    for member in archive.members() {
        let member = member?;
        let name = String::from_utf8_lossy(member.name());
        if name.starts_with(&prefix) && name.ends_with(".rcgu.o") {
            found.push(member.data(archive_bytes)?);
        }
    }
    if found.len() != 1 {
        return Err(HarvestError::StencilObject {
            crate_name,
            found: found.len(),
        });
    }
    Ok(found[0])
}

/// Where a relocation points.
enum RelocTarget<'a> {
    /// An undefined symbol: a hole, a helper, or something forbidden.
    Undefined(&'a str),
    /// Bytes of a section of this object, at this offset within it.
    Section(SectionIndex, u64, Option<&'a str>),
    /// Anything else (absolute symbols, common symbols, ...).
    Other(String),
}

/// A stencil symbol located in its section.
#[derive(Clone, Copy)]
struct Located {
    section: SectionIndex,
    /// Offsets within the section's data.
    start: u64,
    end: u64,
    /// The extent is the symbol's size; otherwise it runs to the next symbol (or the
    /// section's end) and may end in alignment padding.
    sized: bool,
}

/// Harvests `specs` (in this order) from an object file of `target`. Undefined symbols
/// may be `_JIT_*` holes or names in `helpers` (a helper's index in that list is its
/// `HoleValue::Helper` index). Reports every rule violation found, not only the first.
pub fn harvest_with(
    object_bytes: &[u8],
    target: &str,
    specs: &[StencilSpec],
    helpers: &[&str],
) -> Result<OwnedStencilSet, HarvestError> {
    let backend = backend_for(target)?;
    let file = object::File::parse(object_bytes)?;
    backend
        .check_file(&file)
        .map_err(|found| HarvestError::ObjectMismatch {
            target: target.to_string(),
            expected: backend.describe().to_string(),
            found,
        })?;

    // Defined symbols by (unprefixed) name.
    let mut defined = HashMap::new();
    for sym in file.symbols() {
        if sym.is_undefined() || sym.kind() == SymbolKind::Section {
            continue;
        }
        let (Ok(name), Some(section)) = (sym.name(), sym.section_index()) else {
            continue;
        };
        defined
            .entry(backend.symbol_name(name))
            .or_insert((sym.index(), section));
    }

    // Errors keyed by the index of the stencil they concern, reported in table order.
    let mut errors: Vec<(usize, HarvestError)> = Vec::new();
    let mut located: Vec<Option<Located>> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let Some(&(index, section_index)) = defined.get(spec.symbol.as_str()) else {
            errors.push((
                i,
                HarvestError::MissingStencil {
                    stencil: spec.symbol.clone(),
                },
            ));
            located.push(None);
            continue;
        };
        match locate(&file, &*backend, index, section_index) {
            Ok(l) => located.push(Some(l)),
            Err(reason) => {
                errors.push((
                    i,
                    HarvestError::Object(format!("stencil `{}`: {reason}", spec.symbol)),
                ));
                located.push(None);
            }
        }
    }

    // Rule 5: every relocation in a stencil's section lies in a stencil (or, where a
    // section holds more than stencils, in some other function the stencils never copy).
    errors.extend(check_attribution(&file, &*backend, specs, &located));

    let mut stencils = Vec::with_capacity(specs.len());
    for (i, (spec, loc)) in specs.iter().zip(&located).enumerate() {
        let Some(loc) = loc else { continue };
        match harvest_one(&file, &*backend, spec, *loc, helpers) {
            Ok(s) => stencils.push(s),
            Err(e) => errors.extend(e.into_iter().map(|e| (i, e))),
        }
    }

    errors.sort_by_key(|(i, _)| *i);
    let errors = errors.into_iter().map(|(_, e)| e).collect();
    if let Some(e) = HarvestError::from_list(errors) {
        return Err(e);
    }
    Ok(OwnedStencilSet {
        target: target.to_string(),
        stencils,
    })
}

/// Where a function that starts at `start` (an offset in the section) ends when its
/// symbol has no size: at the next symbol that starts a function, or the section's end.
/// This is how a stencil is cut out of a section shared by many functions (Mach-O's
/// `__text`); formats that give sizes (ELF) or a section per function (COFF) need it
/// only as a fallback.
fn end_of_sizeless(
    file: &object::File<'_>,
    backend: &dyn Backend,
    section_index: SectionIndex,
    section_address: u64,
    section_size: u64,
    start: u64,
) -> u64 {
    file.symbols()
        .filter(|s| {
            s.section_index() == Some(section_index)
                && s.kind() != SymbolKind::Section
                && s.name().is_ok_and(|n| backend.splits_code(n))
        })
        .map(|s| s.address().wrapping_sub(section_address))
        .filter(|&a| a > start && a <= section_size)
        .min()
        .unwrap_or(section_size)
}

/// The byte range of a defined symbol within its section. A symbol without a size
/// (Mach-O) extends to the next symbol of its section or the section's end.
fn locate(
    file: &object::File<'_>,
    backend: &dyn Backend,
    index: object::SymbolIndex,
    section_index: SectionIndex,
) -> Result<Located, String> {
    let sym = file.symbol_by_index(index).map_err(|e| e.to_string())?;
    let section = file
        .section_by_index(section_index)
        .map_err(|e| e.to_string())?;
    let start = sym
        .address()
        .checked_sub(section.address())
        .ok_or("symbol before its section")?;
    let section_size = section.size();
    let sized = sym.size() != 0;
    let end = if sized {
        start
            .checked_add(sym.size())
            .ok_or("symbol size overflows")?
    } else {
        end_of_sizeless(
            file,
            backend,
            section_index,
            section.address(),
            section_size,
            start,
        )
    };
    if end > section_size {
        return Err(format!(
            "symbol range {start:#x}..{end:#x} exceeds its section ({section_size:#x} bytes)"
        ));
    }
    Ok(Located {
        section: section_index,
        start,
        end,
        sized,
    })
}

fn check_attribution(
    file: &object::File<'_>,
    backend: &dyn Backend,
    specs: &[StencilSpec],
    located: &[Option<Located>],
) -> Vec<(usize, HarvestError)> {
    let mut errors = Vec::new();
    let mut sections: Vec<SectionIndex> = located.iter().flatten().map(|l| l.section).collect();
    sections.sort_by_key(|s| s.0);
    sections.dedup();
    for section_index in sections {
        let Ok(section) = file.section_by_index(section_index) else {
            continue;
        };
        let stencil_ranges: Vec<(usize, u64, u64)> = located
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                l.filter(|l| l.section == section_index)
                    .map(|l| (i, l.start, l.end))
            })
            .collect();
        // Other functions of the section (Mach-O keeps all code in one `__text`).
        let other_ranges: Vec<(u64, u64)> = file
            .symbols()
            .filter(|s| {
                s.section_index() == Some(section_index)
                    && s.kind() == SymbolKind::Text
                    && s.name().is_ok_and(|n| backend.splits_code(n))
            })
            .map(|s| {
                let start = s.address().wrapping_sub(section.address());
                let end = if s.size() > 0 {
                    start.saturating_add(s.size())
                } else {
                    end_of_sizeless(
                        file,
                        backend,
                        section_index,
                        section.address(),
                        section.size(),
                        start,
                    )
                };
                (start, end)
            })
            .filter(|&(start, end)| {
                !stencil_ranges
                    .iter()
                    .any(|&(_, s, e)| s == start && e == end)
            })
            .collect();
        for (offset, _) in section.relocations() {
            let in_stencil = stencil_ranges
                .iter()
                .any(|&(_, s, e)| (s..e).contains(&offset));
            let in_other = other_ranges.iter().any(|&(s, e)| (s..e).contains(&offset));
            if in_stencil || in_other {
                continue;
            }
            // Name the stencil just before the relocation (the code that may reach it).
            let Some(&(stencil, start, _)) = stencil_ranges
                .iter()
                .filter(|&&(_, s, _)| s <= offset)
                .max_by_key(|&&(_, s, _)| s)
                .or(stencil_ranges.first())
            else {
                continue;
            };
            errors.push((stencil, HarvestError::UnattributedRelocation {
                stencil: specs[stencil].symbol.clone(),
                offset: offset as i64 - start as i64,
                reason: format!(
                    "section `{}` has a relocation at section offset {offset:#x} that lies in no stencil \
                     and no other function; code the stencil reaches past its symbol's end would be lost \
                     (check the symbol's size, and that function splitting / outlining is off)",
                    section.name().unwrap_or("?")
                ),
            }));
        }
    }
    errors
}

fn is_readonly_data(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::ReadOnlyData | SectionKind::ReadOnlyString
    )
}

/// The path in a mangled Rust symbol (`_RNvNtCs..._4core9panicking18panic_bounds_check`
/// -> `core::panicking::panic_bounds_check`), best effort, for messages only.
fn readable_path(name: &str) -> Option<String> {
    let (body, legacy) = if let Some(b) = name.strip_prefix("_ZN") {
        (b, true)
    } else if let Some(b) = name.strip_prefix("_R") {
        (b, false)
    } else {
        return None;
    };
    let bytes = body.as_bytes();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !legacy && c == b'C' && bytes.get(i + 1) == Some(&b's') {
            // Crate root with disambiguator `Cs<base62>_`.
            i += bytes[i..]
                .iter()
                .position(|&b| b == b'_')
                .map_or(bytes.len(), |p| p + 1);
        } else if c.is_ascii_digit() {
            let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            let len: usize = body[i..i + digits].parse().ok()?;
            let start = i + digits + usize::from(!legacy && bytes.get(i + digits) == Some(&b'_'));
            let ident = body.get(start..start.checked_add(len)?)?;
            let hash = legacy && ident.len() == 17 && ident.starts_with('h');
            if !hash {
                parts.push(ident);
            }
            i = start + len;
        } else {
            i += 1;
        }
    }
    (!parts.is_empty()).then(|| parts.join("::"))
}

fn looks_like_panic(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("panic") || lower.contains("unwrap_failed") || lower.contains("expect_failed")
}

/// Advice for a symbol that is neither a hole nor a helper.
fn forbidden_advice(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let base = "stencils may reference only the `_JIT_*` holes and the helpers declared in \
                stencils/src/helpers.rs (`HELPER_NAMES`)";
    let what = readable_path(name)
        .map(|p| format!("(that is `{p}`) "))
        .unwrap_or_default();
    if looks_like_panic(name) {
        format!(
            "{what}a panic path survived (indexing out of bounds, `unwrap`/`expect`, division by zero, \
             slicing, an assertion); make it unreachable or return a trap instead. {base}"
        )
    } else if ["memcpy", "memmove", "memset", "memcmp", "bcmp"]
        .iter()
        .any(|m| lower.trim_start_matches('_') == *m)
    {
        format!(
            "LLVM turned a copy or fill into a call to the C library's `{}`; keep `#![no_builtins]` in the \
             stencil build and avoid large copies/fills of memory. {base}",
            lower.trim_start_matches('_')
        )
    } else if LIBM.contains(&lower.trim_start_matches('_')) {
        format!(
            "`{}` is the C maths library's: a floating-point operation with no instruction on the \
             target (`%` on f64, `.powf()`, `.sin()`, ...) became a call to it. Stencil bodies are \
             `no_std` and must give the same bits on every target, so write the operation with \
             the tier's primitives (`t.sqrt`, `t.fma`) or declare a helper. {base}",
            lower.trim_start_matches('_')
        )
    } else if lower.contains("probestack") || lower.contains("chkstk") {
        format!(
            "{what}a stack probe: the stencil's frame is too large (a big local array?). {base}"
        )
    } else {
        format!(
            "{what}{base}; to call a Rust function from a stencil declare it as a helper, otherwise make sure \
             it is inlined (`#[inline(always)]`)"
        )
    }
}

/// The C maths library's functions LLVM calls for float operations with no instruction.
const LIBM: &[&str] = &[
    "fmod", "fmodf", "pow", "powf", "exp", "expf", "exp2", "log", "logf", "log2", "log10", "sin",
    "sinf", "cos", "cosf", "tan", "atan2", "cbrt", "hypot", "round", "roundf", "trunc", "floor",
    "ceil", "fma", "fmaf",
];

const DATA_WITH_RELOCATIONS: &str = "read-only data that itself needs relocations (a jump table, a table of \
     pointers, a panic's source location) is not supported; build with -Cjump-tables=false and avoid static \
     tables of references";

fn harvest_one(
    file: &object::File<'_>,
    backend: &dyn Backend,
    spec: &StencilSpec,
    loc: Located,
    helpers: &[&str],
) -> Result<OwnedStencil, Vec<HarvestError>> {
    let name = spec.symbol.as_str();
    let object_err = |msg: String| vec![HarvestError::Object(format!("stencil `{name}`: {msg}"))];
    let section = file
        .section_by_index(loc.section)
        .map_err(|e| object_err(e.to_string()))?;
    let section_data = section.data().map_err(|e| object_err(e.to_string()))?;
    let (start, end) = (loc.start as usize, loc.end as usize);
    let Some(code) = section_data.get(start..end) else {
        return Err(object_err(format!(
            "code {start:#x}..{end:#x} outside the section data"
        )));
    };

    let mut errors = Vec::new();
    let mut holes = Vec::new();
    let mut data = Vec::new();
    let mut data_align = 1u32;
    // The pieces of data sections copied: (section, first byte, where in `data`).
    let mut data_sections: Vec<(SectionIndex, u64, u64)> = Vec::new();

    for (section_offset, reloc) in section.relocations() {
        if section_offset < loc.start || section_offset >= loc.end {
            continue;
        }
        let offset = (section_offset - loc.start) as u32;
        let field = Field {
            section: section_data,
            offset: section_offset as usize,
            address: section.address().wrapping_add(section_offset),
        };

        let target = match reloc.target() {
            RelocationTarget::Symbol(i) => match file.symbol_by_index(i) {
                Err(e) => RelocTarget::Other(format!("<bad symbol index: {e}>")),
                Ok(sym) => {
                    let sym_name = sym.name().ok().map(|n| backend.symbol_name(n));
                    if sym.kind() == SymbolKind::Section {
                        match sym.section_index() {
                            Some(si) => RelocTarget::Section(si, 0, None),
                            None => RelocTarget::Other(sym_name.unwrap_or("?").to_string()),
                        }
                    } else if sym.is_undefined() {
                        RelocTarget::Undefined(sym_name.unwrap_or("?"))
                    } else if let Some(si) = sym.section_index() {
                        let base = file.section_by_index(si).map(|s| s.address()).unwrap_or(0);
                        RelocTarget::Section(si, sym.address().wrapping_sub(base), sym_name)
                    } else {
                        RelocTarget::Other(sym_name.unwrap_or("?").to_string())
                    }
                }
            },
            RelocationTarget::Section(si) => RelocTarget::Section(si, 0, None),
            RelocationTarget::Absolute => RelocTarget::Other("<absolute address>".to_string()),
            _ => RelocTarget::Other("<unknown relocation target>".to_string()),
        };
        let target_name = match &target {
            RelocTarget::Undefined(n) => n.to_string(),
            RelocTarget::Section(_, _, Some(n)) => n.to_string(),
            RelocTarget::Section(si, _, None) => file
                .section_by_index(*si)
                .ok()
                .and_then(|s| s.name().ok().map(str::to_string))
                .unwrap_or_default(),
            RelocTarget::Other(n) => n.clone(),
        };

        // What is referenced matters more than how: a call to `fmod` through the GOT is
        // a forbidden symbol (say which, and why it is there) before it is an unusual
        // relocation.
        if let RelocTarget::Undefined(sym) = &target {
            if HoleValue::from_symbol(sym).is_none() && !helpers.contains(sym) {
                errors.push(HarvestError::ForbiddenSymbol {
                    stencil: name.to_string(),
                    offset,
                    symbol: sym.to_string(),
                    advice: forbidden_advice(sym),
                });
                continue;
            }
        }
        let kind = match backend.classify(&reloc, &field) {
            Ok(k) => k,
            Err(relocation) => {
                errors.push(HarvestError::UnsupportedRelocation {
                    stencil: name.to_string(),
                    offset,
                    relocation,
                    symbol: target_name,
                });
                continue;
            }
        };
        if section_offset + kind.width() as u64 > loc.end {
            errors.push(HarvestError::UnattributedRelocation {
                stencil: name.to_string(),
                offset: offset as i64,
                reason: format!(
                    "the {kind:?} field against `{target_name}` runs past the end of the stencil"
                ),
            });
            continue;
        }
        let addend = backend.addend(&reloc, kind, &field);

        let (value, addend) = match (target, addend) {
            (RelocTarget::Undefined(sym), Addend::AtAddress { .. }) => {
                errors.push(HarvestError::Object(format!(
                    "stencil `{name}`, offset {offset:#x}: a relocation against the undefined \
                     symbol `{sym}` that gives its target as an address"
                )));
                continue;
            }
            (RelocTarget::Undefined(sym), Addend::Relative(addend)) => {
                // Neither a hole nor a helper was refused above.
                match HoleValue::from_symbol(sym) {
                    Some(v) => (v, addend),
                    None => match helpers.iter().position(|h| *h == sym) {
                        Some(i) => (HoleValue::Helper(i as u16), addend),
                        None => continue,
                    },
                }
            }
            (RelocTarget::Section(si, within, _), addend) => {
                let target_section = match file.section_by_index(si) {
                    Ok(s) => s,
                    Err(e) => {
                        errors.push(HarvestError::Object(format!("stencil `{name}`: {e}")));
                        continue;
                    }
                };
                let kind_of = target_section.kind();
                if !is_readonly_data(kind_of) {
                    let advice = match kind_of {
                        SectionKind::Text => "code outside the stencil (a function that was not inlined: \
                             mark it `#[inline(always)]` or declare it as a helper)"
                            .to_string(),
                        SectionKind::Data | SectionKind::UninitializedData | SectionKind::ReadOnlyDataWithRel => {
                            "writable data (a `static mut`, an atomic or interior-mutable static); stencils \
                             may only read constants"
                                .to_string()
                        }
                        other => format!("a {other:?} section, which stencils may not use"),
                    };
                    errors.push(HarvestError::ForbiddenSymbol {
                        stencil: name.to_string(),
                        offset,
                        symbol: target_name,
                        advice,
                    });
                    continue;
                }
                if target_section.relocations().next().is_some() {
                    errors.push(HarvestError::ForbiddenSymbol {
                        stencil: name.to_string(),
                        offset,
                        symbol: target_name,
                        advice: DATA_WITH_RELOCATIONS.to_string(),
                    });
                    continue;
                }
                // Mach-O's relocations against a section give the target's address, and
                // with it the offset read; elsewhere that is `within + addend` plus the
                // PC-relative correction the addend has subtracted.
                let (within, addend, referenced) = match addend {
                    Addend::Relative(a) => (
                        within as i64,
                        a,
                        literal::pc_correction(kind, code, offset as usize)
                            .map(|c| within as i64 + a + c),
                    ),
                    Addend::AtAddress { target, addend } => {
                        let within = target.wrapping_sub(target_section.address()) as i64;
                        (within, addend, Some(within))
                    }
                };
                if within < 0 || within as u64 > target_section.size() {
                    errors.push(HarvestError::Object(format!(
                        "stencil `{name}`, offset {offset:#x}: the relocation's target lies \
                         outside `{target_name}`"
                    )));
                    continue;
                }
                // The bytes copied: the one literal read, or else the whole section.
                let piece = literal::entry_size(&target_section)
                    .and_then(|size| literal::entry_at(referenced?, size, target_section.size()));
                let (start, end) = piece.unwrap_or((0, target_section.size()));
                let base = match data_sections
                    .iter()
                    .find(|(s, from, _)| *s == si && *from == start)
                {
                    Some(&(_, _, base)) => base,
                    None => {
                        let bytes = match target_section.data() {
                            Ok(b) => b.get(start as usize..end as usize).unwrap_or(&[]),
                            Err(e) => {
                                errors.push(HarvestError::Object(format!("stencil `{name}`: {e}")));
                                continue;
                            }
                        };
                        let align = match piece {
                            Some((start, end)) => end - start,
                            None => target_section.align(),
                        }
                        .clamp(1, 1 << 16);
                        let base = (data.len() as u64).div_ceil(align) * align;
                        data.resize(base as usize, 0);
                        data.extend_from_slice(bytes);
                        data_align = data_align.max(align as u32);
                        data_sections.push((si, start, base));
                        base
                    }
                };
                holes.push(Hole {
                    offset,
                    kind,
                    value: HoleValue::Data,
                    addend: base as i64 - start as i64 + within + addend,
                });
                continue;
            }
            (RelocTarget::Other(sym), _) => {
                errors.push(HarvestError::ForbiddenSymbol {
                    stencil: name.to_string(),
                    offset,
                    symbol: sym,
                    advice: "not a hole, a helper or read-only data".to_string(),
                });
                continue;
            }
        };
        holes.push(Hole {
            offset,
            kind,
            value,
            addend,
        });
    }
    holes.sort_by_key(|h| h.offset);
    // A stencil cut from a shared section up to the next symbol may end in the
    // alignment padding before that symbol: trim it so the tail jump is the end (and
    // before `refine`, which may move that jump).
    let code = if loc.sized {
        code
    } else {
        &code[..code.len() - backend.trailing_padding(code, &holes).min(code.len())]
    };
    let mut code = code.to_vec();
    if let Err(problems) = backend.refine(&mut code, &mut holes) {
        errors.extend(
            problems
                .into_iter()
                .map(|(offset, reason)| HarvestError::RelocationPair {
                    stencil: name.to_string(),
                    offset,
                    reason,
                }),
        );
    }

    // The backend's list of kinds is what the linker fixtures prove; a hole of a kind
    // missing from it would be patched without that proof.
    for h in &holes {
        if !backend.kinds().contains(&h.kind) {
            errors.push(HarvestError::Object(format!(
                "stencil `{name}`, offset {:#x}: the {} backend made a {:?} hole, a kind \
                 missing from its `kinds()` list (a harvester bug)",
                h.offset,
                backend.describe(),
                h.kind
            )));
        }
    }

    // Rule 1: continuations are jumps.
    for h in &holes {
        let continuation =
            h.value.is_continuation() || (spec.tail_call && h.value == HoleValue::Callee);
        if !continuation {
            continue;
        }
        let how = match backend.transfer(h.kind, &code, h.offset as usize) {
            Transfer::Jump => continue,
            Transfer::Call => "a call".to_string(),
            Transfer::NotABranch => format!(
                "a {:?} relocation that is not a branch (its address is used as data)",
                h.kind
            ),
        };
        errors.push(HarvestError::ContinuationNotJump {
            stencil: name.to_string(),
            offset: h.offset,
            symbol: continuation_symbol(h.value).to_string(),
            how,
        });
    }

    // A panic's source location is data with relocations; the panic is the news.
    if errors.iter().any(
        |e| matches!(e, HarvestError::ForbiddenSymbol { symbol, .. } if looks_like_panic(symbol)),
    ) {
        errors.retain(|e| !matches!(e, HarvestError::ForbiddenSymbol { advice, .. } if advice == DATA_WITH_RELOCATIONS));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let tail_jump = backend.tail_jump(&code, &holes);
    Ok(OwnedStencil {
        name: name.to_string(),
        code,
        data,
        data_align,
        holes,
        tail_jump,
    })
}

fn continuation_symbol(v: HoleValue) -> &'static str {
    match v {
        HoleValue::Continue => "_JIT_CONTINUE",
        HoleValue::Target => "_JIT_TARGET",
        HoleValue::Callee => "_JIT_CALLEE",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::readable_path;

    #[test]
    fn readable_paths() {
        assert_eq!(
            readable_path("_RNvNtCsgEmfK2I1SDS_4core9panicking18panic_bounds_check").as_deref(),
            Some("core::panicking::panic_bounds_check")
        );
        assert_eq!(
            readable_path("_ZN4core9panicking5panic17h0123456789abcdefE").as_deref(),
            Some("core::panicking::panic")
        );
        assert_eq!(readable_path("memcpy"), None);
        for junk in ["_R", "_ZN99", "_R9999999999999999999999a", "_RNv3\u{e9}ab"] {
            let _ = readable_path(junk);
        }
    }
}
