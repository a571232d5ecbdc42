// An operand's value is the tier's representation: a register index in the
// interpreter, a byte offset in the JIT. Reading it would make the tiers disagree
// (`t.set_i(a, b.0 as i64)` gave 3 interpreted and 24 compiled), so a body may only
// hand operands to the tier. Immediates are the same number in both and stay readable.
use stencils::*;

#[stencil]
pub fn RegisterNumber<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Imm) -> Flow {
    t.set_i(a, b.0 as i64 + c.0);
    Flow::Next
}

#[stencil]
pub fn ArgumentNumber<T: Tier>(t: &mut T, a: RegI, b: ArgsI, c: Callee) -> Flow {
    let first: ArgStart = b.into();
    t.set_i(a, first.__tier_raw() as i64 + c.__tier_raw() as i64);
    Flow::Next
}

#[stencil]
pub fn ForgedRegister<T: Tier>(t: &mut T, a: RegI) -> Flow {
    t.set_i(RegI::__tier_new(0), t.i(a));
    Flow::Next
}

fn main() {
    // Outside a stencil the field is private all the same.
    fn peek(r: RegI) -> usize {
        r.0
    }
    let _ = peek;
}
