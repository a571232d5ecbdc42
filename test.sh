#!/usr/bin/env bash
# Every test, on a fresh machine: install what the tests need, then run them.
#
#   ./test.sh                 set up, then `cargo test --workspace --release`
#   ./test.sh --setup-only    set up and stop (what .ci/run's first half used to be)
#   ./test.sh -- ARGS...      extra arguments for `cargo test`
#
# What the tests need besides the host toolchain:
# - the rustup targets rust-toolchain.toml lists: the tests harvest the stencils of the
#   macOS and Windows targets, `cargo check` the jit crate for them and cross-build for
#   aarch64 Linux (jit/tests/cross_check.rs, other_formats.rs, tests/tests/aarch64_qemu.rs);
# - Debian packages: qemu-user, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross to link
#   and run the aarch64 build, lld for the linker byte comparisons
#   (jit/tests/linkers.rs), gdb for the GDB JIT interface test (jit/tests/gdb_jit.rs).
# rustup installs into the user's home, so targets are always added; Debian packages
# need root, so without root or password-less sudo the script stops at once and prints
# the command to run.
set -euo pipefail
cd "$(dirname "$0")"

DEBIAN_PACKAGES=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross lld gdb)

setup_only=0
cargo_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --setup-only) setup_only=1 ;;
        --) shift; cargo_args=("$@"); break ;;
        *) echo "test.sh: unknown argument '$1' (see the comment at the top of test.sh)" >&2; exit 2 ;;
    esac
    shift
done

# --- rustup: the pinned toolchain and its targets -------------------------------------
# The toolchain file is the one source: its channel and its `targets = [...]` list.
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
targets=$(sed -n '/^targets *= *\[/,/\]/p' rust-toolchain.toml | grep -o '"[^"]*"' | tr -d '"')
if [ -z "$channel" ] || [ -z "$targets" ]; then
    echo "test.sh: could not read channel and targets from rust-toolchain.toml" >&2
    exit 1
fi
if ! command -v rustup >/dev/null; then
    echo "test.sh: rustup is not installed; install it (https://rustup.rs), then run ./test.sh again" >&2
    exit 1
fi
if ! rustup run "$channel" rustc --version >/dev/null 2>&1; then
    echo "test.sh: installing Rust $channel"
    rustup toolchain install "$channel" --profile minimal --component rustfmt,clippy
fi
installed=$(rustup target list --installed --toolchain "$channel")
missing_targets=()
for target in $targets; do
    grep -qx "$target" <<<"$installed" || missing_targets+=("$target")
done
if [ ${#missing_targets[@]} -gt 0 ]; then
    echo "test.sh: adding rustup targets: ${missing_targets[*]}"
    rustup target add --toolchain "$channel" "${missing_targets[@]}"
fi

# --- Debian packages ------------------------------------------------------------------
missing_packages=()
for package in "${DEBIAN_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing_packages+=("$package")
done
if [ ${#missing_packages[@]} -gt 0 ]; then
    install="apt-get update && apt-get install -y --no-install-recommends ${missing_packages[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo)
    else
        echo "test.sh: the tests need the Debian packages: ${missing_packages[*]}" >&2
        echo "test.sh: this script cannot install them (not root, no password-less sudo); run:" >&2
        echo "    sudo sh -c '$install'" >&2
        exit 1
    fi
    echo "test.sh: installing Debian packages: ${missing_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing_packages[@]}"
fi

[ "$setup_only" -eq 1 ] && exit 0

# --- every test -----------------------------------------------------------------------
cargo --version
rustc --version
exec cargo test --workspace --release "${cargo_args[@]}"
