//! What the tests of the `stitch` binary share: the kernels of `../shared/kernels` and
//! their `; run: ARGS => EXPECTED` lines.

use std::path::{Path, PathBuf};

pub fn kernels_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kernels")
}

/// A kernel and its `; run: ARGS => EXPECTED` lines.
pub struct Kernel {
    pub path: PathBuf,
    pub runs: Vec<(Vec<String>, String)>,
}

pub fn kernels() -> Vec<Kernel> {
    programs_in(&kernels_dir())
}

/// The `.vm3` files of `dir` with their `; run:` lines, by name.
pub fn programs_in(dir: &Path) -> Vec<Kernel> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("kernels directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "vm3"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let source = std::fs::read_to_string(&path).expect("kernel source");
            let runs = source
                .lines()
                .filter_map(|line| line.trim().strip_prefix("; run:"))
                .map(|spec| {
                    let (args, expected) =
                        spec.split_once("=>").expect("`; run: ARGS => EXPECTED`");
                    let args = args
                        .split(',')
                        .map(|a| a.trim().to_string())
                        .filter(|a| !a.is_empty())
                        .collect();
                    (args, expected.trim().to_string())
                })
                .collect();
            Kernel { path, runs }
        })
        .collect()
}
