//! Every error of an assembly or a verification, as one `std::error::Error`: both report
//! all they find, and an embedder wants `?` to work on them.

use crate::asm::AsmError;
use crate::verify::VerifyError;

/// Every error of [`crate::asm::assemble`], in source order. Prints one per line, as
/// `stitch` prints them: `file:line:col: error: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmErrors(pub Vec<AsmError>);

/// Every error of [`crate::Program::verify`], in function and instruction order. Prints
/// one per line as `error: function F, instruction I: reason` (`stitch` puts the file
/// name in front).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyErrors(pub Vec<VerifyError>);

macro_rules! error_list {
    ($list:ident, $item:ident, $prefix:literal) => {
        impl std::ops::Deref for $list {
            type Target = [$item];
            fn deref(&self) -> &[$item] {
                &self.0
            }
        }

        impl IntoIterator for $list {
            type Item = $item;
            type IntoIter = std::vec::IntoIter<$item>;
            fn into_iter(self) -> Self::IntoIter {
                self.0.into_iter()
            }
        }

        impl<'a> IntoIterator for &'a $list {
            type Item = &'a $item;
            type IntoIter = std::slice::Iter<'a, $item>;
            fn into_iter(self) -> Self::IntoIter {
                self.0.iter()
            }
        }

        impl std::fmt::Display for $list {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                for (i, e) in self.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, concat!($prefix, "{}"), e)?;
                }
                Ok(())
            }
        }

        impl std::error::Error for $list {}
    };
}

error_list!(AsmErrors, AsmError, "");
error_list!(VerifyErrors, VerifyError, "error: ");
