//! A seconds-long, deterministic smoke run of a fuzz target's body on stable Rust: random bytes,
//! token soup and mutated realistic seeds from a fixed-seed xorshift generator. Each input must
//! return without panicking, and quickly. The crates' `fuzz/` directories run the same bodies
//! under libFuzzer; their `tests/fuzz_smoke.rs` call [`smoke`].

use std::time::{Duration, Instant};

/// How long each target is fed.
const BUDGET: Duration = Duration::from_secs(2);
/// The most one input may take (a hang or blow-up shows as a failure, not a stuck test).
const PER_INPUT: Duration = Duration::from_secs(2);

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

pub fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8], tokens: &[&[u8]]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            2 | 3 => {
                let t = tokens[rng.below(tokens.len())];
                b.splice(at..at, t.iter().copied());
            }
            4 if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + rng.below(64)).min(other.len());
                b.splice(at..at, other[start..end].iter().copied());
            }
            5 => b.truncate(at),
            _ => b.insert(at, rng.next_u64() as u8),
        }
    }
    b
}

/// Feeds `body` for [`BUDGET`]: a third random bytes, a third token soup, a third mutated seeds.
pub fn smoke(name: &str, seed: u64, seeds: &[Vec<u8>], tokens: &[&[u8]], body: fn(&[u8])) {
    // The seeds themselves first.
    for s in seeds {
        body(s);
    }
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut runs = 0usize;
    while started.elapsed() < BUDGET {
        let input: Vec<u8> = match runs % 3 {
            0 => (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect(),
            1 => (0..rng.below(40)).flat_map(|_| tokens[rng.below(tokens.len())].iter().copied()).collect(),
            _ => {
                let s = &seeds[rng.below(seeds.len())];
                let o = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, s, o, tokens)
            }
        };
        let one = Instant::now();
        body(&input);
        assert!(one.elapsed() < PER_INPUT, "{name}: {:?} on {:?}", one.elapsed(), String::from_utf8_lossy(&input));
        runs += 1;
    }
    eprintln!("{name}: {runs} inputs in {:?}", started.elapsed());
    assert!(runs > 100, "{name}: only {runs} inputs");
}
