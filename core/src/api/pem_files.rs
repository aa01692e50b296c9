//! Keeping a service's certificates in PEM files for programs whose TLS stack is not ours (nginx, haproxy, a JVM,
//! Node): `<dir>/cert.pem` (the leaf followed by its intermediates), `<dir>/key.pem` (the leaf's private key, mode
//! 0600) and `<dir>/roots.pem` (every CA root), rewritten after every leaf rotation and roots change.
//!
//! # Layout, and why a reader never sees a half-written file or a mismatched pair
//!
//! Each write makes a new generation directory, `<dir>/.consulnative-pem-<stamp>/`, and writes the three files in
//! it in full (each fsynced, then the directory), while nothing points at it yet. Then one `rename` of a symlink,
//! `<dir>/.consulnative-pem-current -> .consulnative-pem-<stamp>`, switches to it; `<dir>/cert.pem`, `key.pem` and
//! `roots.pem` are symlinks through that link (`.consulnative-pem-current/cert.pem`, ...). So at every instant the
//! three names resolve to one generation: there is no moment, between two renames, where `cert.pem` is new and
//! `key.pem` still old (the layout Kubernetes uses for secret volumes). The previous generation is kept until the
//! next switch, so a reader that resolved it just before a switch can finish reading it.
//!
//! What no file system can give is a consistent pair to a reader that opens `cert.pem`, and then, later,
//! `key.pem` across a switch. Readers get a matching pair when they read after the change notification (the
//! `on_change` callback, the CLI's reload command or signal: all run after the switch), or when they open both
//! files through the same generation (`realpath` of `cert.pem`, then its directory's `key.pem`).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use super::service::Service;
use crate::error::{Error, Result};
use crate::log::{info, warning};
use crate::tls::{Leaf, Roots};
use crate::watch::{ServiceCerts, ServiceEvent};

/// The file names the writer keeps in its directory.
pub const PEM_FILE_NAMES: [&str; 3] = ["cert.pem", "key.pem", "roots.pem"];
const GENERATION_PREFIX: &str = ".consulnative-pem-";
const CURRENT_LINK: &str = ".consulnative-pem-current";

/// What one write of the PEM files put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFilesWrite {
    /// The directory holding `cert.pem`, `key.pem` and `roots.pem`.
    pub dir: PathBuf,
    /// The generation directory the three names now resolve to.
    pub generation: PathBuf,
    /// The SPIFFE URI of the leaf in `cert.pem`.
    pub spiffe_id: String,
    /// The colon-hex serial of the leaf in `cert.pem`.
    pub leaf_serial: String,
    /// How many root certificates `roots.pem` holds.
    pub roots: usize,
}

/// Told after every write of the PEM files (`Ok`) or every failed write (`Err`: the previous files stay in
/// place). Runs on the thread that wrote: the caller's for the first write, a library watch thread afterwards.
pub type PemFilesCallback = Arc<dyn Fn(std::result::Result<&PemFilesWrite, &Error>) + Send + Sync>;

/// The state of one directory being kept fresh.
struct Writer {
    dir: PathBuf,
    on_change: Option<PemFilesCallback>,
    /// The leaf and roots last written (compared by pointer: the watches replace them on every change).
    last: Mutex<Option<(Arc<Leaf>, Arc<Roots>)>>,
}

static STAMP: AtomicU64 = AtomicU64::new(0);

impl Service {
    /// Keeps `<dir>/cert.pem`, `<dir>/key.pem` (mode 0600) and `<dir>/roots.pem` fresh for this service (see the
    /// module documentation for the layout and its guarantees). Creates `dir` if needed. Writes at once when the
    /// service is ready (an error then is returned), otherwise as soon as it is; then after every leaf rotation and
    /// roots change. `on_change` is told about every write, the first included, and every failed one. Returns an id
    /// for [`Service::remove_event_callback`], which stops the rewrites (the files stay).
    pub fn write_pem_files(&self, dir: &Path, on_change: Option<PemFilesCallback>) -> Result<u64> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| Error::io(&format!("cannot create the PEM directory {}", dir.display()), &e))?;
        let writer = Arc::new(Writer { dir: dir.to_path_buf(), on_change, last: Mutex::new(None) });
        let certs: Weak<ServiceCerts> = Arc::downgrade(self.certs());
        let w = writer.clone();
        let id = self.on_event(Arc::new(move |event| {
            if matches!(event, ServiceEvent::LeafRotated | ServiceEvent::RootsChanged) {
                if let Some(certs) = certs.upgrade() {
                    let _ = w.refresh(&certs);
                }
            }
        }));
        if let Err(e) = writer.refresh(self.certs()) {
            self.remove_event_callback(id);
            return Err(e);
        }
        Ok(id)
    }
}

impl Writer {
    /// Writes the current certificates if the service is ready and they differ from the last written.
    fn refresh(&self, certs: &ServiceCerts) -> Result<()> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let Ok((leaf, roots)) = certs.readiness() else {
            return Ok(()); // written once ready
        };
        if last.as_ref().is_some_and(|(l, r)| Arc::ptr_eq(l, &leaf) && Arc::ptr_eq(r, &roots)) {
            return Ok(());
        }
        let outcome = if on_disk(&self.dir, &leaf, &roots) {
            Ok(None)
        } else {
            write_generation(&self.dir, &leaf.cert_pem, &leaf.key_pem, &roots.pem).map(Some)
        };
        match outcome {
            Ok(generation) => {
                *last = Some((leaf.clone(), roots.clone()));
                drop(last);
                if let Some(generation) = generation {
                    info!("PEM files in {} updated: leaf serial {}", self.dir.display(), leaf.serial);
                    let written = PemFilesWrite {
                        dir: self.dir.clone(),
                        generation,
                        spiffe_id: leaf.uri.clone(),
                        leaf_serial: leaf.serial.clone(),
                        roots: roots.len(),
                    };
                    if let Some(cb) = &self.on_change {
                        cb(Ok(&written));
                    }
                }
                Ok(())
            }
            Err(e) => {
                drop(last);
                warning!("{} (the previous files stay in place)", e.message);
                if let Some(cb) = &self.on_change {
                    cb(Err(&e));
                }
                Err(e)
            }
        }
    }
}

/// True when the directory already holds exactly these certificates (a restarted writer then writes nothing).
fn on_disk(dir: &Path, leaf: &Leaf, roots: &Roots) -> bool {
    let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
    read("cert.pem").as_deref() == Some(leaf.cert_pem.as_str())
        && read("key.pem").as_deref() == Some(leaf.key_pem.as_str())
        && read("roots.pem").as_deref() == Some(roots.pem.as_str())
}

/// Writes one generation and switches the three names to it; returns the generation directory.
pub(crate) fn write_generation(dir: &Path, cert: &str, key: &str, roots: &str) -> Result<PathBuf> {
    let fail =
        |what: String, e: std::io::Error| Error::io(&format!("writing PEM files in {}: {what}", dir.display()), &e);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let stamp = format!("{nanos:x}-{}-{}", std::process::id(), STAMP.fetch_add(1, Ordering::Relaxed));
    let name = format!("{GENERATION_PREFIX}{stamp}");
    let generation = dir.join(&name);
    DirBuilder::new().mode(0o755).create(&generation).map_err(|e| fail(format!("mkdir {name}"), e))?;
    for (file, text, mode) in [("roots.pem", roots, 0o644), ("cert.pem", cert, 0o644), ("key.pem", key, 0o600)] {
        write_synced(&generation.join(file), text.as_bytes(), mode).map_err(|e| fail(format!("{name}/{file}"), e))?;
    }
    sync_dir(&generation).map_err(|e| fail(format!("fsync {name}"), e))?;
    let previous = fs::read_link(dir.join(CURRENT_LINK)).ok();
    replace_symlink(dir, CURRENT_LINK, Path::new(&name)).map_err(|e| fail(format!("switching {CURRENT_LINK}"), e))?;
    for file in PEM_FILE_NAMES {
        let target = Path::new(CURRENT_LINK).join(file);
        if fs::read_link(dir.join(file)).ok().as_deref() != Some(target.as_path()) {
            replace_symlink(dir, file, &target).map_err(|e| fail(format!("linking {file}"), e))?;
        }
    }
    sync_dir(dir).map_err(|e| fail("fsync".into(), e))?;
    remove_old_generations(dir, &name, previous.as_deref());
    Ok(generation)
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Points `dir/name` at `target` atomically: a new symlink under a temporary name, renamed over the old entry.
fn replace_symlink(dir: &Path, name: &str, target: &Path) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp-{}-{}", std::process::id(), STAMP.fetch_add(1, Ordering::Relaxed)));
    symlink(target, &tmp)?;
    fs::rename(&tmp, dir.join(name)).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Removes generation directories other than the current one and the one it replaced.
fn remove_old_generations(dir: &Path, current: &str, previous: Option<&Path>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let keep = name == current || previous.is_some_and(|p| p == Path::new(name));
        if name.starts_with(GENERATION_PREFIX) && name != CURRENT_LINK && !keep && !name.contains(".tmp-") {
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                warning!("cannot remove the old PEM generation {}: {e}", entry.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("consulnative-pem-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_three_names_resolve_to_one_generation_and_the_key_is_private() {
        let dir = temp_dir("layout");
        let generation = write_generation(&dir, "CERT1", "KEY1", "ROOTS1").unwrap();
        for (file, text) in [("cert.pem", "CERT1"), ("key.pem", "KEY1"), ("roots.pem", "ROOTS1")] {
            assert_eq!(fs::read_to_string(dir.join(file)).unwrap(), text);
            assert_eq!(fs::canonicalize(dir.join(file)).unwrap(), fs::canonicalize(generation.join(file)).unwrap());
        }
        assert_eq!(fs::metadata(dir.join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.join("cert.pem")).unwrap().permissions().mode() & 0o777, 0o644);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rewrite_keeps_the_previous_generation_and_removes_older_ones() {
        let dir = temp_dir("rotate");
        let first = write_generation(&dir, "C1", "K1", "R1").unwrap();
        let second = write_generation(&dir, "C2", "K2", "R2").unwrap();
        assert!(first.exists(), "the generation a reader may still be reading stays one round");
        let third = write_generation(&dir, "C3", "K3", "R3").unwrap();
        assert!(!first.exists());
        assert!(second.exists() && third.exists());
        assert_eq!(fs::read_to_string(dir.join("cert.pem")).unwrap(), "C3");
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary symlink is left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn regular_files_from_an_older_writer_are_replaced_by_links() {
        let dir = temp_dir("migrate");
        for file in PEM_FILE_NAMES {
            fs::write(dir.join(file), "old").unwrap();
        }
        fs::write(dir.join("unrelated.conf"), "keep me").unwrap();
        write_generation(&dir, "C", "K", "R").unwrap();
        for file in PEM_FILE_NAMES {
            assert!(fs::symlink_metadata(dir.join(file)).unwrap().file_type().is_symlink());
        }
        assert_eq!(fs::read_to_string(dir.join("key.pem")).unwrap(), "K");
        assert_eq!(fs::read_to_string(dir.join("unrelated.conf")).unwrap(), "keep me");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reader_through_one_generation_never_sees_a_mixed_pair() {
        let dir = temp_dir("race");
        write_generation(&dir, "C0", "K0", "R").unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (d, s) = (dir.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut pairs = 0;
            while !s.load(Ordering::Relaxed) {
                let Ok(generation) = fs::canonicalize(d.join("cert.pem")) else { continue };
                let generation = generation.parent().unwrap().to_path_buf();
                let (Ok(c), Ok(k)) =
                    (fs::read_to_string(generation.join("cert.pem")), fs::read_to_string(generation.join("key.pem")))
                else {
                    continue; // removed two switches later: read again
                };
                assert_eq!(c[1..], k[1..], "cert and key from different generations");
                pairs += 1;
            }
            pairs
        });
        for n in 1..200 {
            write_generation(&dir, &format!("C{n}"), &format!("K{n}"), "R").unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
