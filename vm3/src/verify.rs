pub struct VerifyError; pub fn verify(_: &crate::Program) -> Result<(), Vec<VerifyError>> { Ok(()) }
