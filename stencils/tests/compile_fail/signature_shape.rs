// `pub fn Name<T: Tier>(t: &mut T, <operands>) -> Flow`: the generic tier, the tier
// parameter first, `Flow` returned.
use stencils::*;

#[stencil]
pub fn NoTierParam<T: Tier>(a: RegI, b: RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn NoParams<T: Tier>() -> Flow {
    Flow::Next
}

#[stencil]
pub fn SharedTier<T: Tier>(t: &T, a: RegI) -> Flow {
    Flow::Return(t.i(a) as u64)
}

#[stencil]
pub fn TierByValue<T: Tier>(t: T, a: RegI) -> Flow {
    Flow::Return(t.i(a) as u64)
}

#[stencil]
pub fn ConcreteTier<T: Tier>(ctx: &mut Ctx, a: RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn ReturnsInt<T: Tier>(t: &mut T, b: RegI) -> i64 {
    t.i(b)
}

#[stencil]
pub fn ReturnsOption<T: Tier>(_t: &mut T) -> Option<Flow> {
    Some(Flow::Next)
}

#[stencil]
pub fn ReturnsNothing<T: Tier>(t: &mut T, a: RegI) {
    t.set_i(a, 0);
}

#[stencil]
pub fn NotGeneric(t: &mut Ctx, a: RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn ExtraGeneric<T: Tier, U: Copy>(t: &mut T, a: RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn ExtraLifetime<'a, T: Tier>(t: &'a mut T, a: RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn OnlyLifetime<'a>(t: &'a mut Ctx, a: RegI) -> Flow {
    Flow::Next
}

fn main() {}
