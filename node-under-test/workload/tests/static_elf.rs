//! Builds the static flavour of `workload` (as documented in the crate) and checks its ELF:
//! no PT_INTERP program header and no DT_NEEDED dynamic entry.
use std::path::PathBuf;
use std::process::Command;

const TRIPLE: &str = "x86_64-unknown-linux-gnu";
const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;
const DT_NEEDED: u64 = 1;

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64le(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// (program header types, dynamic tags) of an ELF64 little-endian file.
fn elf_headers(b: &[u8]) -> (Vec<u32>, Vec<u64>) {
    assert_eq!(&b[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(b[4], 2, "not ELF64");
    assert_eq!(b[5], 1, "not little-endian");
    let phoff = u64le(b, 0x20) as usize;
    let phentsize = u16le(b, 0x36) as usize;
    let phnum = u16le(b, 0x38) as usize;
    let mut types = Vec::new();
    let mut tags = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32le(b, ph);
        types.push(p_type);
        if p_type == PT_DYNAMIC {
            let off = u64le(b, ph + 8) as usize;
            let size = u64le(b, ph + 32) as usize;
            for e in (off..off + size).step_by(16) {
                let tag = u64le(b, e);
                if tag == 0 {
                    break;
                }
                tags.push(tag);
            }
        }
    }
    (types, tags)
}

fn static_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NODEKIT_WORKLOAD_BIN") {
        return PathBuf::from(p);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../../target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "workload", "--target", TRIPLE])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(&manifest)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "static build failed");
    target_dir.join(TRIPLE).join("debug").join("workload")
}

#[test]
fn static_build_has_no_interpreter_and_no_needed_libraries() {
    let path = static_binary();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (types, tags) = elf_headers(&bytes);
    assert!(!types.is_empty(), "no program headers");
    assert!(!types.contains(&PT_INTERP), "{} has PT_INTERP", path.display());
    assert!(!tags.contains(&DT_NEEDED), "{} has DT_NEEDED entries", path.display());
    // The static binary runs and answers like the host build.
    let out = Command::new(&path).args(["print", "--stdout", "static-ok"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "static-ok\n");
}

#[test]
fn dynamic_host_build_is_detected_as_dynamic() {
    // Guards the checker itself: the test binary is a normal dynamically linked executable.
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let (types, tags) = elf_headers(&me);
    assert!(types.contains(&PT_INTERP) && tags.contains(&DT_NEEDED));
}
