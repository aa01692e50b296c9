//! Generates include/consulnative.h from the C ABI (src/ffi) with cbindgen, and gives the shared library a
//! versioned soname. The header is committed; CI regenerates it and fails if it changed.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libconsulnative.so.{major}");
    }

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    match cbindgen::Builder::new().with_crate(&crate_dir).with_config(config).generate() {
        Ok(bindings) => {
            bindings.write_to_file(crate_dir.join("include/consulnative.h"));
        }
        Err(e) => {
            // A parse error here usually means a syntax error the compiler will report better.
            println!("cargo:warning=cbindgen could not generate include/consulnative.h: {e}");
        }
    }
}
