//! Developer commands for the workspace.
//!
//! `cargo run -p xtask -- header` writes `include/consulnative.h` from the C ABI crate's sources with cbindgen;
//! `cargo run -p xtask -- header --check` writes nothing and fails when the committed header differs from what
//! the sources give (CI runs it). The build itself never writes into the source tree.
//!
//! The header carries the library's version as `CONSULNATIVE_VERSION_MAJOR/MINOR/PATCH` (and
//! `CONSULNATIVE_VERSION_STRING`), taken from this crate's version, which is the workspace's
//! (`[workspace.package] version` in the root Cargo.toml, the one number for the crates, the soname, the wheel and
//! the gem): bumping it makes `header --check` fail until the header is regenerated.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo run -p xtask -- header [--check]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["header"] => header(false),
        ["header", "--check"] => header(true),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits inside the workspace").to_path_buf()
}

/// The version macros, placed right after the `#include`s. xtask's version is the workspace's, as is the C ABI
/// crate's (both say `version.workspace = true`), so these are the numbers `consulnative_version()` returns.
fn version_macros() -> String {
    format!(
        "\n/* The version of libconsulnative this header belongs to; consulnative_version() gives the loaded library's. */\n\
         #define CONSULNATIVE_VERSION_MAJOR {}\n\
         #define CONSULNATIVE_VERSION_MINOR {}\n\
         #define CONSULNATIVE_VERSION_PATCH {}\n\
         #define CONSULNATIVE_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    )
}

fn generate(root: &Path) -> Result<String, String> {
    let mut config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).map_err(|e| format!("cbindgen.toml: {e}"))?;
    config.after_includes = Some(version_macros());
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .map_err(|e| format!("cbindgen could not read the C ABI crate: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| format!("cbindgen wrote invalid UTF-8: {e}"))
}

fn header(check: bool) -> ExitCode {
    let root = root();
    let path = root.join("include/consulnative.h");
    let fresh = match generate(&root) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("xtask header: {e}");
            return ExitCode::FAILURE;
        }
    };
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == fresh {
        println!("include/consulnative.h is up to date");
        return ExitCode::SUCCESS;
    }
    if check {
        eprintln!(
            "include/consulnative.h is stale: the C ABI in src/ changed. Run `cargo run -p xtask -- header`, review \
             the diff like an API change, and commit it."
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&path, fresh) {
        eprintln!("xtask header: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote include/consulnative.h");
    ExitCode::SUCCESS
}
